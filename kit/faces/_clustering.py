"""Cluster face descriptors into people, with thresholds in dlib's units."""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import pandas as pd

from .._utils.arrays import check_X, relabel
from .._utils.estimator import BaseClusterer
from .._utils.validation import Interval, StrOptions
from ..cluster import DBSCAN, Agglomerative, ChineseWhispers, HardClusters, Infomap, KMeans, Leiden
from ._detection import _dlib


def pair_distances(X, labels) -> pd.DataFrame:
    """Euclidean distance of every pair of faces and whether they are the same person
    (columns ``distance``, ``same``): the same-vs-different distribution behind the thresholds."""
    X = np.asarray(getattr(X, "vectors", X), dtype=np.float64)
    labels = np.asarray(labels)
    if len(labels) != len(X):
        raise ValueError(f"labels has {len(labels)} entries for {len(X)} faces; pass one label per row")
    from scipy.spatial.distance import pdist

    i, j = np.triu_indices(len(X), 1)
    return pd.DataFrame({"distance": pdist(X), "same": labels[i] == labels[j]})


# ----------------------------------------------------------------------------------- clustering
class DlibChineseWhispers(BaseClusterer):
    """dlib's own Chinese Whispers (``dlib.chinese_whispers_clustering``): faces closer than
    ``threshold`` (Euclidean distance of descriptors) are linked (unweighted), then labels spread.

    dlib seeds its generator itself; ``random_state`` shuffles the order the faces are given in
    (which changes dlib's visiting order), so different seeds give the run-to-run spread and equal
    seeds give equal labels. ``random_state=None`` keeps the input order.
    """

    # threshold: a Euclidean distance between dlib's face descriptors, typically 0.5-0.7
    _parameter_constraints = {"threshold": [Interval(Real, 0, None, closed="neither")],
                              "random_state": ["random_state"]}

    def __init__(self, threshold=0.5, *, random_state=0):
        self.threshold = threshold
        self.random_state = random_state

    def fit(self, X, y=None):
        self._validate_params()
        dlib = _dlib()
        X = check_X(X)
        n = len(X)
        order = np.arange(n) if self.random_state is None else np.random.default_rng(self.random_state).permutation(n)
        got = dlib.chinese_whispers_clustering([dlib.vector(X[i].astype(np.float64).tolist()) for i in order],
                                               float(self.threshold))
        labels = np.empty(n, np.int64)
        labels[order] = np.asarray(got, dtype=np.int64)
        self.labels_ = relabel(labels)
        return self


#: method -> (what ``threshold`` means, its default). Defaults from ``bench/faces.py`` on faces_5celeb.
FACE_METHODS = {
    "agglomerative": ("Euclidean distance at which average linkage stops merging", 0.65),
    "dlib_chinese_whispers": ("Euclidean distance below which two faces are linked", 0.6),
    "dbscan": ("eps, Euclidean distance (with min_samples, default 2)", 0.55),
    "chinese_whispers": ("cosine similarity below which kNN edges are cut", 0.92),
    "leiden": ("cosine similarity below which kNN edges are cut", 0.92),
    "infomap": ("cosine similarity below which kNN edges are cut", 0.92),
    "hard_clusters": ("Euclidean distance of the longest link, as cosine distance threshold^2 / (2 r^2)", 0.6),
    "kmeans": ("unused: give n_clusters", None),
}
#: ``method="auto"``: average linkage up to this many faces (its distance matrix is N^2/2 doubles: 400 MB
#: at 10,000), the kit's Chinese Whispers on the kNN graph above.
AUTO_MAX_AGGLOMERATIVE = 10_000


def cosine_distance_of(threshold: float, X) -> float:
    """The cosine distance ``1 - cos`` that matches a Euclidean distance ``threshold`` between the rows of ``X``:
    ``threshold**2 / (2 r**2)``, ``r**2`` the median squared norm of the rows (capped at 2, the largest cosine
    distance).

    Exact for rows of equal norm ``r`` (``|a - b|**2 = 2 r**2 (1 - cos)``); dlib descriptors have norms of
    about 1.3-1.7 (median 1.49 on faces_5celeb, where ``1 - cos`` over ``|a - b|**2`` has median 0.22 against
    ``1 / (2 * 1.49**2) = 0.225``), so dlib's 0.6 is a cosine distance of about 0.08: cosine similarity 0.92,
    the kNN-graph methods' default.

    Examples
    --------
    >>> round(cosine_distance_of(0.6, [[1.0, 0.0], [0.0, 1.0]]), 2)  # unit rows: threshold**2 / 2
    0.18
    """
    r2 = float(np.median(np.sum(np.square(np.asarray(X, np.float64)), axis=1)))
    if not r2 > 0:
        raise ValueError("the descriptors are all zero: a Euclidean threshold has no cosine counterpart; pass "
                         "the face descriptors (kit.faces.embed)")
    return min(2.0, float(threshold) ** 2 / (2.0 * r2))


