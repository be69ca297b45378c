"""The base class of every clustering estimator in the kit (``kit.cluster``, ``kit.faces``)."""
from __future__ import annotations

from sklearn.base import BaseEstimator, ClusterMixin

from .validation import ParamsValidationMixin


class BaseClusterer(ParamsValidationMixin, ClusterMixin, BaseEstimator):
    """Estimators declare ``_parameter_constraints`` (see ``kit._utils.validation``) and call
    ``self._validate_params()`` first thing in ``fit``."""

    def fit_predict(self, X, y=None):
        return self.fit(X).labels_

    @property
    def n_clusters_(self):
        return int(len(set(self.labels_.tolist()) - {-1}))
