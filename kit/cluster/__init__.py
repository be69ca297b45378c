"""Clustering: estimators with the scikit-learn API and the one registry of methods.

``fit(X)`` returns self, ``labels_`` (noise = -1) are numbered by decreasing cluster size, ``fit_predict(X)``;
``__init__`` only stores the parameters and ``fit`` checks them. Every method is in :data:`METHODS` (name,
label, estimator, whether it takes K, the settings people change): :func:`make` builds one by name, and
``kit.compare``, :func:`auto`, the command line and the dashboard read the same registry.

Estimators: ``KMeans`` (scikit-learn or faiss), ``MiniBatchKMeans``, ``Agglomerative`` (with the scipy
linkage matrix for dendrograms), ``DBSCAN`` (+ ``k_distance`` to pick eps), ``HDBSCAN``, ``Spectral``,
``ChineseWhispers``, ``Leiden``, ``Infomap`` and ``HardClusters`` (density and transition distance, for large
and sparse clusters, optionally with a learned ``PairSimilarity``) on a faiss kNN graph, ``Ensemble`` across several
embeddings, ``SCAN`` (a clustering head trained on the embeddings) and ``Auto``/:func:`auto` (label-free
choice of representation, method and K); ``rerank_distance`` and ``reduce`` are pre-steps.

Reading :data:`METHODS` imports nothing heavy; scikit-learn loads when an estimator is first used.

Examples
--------
>>> import kit
>>> labels = kit.cluster.KMeans(n_clusters=5, random_state=0).fit(X).labels_     # doctest: +SKIP
>>> result = kit.cluster.auto({"lite0": X})                                         # doctest: +SKIP
>>> result.k, result.method, result.reason                                          # doctest: +SKIP
"""
from .._utils.lazy import attach
from ._registry import AUTO_MIN_ROWS, METHODS, NEEDS_K, Method, Setting, make

_WHERE = {
    **{m.estimator: f".{m.module}" for m in METHODS.values()},  # every method's estimator, from the registry
    **{name: "._estimators" for name in (
        "Ensemble", "k_distance", "reduce", "rerank_distance", "co_association", "PLUSPLUS_MAX_NK", "LINKAGES",
        "AGGLOMERATIVE_METRICS", "DEFAULT_N_CLUSTERS", "DBSCAN_METRICS", "RERANK_MAX_N")},
    "scan": "._scan",
    "PairSimilarity": "._similarity",
    **{name: "._auto" for name in ("AutoResult", "auto", "estimate_k", "AUTO_METHODS")},
}
__getattr__, __dir__, _LAZY = attach(__name__, _WHERE)
__all__ = ["AUTO_MIN_ROWS", "METHODS", "NEEDS_K", "Method", "Setting", "make", *_LAZY]
