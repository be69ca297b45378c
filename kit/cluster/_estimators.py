"""The clustering estimators (scikit-learn API; ``kit.cluster`` gives them): ``KMeans`` (scikit-learn or faiss
backend), ``MiniBatchKMeans``, ``Agglomerative`` (with the scipy linkage matrix for dendrograms), ``DBSCAN``
(+ ``k_distance`` to pick eps), ``HDBSCAN`` (scikit-learn's), ``Spectral``, ``ChineseWhispers``, ``Leiden`` and
``Infomap`` on a faiss kNN graph, ``Ensemble`` across several embeddings, and ``rerank_distance`` (k-reciprocal
re-ranking) and ``reduce`` (PCA / whitening) as pre-steps.

``__init__`` only stores the parameters; ``fit`` checks them against the class's ``_parameter_constraints``
(``kit._utils.validation``) before touching ``X``. Each method's entry in the registry (``_registry``) names its
class here.
"""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp

from .._utils.arrays import as_seed, check_n_clusters, check_X, l2_normalize, relabel
from .._utils.estimator import BaseClusterer
from .._utils.graph import chinese_whispers_numba, chinese_whispers_python
from .._utils.neighbors import exact_for, graph_from_knn, knn, knn_graph
from .._utils.validation import Interval, InvalidParameterError, StrOptions, check_exclusive, validate_params
from ._registry import METHODS, make

_POSITIVE_INT = Interval(Integral, 1, None, closed="left")
_COSINE = Interval(Real, -1, 1, closed="both")  # a cosine similarity threshold


# ---------------------------------------------------------------- k-means
PLUSPLUS_MAX_NK = 1_000_000  # N x K up to which scikit-learn's k-means++ is used (bench/cluster.py)


