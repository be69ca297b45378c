"""k-nearest-neighbour search and graphs on embedding vectors with faiss (exact, or HNSW/IVF above a size): the
kit's one kNN, used by the clustering methods, K estimation, curation and the out-of-core graphs of ``kit.scale``."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .arrays import l2_normalize

# Up to this many rows neighbours are searched exactly; above it, with a faiss HNSW index (in memory) or an IVF/HNSW
# index (``kit.scale`` graphs of a store). bench/cluster.py measures HNSW recall@30 on 100k x 256 rows.
EXACT_MAX = 20_000


def exact_for(n: int) -> bool:
    """Whether ``n`` rows are searched exactly (``n <= EXACT_MAX``)."""
    return n <= EXACT_MAX


def drop_self(sims, idx, k: int):
    """The first ``k`` neighbours of each row once the row itself is taken out of faiss's ``k + 1`` answers
    (usually column 0; not always with ties or approximate search; rows where self is missing keep their first
    ``k``). ``idx`` rows are numbered from 0 in query order, so query ``i`` is row ``i`` of the index."""
    idx = np.asarray(idx)
    is_self = idx == np.arange(len(idx))[:, None]
    order = np.argsort(is_self, axis=1, kind="stable")[:, :k]  # self (if there) moves to the end, order kept
    return (np.take_along_axis(np.asarray(sims, np.float32), order, 1),
            np.take_along_axis(idx.astype(np.int64), order, 1))


def knn(X, k: int, exact: bool = True, hnsw_m: int = 32, ef_search: int = 128):
    """Cosine k nearest neighbours of every row (the row itself excluded).

    Returns ``(similarities, indices)``, each (N, k), most similar first. ``exact=False`` uses a faiss
    HNSW index (much faster on large N; recall@30 measured in ``bench/cluster.py``).
    """
    import faiss

    X = np.ascontiguousarray(l2_normalize(X))  # faiss reads C-ordered float32 rows
    n, d = X.shape
    if not 1 <= k < n:
        raise ValueError(f"k={k} must be between 1 and N-1={n - 1}")
    if exact:
        index = faiss.IndexFlatIP(d)
    else:
        index = faiss.IndexHNSWFlat(d, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = max(ef_search, k + 1)
    index.add(X)
    sims, idx = index.search(X, k + 1)
    return drop_self(sims, idx, k)


def graph_from_knn(sims, idx, threshold: float | None = None, mutual: bool = False) -> sp.csr_matrix:
    """Symmetric sparse graph from (N, k) neighbour similarities and indices (-1: no neighbour, skipped).

    Edges with similarity below ``threshold`` are dropped; ``mutual=True`` keeps only edges both ends chose.
    Weights are similarities (clipped at 0).
    """
    n, k = sims.shape
    rows = np.repeat(np.arange(n), k)
    vals = np.clip(sims.ravel(), 0, None)
    cols = idx.ravel()
    keep = cols >= 0
    if threshold is not None:
        keep &= sims.ravel() >= threshold
    g = sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=(n, n))
    if mutual:
        return g.minimum(g.T).tocsr()
    return g.maximum(g.T).tocsr()


def knn_graph(X, k: int, threshold: float | None = None, exact: bool = True, mutual: bool = False) -> sp.csr_matrix:
    """Symmetric sparse cosine-similarity graph of the k nearest neighbours.

    Edges with similarity below ``threshold`` are dropped; ``mutual=True`` keeps only edges both
    ends chose. Weights are similarities (clipped at 0).
    """
    sims, idx = knn(X, k, exact=exact)
    return graph_from_knn(sims, idx, threshold, mutual)