class FaceClustering(BaseClusterer):
    """Cluster face descriptors into people, with thresholds in the units of dlib descriptors.

    Parameters
    ----------
    method : str
        ``"auto"`` or a key of ``FACE_METHODS``: ``"agglomerative"`` (average linkage, Euclidean),
        ``"dlib_chinese_whispers"`` (dlib's own), ``"dbscan"`` (Euclidean), ``"chinese_whispers"``,
        ``"leiden"``, ``"infomap"`` (the kit's, on the cosine kNN graph built with faiss), ``"hard_clusters"``
        (:class:`kit.cluster.HardClusters`: links to denser kNN neighbours), ``"kmeans"`` (needs ``n_clusters``).
    threshold : float, optional
        Method-specific, default in ``FACE_METHODS``: a Euclidean distance on the raw descriptors for
        ``agglomerative``, ``dlib_chinese_whispers``, ``dbscan`` (eps) and ``hard_clusters``; a cosine similarity
        for the kNN-graph methods. On dlib descriptors every pair is cosine-similar (different people: median
        0.83), so cosine 0.92 is the counterpart of Euclidean 0.6 (0.03% of different-person pairs pass either).
        ``hard_clusters`` converts its threshold into its ``tau`` on the cosine distance,
        ``tau = threshold**2 / (2 r**2)`` with ``r**2`` the median squared norm of the descriptors
        (:func:`cosine_distance_of`; 0.6 gives about 0.08), and runs with ``distance="cosine"``: its
        transition-probability distance (TPDi) measures how much two neighbourhoods overlap, a relative scale
        with no dlib counterpart that links different people when they have fewer photos than ``k`` (see Notes).
    n_clusters : int, optional
        Needed by ``kmeans``; with ``agglomerative`` it replaces the threshold.
    k : int
        Neighbours per face in the kNN graph (graph methods and ``hard_clusters``).
    min_samples : int
        DBSCAN's core-point size (2: two close faces make a person).
    resolution : float
        Leiden's resolution.
    random_state : int or None
        Seeds Chinese Whispers (both), Leiden, Infomap and k-means.

    Attributes
    ----------
    labels_, method_ (the method that ran), threshold_, estimator_ (the fitted underlying estimator)

    Notes
    -----
    ``method="auto"`` is average-linkage agglomerative clustering at Euclidean distance 0.65 (up to
    ``AUTO_MAX_AGGLOMERATIVE`` faces; above, the kit's Chinese Whispers on the kNN graph at cosine 0.92).
    Measured by ``bench/faces.py`` on faces_5celeb (93 photos, 5 people), BCubed F (clusters); the last
    column is the range of the means over 20 random draws of 2, 3 and 5 photos per person:

    ===============================  ==================  ==================  ===================
    method, threshold                crop_as_face (93)   HOG faces (89)      2-5 photos/person
    ===============================  ==================  ==================  ===================
    agglomerative 0.65 (``auto``)    0.970 (6)           1.000 (5)           0.972-0.991
    agglomerative 0.75               0.980 (5)           1.000 (5)           0.891-0.936
    dlib Chinese Whispers 0.5        0.826 (18-21)       0.841 (20-21)       0.804-0.854
    dlib Chinese Whispers 0.6        0.980 (7)           1.000 (5)           0.945-0.990
    DBSCAN eps 0.55                  0.959 (5)           0.989 (5)           0.911-0.939
    kit Chinese Whispers cos 0.92    0.990 (6)           0.989 (6)           0.945-0.979
    Leiden cos 0.92                  0.990 (6)           0.989 (6)           0.945-0.979
    hard_clusters 0.6 (cosine 0.08)  0.990 (6)           1.000 (5)           0.953-0.971
    hard_clusters 0.65               1.000 (5)           1.000 (5)           0.863-0.965
    ===============================  ==================  ==================  ===================

    ``hard_clusters`` with the paper's TPDi (``kit.cluster.HardClusters(k=10, tau=0.7)``) scores 1.000 on the
    whole set (any tau from 0.5 to 0.9) but 0.333-0.519 on the subsets (0.354-0.632 at tau 0.5), where it links
    nearly everybody together: with 2-5 photos per person most of a face's 10 neighbours are other people, so
    neighbourhoods overlap whatever the people. On these faces the cosine distance at dlib's 0.6 is the one to
    use (measured with the protocol of ``bench/faces.py``: 20 draws seeded 0-19, noise as singletons).

    Average linkage at 0.65 is the most stable across the subsets (few photos per person, where graph
    methods must cut kNN edges to other people) and agrees with the issue's in-the-wild measurement
    (1,699 photos of 17 people: 0.994 at 0.65, where dlib's 0.5 over-split). Expect lower scores on
    people the descriptor network did not see in training.

    Examples
    --------
    >>> import numpy as np
    >>> from kit.faces import FaceClustering
    >>> X = np.array([[0, 0], [0.3, 0], [2, 2], [2.3, 2], [2, 2.3]], np.float32)
    >>> FaceClustering().fit(X).labels_.tolist()
    [1, 1, 0, 0, 0]
    """

    _parameter_constraints = {
        "method": [StrOptions({"auto", *FACE_METHODS})],
        "threshold": [Interval(Real, 0, None, closed="neither"), None],  # see FACE_METHODS for each default
        "n_clusters": [Interval(Integral, 1, None, closed="left"), None],
        "k": [Interval(Integral, 1, None, closed="left")],
        "min_samples": [Interval(Integral, 1, None, closed="left")],
        "resolution": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
    }

    def __init__(self, method="auto", *, threshold=None, n_clusters=None, k=10, min_samples=2, resolution=1.0,
                 random_state=0):
        self.method = method
        self.threshold = threshold
        self.n_clusters = n_clusters
        self.k = k
        self.min_samples = min_samples
        self.resolution = resolution
        self.random_state = random_state

    def _estimator(self, X):
        n = len(X)
        method = self.method
        if method == "auto":
            method = "agglomerative" if n <= AUTO_MAX_AGGLOMERATIVE else "chinese_whispers"
        if method not in FACE_METHODS:
            raise ValueError(f"method={self.method!r} must be 'auto' or one of {sorted(FACE_METHODS)}")
        thr = FACE_METHODS[method][1] if self.threshold is None else self.threshold
        rs = self.random_state
        if method == "dlib_chinese_whispers":
            return method, thr, DlibChineseWhispers(thr, random_state=rs)
        if method == "agglomerative":
            if self.n_clusters is not None:
                return method, None, Agglomerative(self.n_clusters, linkage="average", metric="euclidean")
            return method, thr, Agglomerative(linkage="average", metric="euclidean", distance_threshold=thr)
        if method == "dbscan":
            return method, thr, DBSCAN(thr, min_samples=self.min_samples, metric="euclidean")
        if method == "chinese_whispers":
            return method, thr, ChineseWhispers(thr, k=self.k, random_state=rs)
        if method == "leiden":
            return method, thr, Leiden(k=self.k, resolution=self.resolution, threshold=thr, random_state=rs)
        if method == "infomap":
            return method, thr, Infomap(k=self.k, threshold=thr, random_state=rs)
        if method == "hard_clusters":
            return method, thr, HardClusters(k=self.k, tau=cosine_distance_of(thr, X), distance="cosine")
        if self.n_clusters is None:
            raise ValueError("method='kmeans' needs n_clusters (the number of people); without it use "
                             "method='auto'")
        return method, None, KMeans(self.n_clusters, random_state=rs)

    def fit(self, X, y=None):
        self._validate_params()
        X = check_X(getattr(X, "vectors", X))
        self.method_, self.threshold_, self.estimator_ = self._estimator(X)
        self.labels_ = relabel(self.estimator_.fit(X).labels_)
        return self


def cluster_faces(X, method="auto", **params) -> np.ndarray:
    """Labels of :class:`FaceClustering` (``X``: face ``Embeddings`` or an (N, 128) array); -1 is noise.

    Examples
    --------
    >>> from kit.faces import cluster_faces
    >>> labels = cluster_faces(emb)                                      # doctest: +SKIP
    >>> labels = cluster_faces(emb, "dlib_chinese_whispers", threshold=0.55)   # doctest: +SKIP
    """
    return FaceClustering(method=method, **params).fit(X).labels_


