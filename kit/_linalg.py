"""Small linear-algebra helpers shared across the kit (one definition each)."""
from __future__ import annotations

import numpy as np


def l2_normalize(X, axis: int = 1, eps: float = 1e-12, *, dtype=np.float32) -> np.ndarray:
    """``X`` (float32, or ``dtype``) with each row (``axis=1``; ``axis=0``: each column) scaled to unit L2 norm;
    norms below ``eps`` count as ``eps``, so all-zero rows stay zero. ``dtype=np.float64`` keeps full precision
    where the caller needs it (average-linkage heights, gallery similarities)."""
    X = np.asarray(X, dtype=dtype)
    norms = np.linalg.norm(X, axis=axis, keepdims=True)
    return X / np.maximum(norms, eps)
