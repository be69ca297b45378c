"""Density and transition-distance clustering on a kNN graph for hard clusters (large and sparse identities):
the method of "On Mitigating Hard Clusters for Face Clustering" (Chen et al., ECCV 2022), written for sparse kNN
structures (memory O(N k), no N x N matrix) on the kit's one kNN.

Every photo ``i`` has its ``k`` nearest neighbours (cosine distance ``d = 1 - cos``) and itself (``d = 0``):

- **transition probabilities** ``P_ij = exp(-d_ij / sigma) / sum_m exp(-d_im / sigma)`` over that list;
- **density**: ``"approximate"`` (the paper's approximate NDDe, its default): ``rho_j = sum_i P_ij`` over the first
  ``density_k`` entries of every list (how much probability flows into ``j``); ``"ndde"``: that flow diffused
  like PageRank, ``rho <- damping rho + (1 - damping) P^T rho`` from ``1/N`` (self-transitions removed) until the
  change is below ``tol``; ``"count"``: neighbours closer than ``count_radius``;
- **distance** between a photo and each of its neighbours: ``"tpdi"`` (transition-probability distance,
  ``1 - sum_m sqrt(P_im P_jm)``: how much the two neighbourhoods overlap, kinder to sparse identities than raw
  cosine) or ``"cosine"``;
- **links**: each photo links to its nearest neighbours (by that distance) of higher or equal density, up to
  ``max_conn`` of them, when closer than ``tau``; the connected components are the clusters.

Written here because no maintained package offers it; read against the authors' public code
(github.com/echoanran/On-Mitigating-Hard-Clusters), whose dense N x N matrices and 16 processes do not fit 2 cores.
"""
from __future__ import annotations

from numbers import Integral, Real
from pathlib import PurePath

import numpy as np
import scipy.sparse as sp

from .._utils.arrays import check_X, relabel
from .._utils.estimator import BaseClusterer
from .._utils.neighbors import exact_for
from .._utils.neighbors import knn as knn_search
from .._utils.validation import Interval, StrOptions
from ._similarity import PairSimilarity

_POSITIVE_INT = Interval(Integral, 1, None, closed="left")
_POSITIVE = Interval(Real, 0, None, closed="neither")
_CHUNK_ROWS = 2048  # rows of the TPDi overlap computed at once: memory ~ rows x k^2


def with_self(dist: np.ndarray, idx: np.ndarray):
    """Each row's list with the row itself first (distance 0): ``(N, k + 1)`` distances and indices."""
    n = len(idx)
    return (np.hstack([np.zeros((n, 1), np.float64), np.asarray(dist, np.float64)]),
            np.hstack([np.arange(n)[:, None], np.asarray(idx, np.int64)]))


def transition_probabilities(dist: np.ndarray, sigma: float) -> np.ndarray:
    """``P_ij = exp(-d_ij / sigma)`` normalised over each row's list (``(N, m)`` distances)."""
    logits = -np.asarray(dist, np.float64) / float(sigma)
    logits -= logits.max(axis=1, keepdims=True)  # the same ratios, no overflow for small sigma
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


AUTO_SIGMA_FACTOR = 0.5


def auto_sigma(dist: np.ndarray) -> float:
    """The data's own scale for ``sigma``: ``AUTO_SIGMA_FACTOR`` times the median over rows of the mean distance to
    their neighbours (``dist``: ``(N, m)`` lists with the row itself first, at distance 0, which is left out)."""
    neighbours = np.asarray(dist, np.float64)[:, 1:]
    if neighbours.size == 0:
        return 1.0
    scale = AUTO_SIGMA_FACTOR * float(np.median(neighbours.mean(axis=1)))
    return scale if scale > 1e-6 else 1e-6  # identical rows: any positive sigma gives the same (uniform) lists


