"""k-nearest-neighbour graphs on embedding vectors with faiss (exact or HNSW)."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._linalg import l2_normalize


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
    # drop self (usually column 0; not always with ties or approximate search)
    out_s = np.empty((n, k), np.float32)
    out_i = np.empty((n, k), np.int64)
    for row in range(n):
        keep = idx[row] != row
        s, i = sims[row][keep][:k], idx[row][keep][:k]
        if len(i) < k:  # self not found among k+1: keep the first k
            s, i = sims[row][:k], idx[row][:k]
        out_s[row], out_i[row] = s, i
    return out_s, out_i


def knn_graph(X, k: int, threshold: float | None = None, exact: bool = True, mutual: bool = False) -> sp.csr_matrix:
    """Symmetric sparse cosine-similarity graph of the k nearest neighbours.

    Edges with similarity below ``threshold`` are dropped; ``mutual=True`` keeps only edges both
    ends chose. Weights are similarities (clipped at 0).
    """
    sims, idx = knn(X, k, exact=exact)
    n = sims.shape[0]
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
