"""Array helpers shared across the kit (one definition each): normalising rows, checking a data matrix,
seeds for libraries that take only ints, relabelling clusters by size."""
from __future__ import annotations

import numpy as np


def l2_normalize(X, axis: int = 1, eps: float = 1e-12, *, dtype=np.float32) -> np.ndarray:
    """``X`` (float32, or ``dtype``) with each row (``axis=1``; ``axis=0``: each column) scaled to unit L2 norm;
    norms below ``eps`` count as ``eps``, so all-zero rows stay zero. ``dtype=np.float64`` keeps full precision
    where the caller needs it (average-linkage heights, gallery similarities)."""
    X = np.asarray(X, dtype=dtype)
    norms = np.linalg.norm(X, axis=axis, keepdims=True)
    return X / np.maximum(norms, eps)


def check_X(X, name="X"):
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got shape {X.shape}")
    if len(X) < 2:
        raise ValueError(f"{name} has {len(X)} rows; clustering needs at least 2")
    if not np.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or infinite values; remove or impute them first")
    return X


def as_seed(random_state) -> int:
    """An int seed for libraries that take only ints (faiss, leidenalg, infomap, numpy's Generator)."""
    if random_state is None:
        return 0
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31 - 1))
    return int(random_state)


def check_n_clusters(k, n, caller):
    if k > n:
        raise ValueError(f"{caller}: n_clusters={k} is larger than the number of samples ({n}); "
                         f"use n_clusters <= {n}")


def relabel(labels):
    """Labels 0..K-1 by decreasing cluster size; -1 stays -1."""
    labels = np.asarray(labels)
    out = np.full(len(labels), -1, dtype=np.int64)
    valid = labels >= 0
    if valid.any():
        uniq, inv, counts = np.unique(labels[valid], return_inverse=True, return_counts=True)
        order = np.argsort(-counts, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        out[valid] = rank[inv]
    return out