def density(P: np.ndarray, idx: np.ndarray, kind: str = "approximate", *, dist=None, count_radius: float = 0.64,
            damping: float = 0.1, tol: float = 0.05, max_iter: int = 200) -> np.ndarray:
    """Density of every row from its lists (``P``, ``idx``: ``(N, m)``, the row itself first; see the module)."""
    n = len(idx)
    if kind == "count":
        return (np.asarray(dist)[:, 1:] < count_radius).sum(axis=1).astype(np.float64)
    if kind == "approximate":
        return np.bincount(idx.ravel(), weights=P.ravel(), minlength=n)
    # "ndde": PageRank-like diffusion of 1/N over the transition graph without self-transitions
    rows = np.repeat(np.arange(n), idx.shape[1])
    off = idx.ravel() != rows
    T = sp.csr_matrix((P.ravel()[off], (idx.ravel()[off], rows[off])), shape=(n, n))  # T = P^T
    rho = np.full(n, 1.0 / n)
    for _ in range(int(max_iter)):
        new = damping * rho + (1 - damping) * (T @ rho)
        done = np.abs(new - rho).sum() < tol * rho.sum()
        rho = new
        if done:
            break
    return rho


def tpdi(P: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Transition-probability distance of each row to each entry of its list: ``1 - sum_m sqrt(P_im P_jm)``
    (``(N, m)``; sparse products in chunks of rows, memory O(chunk x m^2))."""
    n, m = idx.shape
    S = sp.csr_matrix((np.sqrt(P).ravel(), idx.ravel(), np.arange(0, n * m + 1, m)), shape=(n, n))
    out = np.empty((n, m), np.float64)
    St = S.T.tocsr()
    for lo in range(0, n, _CHUNK_ROWS):
        hi = min(n, lo + _CHUNK_ROWS)
        overlap = (S[lo:hi] @ St).tocsr()  # (rows, N): sum over shared neighbours
        rows = np.repeat(np.arange(hi - lo), m)
        out[lo:hi] = np.asarray(overlap[rows, idx[lo:hi].ravel()]).reshape(hi - lo, m)
    return np.clip(1.0 - out, 0.0, None)


def link(dist: np.ndarray, idx: np.ndarray, rho: np.ndarray, tau: float, max_conn: int = 1) -> sp.csr_matrix:
    """The links: each row to its nearest entries (by ``dist``) of density at least its own, up to ``max_conn``,
    kept when closer than ``tau``. A symmetric sparse (N, N) graph of the links."""
    n = len(idx)
    order = np.argsort(dist, axis=1, kind="stable")
    d_sorted = np.take_along_axis(dist, order, 1)
    i_sorted = np.take_along_axis(idx, order, 1)
    candidate = (rho[i_sorted] >= rho[:, None]) & (i_sorted != np.arange(n)[:, None])
    taken = candidate & (np.cumsum(candidate, axis=1) <= max_conn)
    keep = taken & (d_sorted < tau)
    rows = np.broadcast_to(np.arange(n)[:, None], idx.shape)[keep]
    g = sp.csr_matrix((np.ones(len(rows)), (rows, i_sorted[keep])), shape=(n, n))
    return (g + g.T).tocsr()


def precomputed_knn(knn, n: int, k: int):
    """A precomputed kNN ``(neighbours, distances)`` of ``n`` rows (distances ``1 - cos``) as the kit's kNN gives
    it: ``(similarities, indices)``, each (n, k), nearest first, the row itself left out, -1 where a row has fewer
    neighbours. Raises ValueError naming ``knn`` when it does not fit."""
    fix = ("pass (neighbours, distances) of shape (N, m) for the N rows of X, as kit.formats.read_knn_npz returns "
           "them, or knn=None to search them")
    if not isinstance(knn, (tuple, list)) or len(knn) != 2:
        raise ValueError(f"knn must be a pair (neighbours, distances), got {type(knn).__name__}"
                         f"{f' of length {len(knn)}' if isinstance(knn, (tuple, list)) else ''}; {fix}.")
    nbrs, dists = np.asarray(knn[0]), np.asarray(knn[1])
    if nbrs.ndim != 2 or nbrs.shape != dists.shape or len(nbrs) != n:
        raise ValueError(f"knn has neighbours of shape {nbrs.shape} and distances of shape {dists.shape}, but X has "
                         f"{n} rows; {fix} (was the kNN computed on other features?).")
    if nbrs.dtype.kind not in "iuf" or dists.dtype.kind not in "iuf":
        raise ValueError(f"knn holds neighbours of dtype {nbrs.dtype} and distances of dtype {dists.dtype}; {fix}.")
    bad = ~np.isfinite(nbrs) | (nbrs != np.round(nbrs)) | (nbrs < -1) | (nbrs >= n)
    bad |= (nbrs >= 0) & ~np.isfinite(dists)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        got = f"neighbour {nbrs[i, j].item()!r} at distance {dists[i, j].item()!r}"
        raise ValueError(f"knn: row {i}, entry {j} is {got}; "
                         f"neighbours are whole numbers in [-1, {n}) (-1: none) with finite distances; {fix}.")
    nbrs = np.rint(nbrs).astype(np.int64)
    is_self = nbrs == np.arange(n)[:, None]
    missing = nbrs < 0
    m = nbrs.shape[1] - int(is_self.any())  # the benchmark's lists hold the row itself: one fewer neighbour
    if k > m:
        raise ValueError(f"k={k} but knn gives {m} neighbours per row (the row itself left out of its "
                         f"{nbrs.shape[1]}); pass k <= {m} (on the command line --param k={m}), or a kNN with more "
                         "neighbours.")
    # nearest first, the row itself and the missing entries last
    key = np.where(is_self | missing, np.inf, np.asarray(dists, np.float64))
    order = np.argsort(key, axis=1, kind="stable")[:, :k]
    idx = np.take_along_axis(nbrs, order, 1)
    gone = np.take_along_axis(is_self | missing, order, 1)
    sims = 1.0 - np.take_along_axis(np.asarray(dists, np.float32), order, 1)
    return np.where(gone, 0.0, sims).astype(np.float32), np.where(gone, -1, idx)


class HardClusters(BaseClusterer):
    """Density and transition-distance clustering on a kNN graph, for large and sparse clusters (identities).

    Parameters
    ----------
    k : int, neighbours of every photo besides itself (at most N - 1; the paper's lists of 80 on MS1M hold the
        photo itself and 79 neighbours: k=79 with its ``faiss_k_80.npz``, see ``fit(X, knn=...)``)
    tau : float, the largest distance of a link (0.7 in the paper, with TPDi)
    density : {"approximate", "ndde", "count"}
    distance : {"tpdi", "cosine"}
    max_conn : int, links per photo to denser neighbours
    sigma : float or "auto", temperature of the transition probabilities of the TPDi distance, in cosine distance
        units. ``"auto"`` (default): the data's own scale, half the median over photos of their mean cosine
        distance to their ``k`` neighbours (``sigma_``). The paper's 0.05 suits its learned similarities: on raw
        features whose neighbours lie 0.3-0.5 apart it leaves almost all probability on the photo itself, every
        TPDi near 1 and nothing linked (pairwise F 0.25 on 10,000 generated identities, where "auto" gives 0.97;
        half the scale did better than the whole scale on four generated sets, 0.87 against 0.84 on average; on
        dlib face descriptors of faces_5celeb, neighbours ~0.05 apart, "auto" gives 0.99 and 0.05 gives 1.0).
    density_sigma : float, that of the density (0.5); ``density_k``: neighbours counted in it (20)
    damping, tol : the NDDe diffusion; ``count_radius``: the radius of ``density="count"``
    similarity : a fitted :class:`PairSimilarity` (or the folder it was saved to), optional: its learned
        probabilities that two neighbours are one identity replace the cosine similarities of the kNN graph
        (trained on other, labelled identities; the paper's similarity predictor, small)

    Attributes
    ----------
    labels_ : (N,) cluster of every row (no noise: a photo with no link is a cluster of its own)
    density_ : (N,) the density; ``links_``: the symmetric link graph; ``n_clusters_``; ``sigma_``: the sigma used

    Examples
    --------
    >>> HardClusters(k=10, tau=0.7).fit(X).labels_  # doctest: +SKIP
    >>> from kit.formats import read_knn_npz
    >>> HardClusters(k=79).fit(X, knn=read_knn_npz("faiss_k_80.npz")).labels_  # doctest: +SKIP
    """

    _parameter_constraints = {
        "k": [_POSITIVE_INT], "tau": [Interval(Real, 0, 2, closed="right")],
        "density": [StrOptions({"approximate", "ndde", "count"})], "distance": [StrOptions({"tpdi", "cosine"})],
        "max_conn": [_POSITIVE_INT], "sigma": [_POSITIVE, StrOptions({"auto"})], "density_sigma": [_POSITIVE],
        "density_k": [_POSITIVE_INT], "damping": [Interval(Real, 0, 1, closed="left")], "tol": [_POSITIVE],
        "count_radius": [_POSITIVE], "similarity": [None, PairSimilarity, str, PurePath],
    }

    def __init__(self, k=80, *, tau=0.7, density="approximate", distance="tpdi", max_conn=1, sigma="auto",
                 density_sigma=0.5, density_k=20, damping=0.1, tol=0.05, count_radius=0.64, similarity=None):
        self.k = k
        self.tau = tau
        self.density = density
        self.distance = distance
        self.max_conn = max_conn
        self.sigma = sigma
        self.density_sigma = density_sigma
        self.density_k = density_k
        self.damping = damping
        self.tol = tol
        self.count_radius = count_radius
        self.similarity = similarity

    def fit(self, X, y=None, knn=None):
        """Cluster the rows of ``X``.

        Parameters
        ----------
        X : array-like of shape (N, dim)
        y : ignored
        knn : (neighbours, distances), optional
            A precomputed kNN of the rows of ``X`` instead of the kit's own search: two (N, m) arrays, neighbour
            indices (-1: none) and cosine distances ``1 - cos``, as :func:`kit.formats.read_knn_npz` returns them
            (the ``faiss_k_80.npz`` of the MS1M benchmark). A row's own index in its list (those files start each
            list with the row itself) is skipped, so such a file gives ``m - 1`` neighbours; ``k`` must not exceed
            what it gives, and its first ``k`` (nearest) are used.
        """
        self._validate_params()
        X = check_X(X)
        n = len(X)
        if knn is None:
            sims, idx = knn_search(X, min(int(self.k), n - 1), exact=exact_for(n))
        else:
            sims, idx = precomputed_knn(knn, n, int(self.k))
        if self.similarity is not None:
            learned = (self.similarity if isinstance(self.similarity, PairSimilarity)
                       else PairSimilarity.load(self.similarity))
            sims = np.where(idx >= 0, learned.similarities(X, idx), 0.0)
            # nearest first by the learned similarity: the density and the links read the lists in that order
            order = np.argsort(-sims, axis=1, kind="stable")
            sims, idx = np.take_along_axis(sims, order, 1), np.take_along_axis(idx, order, 1)
        valid = idx >= 0  # an approximate search may return fewer neighbours: those slots point to the row itself
        idx = np.where(valid, idx, np.arange(n)[:, None])
        dist, idx = with_self(np.where(valid, 1.0 - sims, 0.0), idx)
        m = min(int(self.density_k), dist.shape[1])
        P_density = transition_probabilities(dist[:, :m], self.density_sigma)
        self.density_ = density(P_density, idx[:, :m], self.density, dist=dist, count_radius=self.count_radius,
                                damping=self.damping, tol=self.tol)
        self.sigma_ = float(self.sigma) if self.sigma != "auto" else auto_sigma(dist)
        if self.distance == "tpdi":
            dist = tpdi(transition_probabilities(dist, self.sigma_), idx)
        self.links_ = link(dist, idx, self.density_, float(self.tau), int(self.max_conn))
        from scipy.sparse.csgraph import connected_components

        _, labels = connected_components(self.links_, directed=False)
        self.labels_ = relabel(labels)

        return self
