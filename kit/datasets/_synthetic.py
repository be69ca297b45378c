"""Generated identities for scale tests and benchmarks of face clustering: many identities of heavy-tailed sizes
and varied spreads on the unit sphere, like the deep face features of MS-Celeb-1M (MS1M part1_test: 584,013 photos
of 8,573 identities, 256-D), deterministic for a given ``random_state`` and generated in chunks of float32 rows.
"""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from .._utils.validation import Interval, validate_params

#: Mean photos per identity of MS1M part1_test (584,013 / 8,573): the default ``n_samples / n_identities``.
MS1M_MEAN_SIZE = 68
_CHUNK_ROWS = 65536  # rows generated at once (memory ~ chunk x dim float32); fixed, so results never depend on it


def _sizes(rng: np.random.Generator, n_samples: int, n_identities: int, size_tail: float) -> np.ndarray:
    """Identity sizes summing to ``n_samples``, each at least 1, the rest shared in proportion to Lomax (Pareto
    type II) weights of tail index ``size_tail`` (largest remainders rounded up)."""
    weights = rng.pareto(size_tail, n_identities) + 1e-12
    share = weights / weights.sum() * (n_samples - n_identities)
    sizes = np.floor(share).astype(np.int64)
    left = n_samples - n_identities - int(sizes.sum())
    if left:
        sizes[np.argsort(-(share - sizes), kind="stable")[:left]] += 1
    return sizes + 1


def synthetic_identities(n_samples: int = 10000, dim: int = 256, *, n_identities: int | None = None,
                         size_tail: float = 3.0, spread=(0.25, 0.6), center_dim: int | None = None,
                         random_state=0):
    """Features of many generated identities: unit float32 rows around one centre per identity.

    Made for scale tests and benchmarks of face clustering (MS1M-like: many identities, heavy-tailed sizes, some
    identities compact and others sparse, look-alike identities close to each other), not to train on.

    - **sizes**: every identity has one sample, and the other ``n_samples - n_identities`` are shared in
      proportion to Lomax (Pareto II) weights of tail index ``size_tail``: many small identities and a few very
      large ones (smaller ``size_tail``: a heavier tail).
    - **centres**: random unit vectors in a random ``center_dim``-dimensional subspace of the ``dim`` dimensions;
      with fewer centre dimensions, and with more identities, the nearest identities look more alike (the cosine
      between centres spreads about ``1 / sqrt(center_dim)``).
    - **spread**: every identity gets a target sparsity drawn uniformly in ``spread``; its samples are its centre
      plus isotropic Gaussian noise of squared norm ``s^2 = sparsity / (1 - sparsity)``, then L2-normalised, so
      the mean cosine between two of its samples is about ``1 / (1 + s^2)`` and its sparsity (the mean cosine
      distance over its pairs, ``kit.metrics.identity_sparsity``) about the target.
    - the samples come in a random order (labels shuffled), generated in chunks of rows: memory is the output
      (``n_samples x dim x 4`` bytes, 600 MB at 584,000 x 256) plus one chunk.

    Parameters
    ----------
    n_samples : int, default 10000
        Number of samples (rows).
    dim : int, default 256
        Dimension of the features.
    n_identities : int, optional
        Number of identities, at most ``n_samples``; default ``round(n_samples / 68)`` (MS1M part1_test's mean of
        68 photos per identity), at least 1.
    size_tail : float, default 3.0
        Tail index of the identity sizes (> 0; smaller is heavier-tailed). At 3.0 and 584,000 samples the
        median identity has about 35 samples and the largest a few thousand.
    spread : (float, float), default (0.25, 0.6)
        Lowest and highest target sparsity of an identity, in [0, 1).
    center_dim : int, optional
        Dimension of the subspace holding the identity centres (1 to ``dim``); default ``min(32, dim)``.
    random_state : int, numpy.random.RandomState or None, default 0
        The same value gives the same samples and labels.

    Returns
    -------
    X : numpy.ndarray of shape (n_samples, dim), float32
        L2-normalised rows.
    labels : numpy.ndarray of shape (n_samples,), int64
        The identity of every row, 0 to ``n_identities - 1``, every identity present.

    Examples
    --------
    >>> X, labels = synthetic_identities(1000, 64, random_state=0)
    >>> X.shape, X.dtype.name, int(labels.max()) + 1
    ((1000, 64), 'float32', 15)
    """
    validate_params({"n_samples": [Interval(Integral, 1, None, closed="left")],
                     "dim": [Interval(Integral, 2, None, closed="left")],
                     "n_identities": [Interval(Integral, 1, None, closed="left"), None],
                     "size_tail": [Interval(Real, 0, None, closed="neither")],
                     "spread": [tuple, list], "center_dim": [Interval(Integral, 1, None, closed="left"), None],
                     "random_state": ["random_state"]},
                    {"n_samples": n_samples, "dim": dim, "n_identities": n_identities, "size_tail": size_tail,
                     "spread": spread, "center_dim": center_dim, "random_state": random_state},
                    "synthetic_identities")
    n_samples, dim = int(n_samples), int(dim)
    center_dim = min(32, dim) if center_dim is None else int(center_dim)
    if n_identities is None:
        n_identities = max(1, round(n_samples / MS1M_MEAN_SIZE))
    n_identities = int(n_identities)
    if n_identities > n_samples:
        raise ValueError(f"n_identities={n_identities} is more than n_samples={n_samples}; every identity needs "
                         f"a sample: pass n_identities <= {n_samples}.")
    if center_dim > dim:
        raise ValueError(f"center_dim={center_dim} is more than dim={dim}; pass center_dim <= {dim}.")
    bounds = tuple(spread)
    if (len(bounds) != 2 or not all(isinstance(b, Real) and not isinstance(b, (bool, np.bool_)) for b in bounds)
            or not 0 <= bounds[0] <= bounds[1] < 1):
        raise ValueError(f"spread={spread!r} must be two sparsities (lowest, highest) with 0 <= lowest <= highest "
                         "< 1, e.g. (0.25, 0.6).")
    from sklearn.utils import check_random_state  # here: importing kit.datasets stays cheap

    seed = int(check_random_state(random_state).randint(0, 2**32 - 1, dtype=np.int64))
    parts = np.random.SeedSequence(seed).spawn(2)
    rng = np.random.default_rng(parts[0])
    sizes = _sizes(rng, n_samples, n_identities, float(size_tail))
    basis = np.linalg.qr(rng.standard_normal((dim, center_dim)))[0]  # (dim, center_dim), orthonormal columns
    centers = rng.standard_normal((n_identities, center_dim)) @ basis.T
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    sparsity = rng.uniform(bounds[0], bounds[1], n_identities)
    noise_scale = np.sqrt(sparsity / (1.0 - sparsity)) / np.sqrt(dim)  # per-coordinate noise: norm^2 ~ s^2
    labels = rng.permutation(np.repeat(np.arange(n_identities, dtype=np.int64), sizes))

    X = np.empty((n_samples, dim), np.float32)
    chunk_seeds = parts[1].spawn((n_samples + _CHUNK_ROWS - 1) // _CHUNK_ROWS)
    centers32, scale32 = centers.astype(np.float32), noise_scale.astype(np.float32)
    for i, lo in enumerate(range(0, n_samples, _CHUNK_ROWS)):
        rows = labels[lo:lo + _CHUNK_ROWS]
        block = np.random.default_rng(chunk_seeds[i]).standard_normal((len(rows), dim), dtype=np.float32)
        block *= scale32[rows, None]
        block += centers32[rows]
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        X[lo:lo + len(rows)] = block
    return X, labels