class KMeans(BaseClusterer):
    """k-means with a scikit-learn or faiss backend.

    ``backend="auto"`` follows ``bench/cluster.py`` (2 cores, 100k x 256, 20 iterations, K=100 / K=1000):
    scikit-learn k-means++ 3.5 s / 24 s, scikit-learn random init 0.9 s / 5.9 s, faiss on all points
    0.8 s / 5.6 s, faiss trained on 256 points per centroid 0.2 s / 5.4 s, all within 0.035 NMI-to-truth of
    k-means++. So: N x K <= 1e6, scikit-learn with k-means++ ("sklearn": best quality, fast at that
    size); above, faiss with subsampled training ("faiss"). "sklearn-random" can be asked for.
    ``backend_`` tells which ran.
    ``max_points_per_centroid`` is faiss's training subsample (None: train on all points).
    """

    def __init__(self, n_clusters=8, *, backend="auto", n_init=3, max_iter=100, max_points_per_centroid=256,
                 random_state=0):
        self.n_clusters = n_clusters
        self.backend = backend
        self.n_init = n_init
        self.max_iter = max_iter
        self.max_points_per_centroid = max_points_per_centroid
        self.random_state = random_state

    _parameter_constraints = {
        "n_clusters": [_POSITIVE_INT],
        "backend": [StrOptions({"auto", "sklearn", "sklearn-random", "faiss"})],
        "n_init": [_POSITIVE_INT],
        "max_iter": [_POSITIVE_INT],
        "max_points_per_centroid": [_POSITIVE_INT, None],
        "random_state": ["random_state"],
    }

    def _choose(self, n, k):
        if self.backend != "auto":
            return self.backend
        return "sklearn" if n * k <= PLUSPLUS_MAX_NK else "faiss"

    def fit(self, X, y=None):
        self._validate_params()
        X = check_X(X)
        k = int(self.n_clusters)
        check_n_clusters(k, len(X), "KMeans")
        self.backend_ = self._choose(len(X), k)
        if self.backend_.startswith("sklearn"):
            from sklearn.cluster import KMeans as SK

            init = "k-means++" if self.backend_ == "sklearn" else "random"
            km = SK(n_clusters=k, init=init, n_init=int(self.n_init), max_iter=int(self.max_iter),
                    random_state=self.random_state).fit(X)
            self.labels_, self.cluster_centers_ = km.labels_.astype(np.int64), km.cluster_centers_
            self.inertia_ = float(km.inertia_)
        else:
            import faiss

            seed = as_seed(self.random_state)
            mppc = self.max_points_per_centroid or -(-len(X) // k)
            km = faiss.Kmeans(X.shape[1], k, niter=int(self.max_iter), nredo=int(self.n_init), seed=seed,
                              max_points_per_centroid=int(mppc), verbose=False)
            km.train(np.ascontiguousarray(X))
            dist, lab = km.index.search(np.ascontiguousarray(X), 1)
            self.labels_, self.cluster_centers_ = lab.ravel().astype(np.int64), km.centroids
            self.inertia_ = float(dist.sum())
        return self


class MiniBatchKMeans(BaseClusterer):
    """scikit-learn's MiniBatchKMeans (for very large N)."""

    def __init__(self, n_clusters=8, *, batch_size=4096, n_init=3, random_state=0):
        self.n_clusters = n_clusters
        self.batch_size = batch_size
        self.n_init = n_init
        self.random_state = random_state

    _parameter_constraints = {
        "n_clusters": [_POSITIVE_INT],
        "batch_size": [_POSITIVE_INT],
        "n_init": [_POSITIVE_INT],
        "random_state": ["random_state"],
    }

    def fit(self, X, y=None):
        from sklearn.cluster import MiniBatchKMeans as SK

        self._validate_params()
        X = check_X(X)
        check_n_clusters(int(self.n_clusters), len(X), "MiniBatchKMeans")
        km = SK(n_clusters=int(self.n_clusters), batch_size=int(self.batch_size),
                n_init=int(self.n_init), random_state=self.random_state).fit(X)
        self.labels_, self.cluster_centers_, self.inertia_ = km.labels_.astype(np.int64), km.cluster_centers_, float(km.inertia_)
        return self


# ---------------------------------------------------------------- hierarchical
LINKAGES = ("ward", "average", "complete", "single")
AGGLOMERATIVE_METRICS = ("euclidean", "cosine", "cityblock", "precomputed")
DEFAULT_N_CLUSTERS = 8


class Agglomerative(BaseClusterer):
    """Agglomerative clustering with scipy's hierarchy; ``linkage_matrix_`` feeds dendrograms.

    Give ``n_clusters`` or ``distance_threshold``, not both (both None: ``DEFAULT_N_CLUSTERS`` = 8 clusters).
    ``metric`` is "euclidean" or "cosine" (ward needs euclidean; on L2-normalised vectors the two orderings
    agree), "cityblock", or "precomputed" with a square distance matrix (for example ``rerank_distance``;
    not with ward).
    """

    _parameter_constraints = {
        "n_clusters": [_POSITIVE_INT, None],
        "linkage": [StrOptions(set(LINKAGES))],
        "metric": [StrOptions(set(AGGLOMERATIVE_METRICS))],
        "distance_threshold": [Interval(Real, 0, None, closed="left"), None],
    }

    def __init__(self, n_clusters=None, *, linkage="ward", metric="euclidean", distance_threshold=None):
        self.n_clusters = n_clusters
        self.linkage = linkage
        self.metric = metric
        self.distance_threshold = distance_threshold

    def fit(self, X, y=None):
        from scipy.cluster import hierarchy
        from scipy.spatial.distance import squareform

        self._validate_params()
        check_exclusive("Agglomerative", n_clusters=self.n_clusters, distance_threshold=self.distance_threshold)
        if self.linkage == "ward" and self.metric != "euclidean":
            raise InvalidParameterError(
                f"Agglomerative: linkage='ward' needs metric='euclidean'; got metric={self.metric!r}. "
                "Use linkage='average' or 'complete' with that metric")
        if self.metric == "precomputed":
            D = np.asarray(X, dtype=np.float64)
            if D.ndim != 2 or D.shape[0] != D.shape[1]:
                raise ValueError(f"metric='precomputed' needs a square distance matrix; got shape {D.shape}")
            D = (D + D.T) / 2
            np.fill_diagonal(D, 0)
            Z = hierarchy.linkage(squareform(D, checks=False), method=self.linkage)
        else:
            X = check_X(X)
            Z = hierarchy.linkage(X.astype(np.float64), method=self.linkage, metric=self.metric)
        self.linkage_matrix_ = Z
        if self.distance_threshold is not None:
            labels = hierarchy.fcluster(Z, t=float(self.distance_threshold), criterion="distance")
        else:
            # cut_tree gives exactly n_clusters even when the top merges tie (fcluster's maxclust then gives fewer)
            n_clusters = DEFAULT_N_CLUSTERS if self.n_clusters is None else int(self.n_clusters)
            k = min(n_clusters, len(Z) + 1)
            labels = hierarchy.cut_tree(Z, n_clusters=k).ravel() + 1
        self.labels_ = relabel(labels - 1)
        return self


# ---------------------------------------------------------------- density
def k_distance(X, k: int = 5):
    """Sorted cosine distance to each point's k-th neighbour, and the knee of that curve as an ``eps``.

    Returns ``(distances, eps)``; plot ``distances`` to choose DBSCAN's ``eps`` by eye.
    """
    from kneed import KneeLocator

    validate_params({"k": [_POSITIVE_INT]}, {"k": k}, "k_distance")
    X = check_X(X)
    if k >= len(X):
        raise ValueError(f"k_distance: k={k} needs more than k points; X has {len(X)}. Use k <= {len(X) - 1}")
    sims, _ = knn(X, int(k))
    d = np.sort(1.0 - sims[:, -1])
    knee = KneeLocator(np.arange(len(d)), d, curve="convex", direction="increasing").knee
    eps = float(d[knee]) if knee is not None else float(np.median(d))
    return d, eps


DBSCAN_METRICS = ("cosine", "euclidean", "l1", "l2", "manhattan", "cityblock", "chebyshev", "minkowski",
                  "correlation", "precomputed")


class DBSCAN(BaseClusterer):
    """scikit-learn's DBSCAN with cosine distance by default; ``eps="auto"`` uses ``k_distance``'s knee.

    ``metric`` is one of ``DBSCAN_METRICS`` or a callable on two rows.
    """

    _parameter_constraints = {
        "eps": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "min_samples": [_POSITIVE_INT],
        "metric": [StrOptions(set(DBSCAN_METRICS)), callable],
    }

    def __init__(self, eps="auto", *, min_samples=5, metric="cosine"):
        self.eps = eps
        self.min_samples = min_samples
        self.metric = metric

    def fit(self, X, y=None):
        from sklearn.cluster import DBSCAN as SK

        self._validate_params()
        auto = isinstance(self.eps, str)
        if auto and self.metric == "precomputed":
            raise InvalidParameterError("DBSCAN: eps='auto' needs vectors, not metric='precomputed'; "
                                        "give eps as a number")
        if self.metric != "precomputed":
            X = check_X(X)
        eps = k_distance(X, int(self.min_samples))[1] if auto else self.eps
        if eps <= 0:
            raise ValueError("DBSCAN: eps='auto' found a knee at distance 0 (duplicate points); give eps as a number")
        self.eps_ = float(eps)
        self.labels_ = relabel(SK(eps=self.eps_, min_samples=int(self.min_samples), metric=self.metric)
                                .fit(X).labels_)
        return self


class HDBSCAN(BaseClusterer):
    """scikit-learn's HDBSCAN after a whitened PCA to ``reduce_to`` dimensions (default 5).

    In 1280-d most points end as noise. Measured on clothing10 (lite0): PCA-5
    whitened with ``min_cluster_size=15, min_samples=5`` finds 10 clusters at NMI 0.47 (noise counted as
    a cluster) but leaves about half the photos as noise; raw vectors give 3 clusters at NMI 0.22.
    ``noise_fraction_`` says how much was left out. ``reduce_to=None`` clusters the raw vectors.
    """

    _parameter_constraints = {
        "min_cluster_size": [Interval(Integral, 2, None, closed="left")],
        "min_samples": [_POSITIVE_INT, None],
        "reduce_to": [_POSITIVE_INT, None],
        "whiten": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(self, min_cluster_size=15, *, min_samples=5, reduce_to=5, whiten=True, random_state=0):
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.reduce_to = reduce_to
        self.whiten = whiten
        self.random_state = random_state

    def fit(self, X, y=None):
        from sklearn.cluster import HDBSCAN as SK

        self._validate_params()
        X = check_X(X)
        if self.reduce_to is not None and X.shape[1] > self.reduce_to:
            X = reduce(X, n_components=int(self.reduce_to), whiten=bool(self.whiten), random_state=self.random_state)
        min_samples = None if self.min_samples is None else int(self.min_samples)
        self.labels_ = relabel(SK(min_cluster_size=int(self.min_cluster_size), min_samples=min_samples,
                                   copy=True).fit(X).labels_)
        self.noise_fraction_ = float(np.mean(self.labels_ < 0))
        return self


class Spectral(BaseClusterer):
    """scikit-learn's SpectralClustering on a kNN affinity graph."""

    _parameter_constraints = {
        "n_clusters": [_POSITIVE_INT],
        "n_neighbors": [_POSITIVE_INT],
        "random_state": ["random_state"],
    }

    def __init__(self, n_clusters=8, *, n_neighbors=10, random_state=0):
        self.n_clusters = n_clusters
        self.n_neighbors = n_neighbors
        self.random_state = random_state

    def fit(self, X, y=None):
        from sklearn.cluster import SpectralClustering

        self._validate_params()
        X = check_X(X)
        check_n_clusters(int(self.n_clusters), len(X), "Spectral")
        A = knn_graph(X, min(int(self.n_neighbors), len(X) - 1))
        self.labels_ = relabel(SpectralClustering(
            n_clusters=int(self.n_clusters), affinity="precomputed",
            random_state=self.random_state, assign_labels="cluster_qr").fit(A).labels_)
        return self


# ---------------------------------------------------------------- graph methods
class ChineseWhispers(BaseClusterer):
    """Chinese Whispers (Biemann 2006) on a cosine kNN graph built with faiss.

    Each node repeatedly takes the label with the largest total edge weight among its neighbours,
    visiting nodes in a random order per iteration. Edges below ``threshold`` (cosine similarity) are cut.
    ``threshold="auto"`` uses the mean similarity to the ``k``-th neighbour minus one standard deviation
    (measured on clothing10, lite0: 30 clusters, 8 of them with 10+ photos, NMI 0.57; mean alone gave 188
    clusters, mean + 1 sd 594).
    Hand-written (with numba) because no maintained package offers it on a sparse graph.
    """

    _parameter_constraints = {
        "threshold": [_COSINE, StrOptions({"auto"})],
        "k": [_POSITIVE_INT],
        "iterations": [_POSITIVE_INT],
        "random_state": ["random_state"],
    }

    def __init__(self, threshold="auto", *, k=20, iterations=30, random_state=0):
        self.threshold = threshold
        self.k = k
        self.iterations = iterations
        self.random_state = random_state

    def fit(self, X, y=None):
        self._validate_params()
        X = check_X(X)
        k = min(int(self.k), len(X) - 1)
        exact = exact_for(len(X))
        if isinstance(self.threshold, str):  # "auto"
            sims, idx = knn(X, k, exact=exact)
            kth = sims[:, -1]
            self.threshold_ = float(kth.mean() - kth.std())
            g = graph_from_knn(sims, idx, self.threshold_)
        else:
            self.threshold_ = float(self.threshold)
            g = knn_graph(X, k, threshold=self.threshold_, exact=exact)
        self.graph_ = g
        rng = np.random.default_rng(None if self.random_state is None else as_seed(self.random_state))
        n = len(X)
        orders = np.stack([rng.permutation(n) for _ in range(int(self.iterations))])
        labels = np.arange(n, dtype=np.int64)
        fn = chinese_whispers_numba or chinese_whispers_python
        labels = fn(g.indptr.astype(np.int64), g.indices.astype(np.int64), g.data.astype(np.float64), labels, orders)
        self.labels_ = relabel(labels)
        return self


def _edges(X, k, threshold):
    """Upper-triangle edges (rows, cols, weights) of the symmetric cosine kNN graph."""
    g = sp.triu(knn_graph(X, min(int(k), len(X) - 1), threshold=threshold, exact=exact_for(len(X))),
                k=1).tocoo()
    return g.row.tolist(), g.col.tolist(), g.data.tolist()


class Leiden(BaseClusterer):
    """Leiden community detection (``leidenalg``) on the cosine kNN graph; ``resolution`` sets granularity."""

    _parameter_constraints = {
        "k": [_POSITIVE_INT],
        "resolution": [Interval(Real, 0, None, closed="neither")],
        "threshold": [_COSINE, None],
        "random_state": ["random_state"],
    }

    def __init__(self, *, k=15, resolution=1.0, threshold=None, random_state=0):
        self.k = k
        self.resolution = resolution
        self.threshold = threshold
        self.random_state = random_state

    def fit(self, X, y=None):
        import igraph as ig
        import leidenalg

        self._validate_params()
        X = check_X(X)
        rows, cols, weights = _edges(X, self.k, self.threshold)
        graph = ig.Graph(n=len(X), edges=list(zip(rows, cols)))
        part = leidenalg.find_partition(graph, leidenalg.RBConfigurationVertexPartition, weights=weights,
                                        resolution_parameter=float(self.resolution), seed=as_seed(self.random_state))
        self.labels_ = relabel(np.asarray(part.membership))
        return self


class Infomap(BaseClusterer):
    """Infomap (``infomap`` package, two-level) on the cosine kNN graph."""

    _parameter_constraints = {
        "k": [_POSITIVE_INT],
        "threshold": [_COSINE, None],
        "random_state": ["random_state"],
    }

    def __init__(self, *, k=15, threshold=None, random_state=0):
        self.k = k
        self.threshold = threshold
        self.random_state = random_state

    def fit(self, X, y=None):
        import infomap

        self._validate_params()
        X = check_X(X)
        im = infomap.Infomap(two_level=True, silent=True, seed=as_seed(self.random_state) + 1, num_trials=2)
        im.add_nodes(range(len(X)))
        for a, b, w in zip(*_edges(X, self.k, self.threshold)):
            im.add_link(a, b, w)
        im.run()
        labels = np.zeros(len(X), np.int64)
        for node, module in im.get_modules().items():
            labels[node] = module
        self.labels_ = relabel(labels)
        return self


# ---------------------------------------------------------------- pre-steps
def reduce(X, n_components=50, *, whiten=False, random_state=0):
    """PCA (optionally whitened) to ``n_components`` dimensions; rows re-normalised."""
    from sklearn.decomposition import PCA

    validate_params({"n_components": [_POSITIVE_INT], "whiten": ["boolean"], "random_state": ["random_state"]},
                    {"n_components": n_components, "whiten": whiten, "random_state": random_state}, "reduce")
    X = check_X(X)
    n_components = min(int(n_components), X.shape[0], X.shape[1])
    Y = PCA(n_components=n_components, whiten=bool(whiten), random_state=random_state).fit_transform(X)
    return l2_normalize(Y)


RERANK_MAX_N = 20000


def rerank_distance(X, k1=20, k2=6, lambda_value=0.3):
    """k-reciprocal re-ranking distance (Zhong et al., CVPR 2017), N x N.

    A pair is close when each is in the other's (expanded) k-reciprocal neighbourhood; the Jaccard
    distance of those neighbourhoods is blended with the original distance by ``lambda_value``. Usable as
    ``metric="precomputed"`` for ``DBSCAN`` and ``Agglomerative``. Memory is O(N^2): up to ~20k points.
    Written here from the paper: no maintained package provides it outside person re-id code bases.
    """
    validate_params({"k1": [_POSITIVE_INT], "k2": [_POSITIVE_INT],
                     "lambda_value": [Interval(Real, 0, 1, closed="both")]},
                    {"k1": k1, "k2": k2, "lambda_value": lambda_value}, "rerank_distance")
    n = len(X) if hasattr(X, "__len__") else None
    if n is not None and n > RERANK_MAX_N:  # before converting a huge X
        raise ValueError(f"rerank_distance is O(N^2) in memory; N={n} is above {RERANK_MAX_N}: reduce or sample first")
    X = l2_normalize(check_X(X))
    n = len(X)
    lambda_value = float(lambda_value)
    k1 = min(int(k1), n - 1)
    k2 = min(int(k2), n)
    original = np.clip(2.0 - 2.0 * (X @ X.T), 0, None).astype(np.float32)  # squared euclidean on the sphere
    original /= original.max(axis=0, keepdims=True) + 1e-12
    rank = np.argsort(original, axis=1)[:, : k1 + 1]
    V = np.zeros((n, n), np.float32)
    half = max(1, int(round(k1 / 2)))
    for i in range(n):
        fwd = rank[i, : k1 + 1]
        recip = fwd[np.any(rank[fwd, : k1 + 1] == i, axis=1)]
        expanded = recip
        for c in recip:
            cf = rank[c, : half + 1]
            cr = cf[np.any(rank[cf, : half + 1] == c, axis=1)]
            if len(np.intersect1d(cr, recip)) > 2 / 3 * len(cr):
                expanded = np.union1d(expanded, cr)
        w = np.exp(-original[i, expanded])
        V[i, expanded] = w / w.sum()
    if k2 > 1:
        V = np.stack([V[rank[i, :k2]].mean(axis=0) for i in range(n)])
    # Jaccard distance between the soft neighbourhoods: 1 - sum(min)/sum(max)
    jaccard = np.empty((n, n), np.float32)
    for i in range(n):
        mins = np.minimum(V[i][None, :], V).sum(axis=1)
        jaccard[i] = 1.0 - mins / (2.0 - mins)
    D = (1 - lambda_value) * jaccard + lambda_value * original
    D = (D + D.T) / 2
    np.fill_diagonal(D, 0.0)
    return D


# ---------------------------------------------------------------- ensembles
def co_association(labelings) -> np.ndarray:
    """Fraction of the labelings that put each pair together (noise never pairs), N x N float32."""
    labelings = [np.asarray(l) for l in labelings]
    n = len(labelings[0])
    if any(len(l) != n for l in labelings):
        raise ValueError(f"labelings have lengths {[len(l) for l in labelings]}; they must all be equal")
    C = np.zeros((n, n), np.float32)
    for lab in labelings:
        valid = lab >= 0
        onehot = sp.csr_matrix((np.ones(valid.sum(), np.float32), (np.flatnonzero(valid), lab[valid])),
                               shape=(n, lab.max() + 1 if valid.any() else 1))
        C += (onehot @ onehot.T).toarray()
    return C / len(labelings)


class Ensemble(BaseClusterer):
    """Cluster several embeddings of the same images and combine the labelings.

    ``combine="coassociation"``: average-linkage clustering of 1 - co-association (evidence accumulation).
    ``combine="stack"``: k-means on the stacked one-hot label vectors (a baseline).
    ``fit`` takes a list of arrays (one per backbone, same rows) or of precomputed label vectors when
    ``base=None``.
    """

    _parameter_constraints = {
        "n_clusters": [_POSITIVE_INT],
        "base": [StrOptions(set(METHODS)), None],
        "base_params": [dict, None],
        "combine": [StrOptions({"coassociation", "stack"})],
        "random_state": ["random_state"],
    }

    def __init__(self, n_clusters=8, *, base="kmeans", base_params=None, combine="coassociation", random_state=0):
        self.n_clusters = n_clusters
        self.base = base
        self.base_params = base_params
        self.combine = combine
        self.random_state = random_state

    def fit(self, Xs, y=None):
        self._validate_params()
        if not isinstance(Xs, (list, tuple)) or len(Xs) < 2:
            raise ValueError("Ensemble.fit needs a list of at least two embeddings (or labelings with base=None)")
        k = int(self.n_clusters)
        if self.base is None:
            labelings = [np.asarray(l) for l in Xs]
        else:
            params = {"n_clusters": k, **(self.base_params or {})}
            labelings = [make(self.base, random_state=self.random_state, **params).fit(X).labels_ for X in Xs]
        self.labelings_ = labelings
        if self.combine == "coassociation":
            D = 1.0 - co_association(labelings)
            self.labels_ = Agglomerative(k, linkage="average", metric="precomputed").fit(D).labels_
        else:  # "stack"
            blocks = []
            for lab in labelings:
                lab = np.where(lab < 0, lab.max() + 1, lab)
                blocks.append(np.eye(lab.max() + 1, dtype=np.float32)[lab])
            self.labels_ = KMeans(k, random_state=self.random_state).fit(np.hstack(blocks)).labels_
        return self
