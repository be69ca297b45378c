"""The face-clustering data format of MS1M as used by "On Mitigating Hard Clusters for Face Clustering" (ECCV 2022).

- features, ``xxx.bin``: raw little-endian float32 rows, no header; the dimension comes from the caller.
- labels, ``xxx.meta``: one integer label per line.
- kNN graphs, ``faiss_k_80.npz``: one array ``data`` of shape (N, 2, k), ``[:, 0, :]`` the neighbour indices
  (stored as floats) and ``[:, 1, :]`` the distances (1 - cosine similarity). Files with separate arrays
  ``nbrs`` and ``dists`` are read as well.
"""
from __future__ import annotations

import os
import zipfile
import zlib

import numpy as np

_FLOAT32 = np.dtype("<f4")
_EXACT_FLOAT32_INT = 2 ** 24  # float32 holds every integer below this exactly


def write_features_bin(path, X) -> None:
    """Write features as raw float32 rows, no header (the ``.bin`` layout).

    Parameters
    ----------
    path : str or PathLike
    X : array-like of shape (n_samples, dim)

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> path = tempfile.mkdtemp() + "/part.bin"
    >>> write_features_bin(path, np.eye(3))
    >>> read_features_bin(path, dim=3).shape
    (3, 3)
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, dim), got shape {X.shape}; reshape it before writing.")
    with open(path, "wb") as f:
        f.write(np.ascontiguousarray(X, dtype=_FLOAT32).tobytes())


def read_features_bin(path, dim: int, mmap: bool = False) -> np.ndarray:
    """Read a ``.bin`` feature file of float32 rows of length ``dim``.

    Parameters
    ----------
    path : str or PathLike
    dim : int
        Feature dimension (the file has no header; 256 for the MS1M features of that benchmark).
    mmap : bool, default False
        Map the file read-only instead of loading it (for files larger than memory).

    Returns
    -------
    ndarray of shape (n_samples, dim), float32
    """
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"dim={dim!r} must be a positive integer: the feature dimension of the file.")
    size = os.path.getsize(path)
    if size % (dim * 4):
        raise ValueError(f"dim={dim} does not fit {path}: its size, {size} bytes, is not a multiple of "
                         f"dim * 4 = {dim * 4} bytes; pass the dimension the features were written with.")
    n = size // (dim * 4)
    if mmap and n:
        return np.memmap(path, dtype=_FLOAT32, mode="r", shape=(n, dim))
    return np.fromfile(path, dtype=_FLOAT32).reshape(n, dim).astype(np.float32, copy=False)


def write_meta(path, labels) -> None:
    """Write one integer label per line (the ``.meta`` layout).

    Examples
    --------
    >>> import tempfile
    >>> path = tempfile.mkdtemp() + "/part.meta"
    >>> write_meta(path, [3, 3, 7])
    >>> read_meta(path).tolist()
    [3, 3, 7]
    """
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {arr.shape}; pass one label per sample.")
    if arr.size and (arr.dtype.kind not in "iub" and not
                     (arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)))):
        raise ValueError(f"labels must be integers, got dtype {arr.dtype}; map them to integers first "
                         "(e.g. pandas.factorize).")
    with open(path, "w", encoding="ascii") as f:
        f.writelines(f"{int(x)}\n" for x in arr)


def read_meta(path) -> np.ndarray:
    """Read a ``.meta`` file: one integer label per line (trailing blank lines ignored).

    Returns
    -------
    ndarray of shape (n_samples,), int64
    """
    try:
        with open(path, encoding="ascii") as f:
            lines = f.read().rstrip("\r\n").splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: byte {exc.start} is not ASCII ({exc.object[exc.start:exc.start + 1]!r}), so this "
                         "is not a .meta file (one integer label per line) or it is damaged; write it again "
                         "(write_meta).") from None
    labels = np.empty(len(lines), dtype=np.int64)
    for i, line in enumerate(lines):
        try:
            labels[i] = int(line)
        except (ValueError, OverflowError):
            raise ValueError(f"{path}: line {i + 1} is {line!r}, not an integer label; a .meta file holds one "
                             "integer per line.") from None
    return labels


def write_knn_npz(path, neighbours, distances) -> None:
    """Write a kNN graph in the original layout: ``data`` of shape (N, 2, k), compressed.

    Neighbour indices are stored as float32 when exact (N below 2**24), else float64.

    Parameters
    ----------
    path : str or PathLike
    neighbours : array-like of shape (N, k), ints (-1 for a missing neighbour, as faiss gives)
    distances : array-like of shape (N, k), 1 - cosine similarity

    Examples
    --------
    >>> import tempfile
    >>> path = tempfile.mkdtemp() + "/faiss_k_2.npz"
    >>> write_knn_npz(path, [[0, 1], [1, 0]], [[0.0, 0.2], [0.0, 0.2]])
    >>> read_knn_npz(path)[0].tolist()
    [[0, 1], [1, 0]]
    """
    nbrs, dists = np.asarray(neighbours), np.asarray(distances)
    if nbrs.ndim != 2 or nbrs.shape != dists.shape:
        raise ValueError(f"neighbours and distances must both have shape (N, k); got {nbrs.shape} and "
                         f"{dists.shape}.")
    if nbrs.size and nbrs.dtype.kind not in "iu" and not np.array_equal(nbrs, np.round(nbrs)):
        raise ValueError(f"neighbours must hold integer indices, got dtype {nbrs.dtype} with fractions; "
                         "pass the index array faiss returned.")
    exact = nbrs.size == 0 or np.abs(nbrs).max() < _EXACT_FLOAT32_INT
    data = np.stack([nbrs, dists], axis=1).astype(np.float32 if exact else np.float64)
    np.savez_compressed(path, data=data)


def read_knn_npz(path) -> tuple:
    """Read a kNN graph: the ``data`` (N, 2, k) layout of that benchmark, or arrays ``nbrs`` and ``dists``.

    Returns
    -------
    neighbours : ndarray of shape (N, k), int64
    distances : ndarray of shape (N, k), float32
    """
    damaged = (f"; it may be cut short or damaged: write it again (write_knn_npz), from the features if need be.")
    try:
        z = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:  # (a missing file stays an OSError)
        raise ValueError(f"{path} is not a readable .npz file ({type(exc).__name__}: {exc}){damaged}") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise ValueError(f"{path} holds a single array of shape {np.shape(z)}, not an .npz archive with 'data' "
                         f"(N, 2, k) or 'nbrs' and 'dists'; save it with write_knn_npz.")
    with z:
        try:
            if "data" in z.files:
                data = z["data"]
                if data.ndim != 3 or data.shape[1] != 2:
                    raise ValueError(f"{path}: array 'data' has shape {data.shape}, expected (N, 2, k) with "
                                     "neighbour indices in [:, 0, :] and distances in [:, 1, :].")
                nbrs, dists = data[:, 0, :], data[:, 1, :]
            elif "nbrs" in z.files and "dists" in z.files:
                nbrs, dists = z["nbrs"], z["dists"]
            else:
                raise ValueError(f"{path} holds arrays {sorted(z.files)}; expected 'data' (N, 2, k) or 'nbrs' "
                                 "and 'dists' (N, k) each.")
        except (EOFError, OSError, zipfile.BadZipFile, zlib.error) as exc:
            raise ValueError(f"{path}: an array cannot be read ({type(exc).__name__}: {exc}){damaged}") from None
        except ValueError as err:
            if "allow_pickle" not in str(err):
                if str(path) in str(err):
                    raise
                raise ValueError(f"{path}: an array cannot be read ({err}){damaged}") from None
            raise ValueError(f"{path} stores its kNN lists as pickled objects (ragged rows?), which are not "
                             "loaded for safety; re-save it as a numeric (N, 2, k) array.") from None
    if nbrs.ndim != 2 or nbrs.shape != dists.shape:
        raise ValueError(f"{path}: neighbours and distances must both be (N, k); got {nbrs.shape} and "
                         f"{dists.shape}.")
    if nbrs.dtype.kind not in "iuf" or dists.dtype.kind not in "iuf":
        raise ValueError(f"{path}: neighbours and distances must be numbers, got dtypes {nbrs.dtype} and "
                         f"{dists.dtype}; save them with write_knn_npz.")
    n = len(nbrs)
    bad = ~np.isfinite(nbrs) | (nbrs != np.round(nbrs)) | (nbrs < -1) | (nbrs >= n) | np.isnan(dists)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"{path}: row {i}, neighbour {j} is index {nbrs[i, j].item()!r} with distance "
                         f"{dists[i, j].item()!r}; "
                         f"indices are whole numbers in [-1, {n}) (-1: none) and distances are not NaN{damaged}")
    return np.rint(nbrs).astype(np.int64), dists.astype(np.float32)
