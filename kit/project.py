"""2-D / 3-D projections of embedding vectors (PCA, t-SNE, UMAP), cached on disk.

``project(X, method=...)`` returns a :class:`Projection` whose ``coords`` are an ``N x n_components``
float32 array. A projection is stored under ``<cache_dir>/<key>.npy`` where ``key`` is a BLAKE2b hash
of the vectors (as contiguous float32), their shape, the method, every parameter that changes the
result (including ``random_state`` and ``n_components``), a cache format version, the kit's version and
the versions of the libraries that compute it (numpy and scikit-learn, openTSNE or umap-learn and
pynndescent, read from the installed metadata without importing them); a second identical call reads
the file back instead of recomputing. Files are written to a temporary file in the same folder and
renamed into place, so a crash never leaves a half-written entry. The first write marks the folder with
``.kit-cache`` (kind ``projections``); :func:`clear_cache` deletes only ``<key>.npy`` files of a marked
folder.

scikit-learn, openTSNE and umap-learn are imported only when a projection of that kind is computed.
:func:`trustworthiness` scores how well a projection keeps each point's nearest neighbours.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
from io import BytesIO
import json
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path

import numpy as np

from ._config import __version__, kit_home
from .cache import _atomic_write, _claim, _is_plain_file, _require_marker
from ._validation import Interval, StrOptions, validate_params
from .progress import report

METHODS = ("pca", "tsne", "umap")
PROJECTION_CACHE_FORMAT = 1

# Keyword arguments that change logging only, never the coordinates: not part of the cache key.
# (``n_jobs`` is part of it: openTSNE's Annoy neighbours, used from N = 1000 on, depend on it.)
_NOT_IN_KEY = frozenset({"verbose", "callbacks", "callbacks_every_iters", "tqdm_kwds"})


def default_cache_dir() -> Path:
    """``$KIT_HOME/projections`` (``~/.cache/kit/projections`` by default). Not created here."""
    return kit_home() / "projections"


@dataclass(repr=False)
class Projection:
    """Low-dimensional coordinates of a set of vectors.

    Attributes
    ----------
    coords : ndarray (N, n_components) float32
        One row per input row, in the same order.
    method : str
        ``"pca"``, ``"tsne"`` or ``"umap"``.
    params : dict
        Every parameter the projection was computed with, including ``n_components``,
        ``random_state`` and the defaults the kit chose (``perplexity``, ``n_neighbors``, ``metric``...).
    seconds : float
        Wall time of the call that produced this object (reading the cache when ``from_cache``).
    from_cache : bool
        True when the coordinates were read from the on-disk cache.
    """

    coords: np.ndarray
    method: str
    params: dict = field(default_factory=dict)
    seconds: float = 0.0
    from_cache: bool = False

    @property
    def n_components(self) -> int:
        return int(self.coords.shape[1])

    def __len__(self) -> int:
        return int(self.coords.shape[0])

    def __repr__(self) -> str:
        src = "cache" if self.from_cache else f"{self.seconds:.2f} s"
        return f"Projection({self.method}, {self.coords.shape[0]} x {self.coords.shape[1]}, {src})"


# --------------------------------------------------------------------------- validation

def _as_matrix(X) -> np.ndarray:
    """Contiguous float32 2-D array from an array-like or an object with ``.vectors`` (``Embeddings``)."""
    if hasattr(X, "vectors"):
        X = X.vectors
    try:
        X = np.ascontiguousarray(X, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"X must be a numeric N x D array (or an Embeddings); converting it failed: {exc}") from None
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array of shape (N, D); got an array of shape {X.shape}. "
                         "Reshape it, e.g. X.reshape(len(X), -1)")
    if not np.isfinite(X).all():
        bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
        raise ValueError(f"X contains NaN or infinite values in {bad.size} row(s) (first: row {int(bad[0])}); "
                         "drop or impute those rows before projecting")
    return X


_CONSTRAINTS = {
    "method": [StrOptions(set(METHODS))],
    "n_components": [Interval(Integral, 1, 3, closed="both")],
    "random_state": ["random_state"],
    "use_cache": ["boolean"],
    "progress": [callable, None],
}
# Types and ranges of the estimator parameters the kit sets defaults for; the ranges that depend on N are
# checked once X is known (in the setup functions).
_METHOD_CONSTRAINTS = {
    "pca": {},
    "tsne": {"perplexity": [Interval(Real, 0, None, closed="neither")]},
    "umap": {"n_neighbors": [Interval(Integral, 2, None, closed="left")],
             "min_dist": [Interval(Real, 0, None, closed="left")]},
}


def _check_size(X: np.ndarray, n_components: int, method: str) -> None:
    n, d = X.shape
    need = max(3, n_components + 1)
    if n < need:
        raise ValueError(f"X has N={n} rows; a {n_components}-D {method} projection needs at least {need} "
                         "points. Project more points")
    if method == "pca" and d < n_components:
        raise ValueError(f"X has D={d} columns; PCA cannot give n_components={n_components} > D. "
                         f"Use n_components<={d} or another method")


def _check_params(method: str, cls, params: dict, reserved: tuple) -> None:
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self"}
    for name in params:
        if name in reserved:
            raise TypeError(f"project() got {name}= among **params; pass it as project({name}=...) instead")
        if name not in allowed:
            raise TypeError(f"project(method={method!r}) got an unexpected parameter {name!r}; "
                            f"{cls.__module__}.{cls.__name__} accepts: {', '.join(sorted(allowed - set(reserved)))}")


# --------------------------------------------------------------------------- the three methods

def _import(module: str, pip_name: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"this projection needs {pip_name}: pip install {pip_name} ({exc})") from exc


def _pca_setup(X, n_components, random_state, params):
    full = dict(params, n_components=n_components, random_state=random_state)

    def run():
        PCA = _import("sklearn.decomposition", "scikit-learn").PCA
        _check_params("pca", PCA, params, ("n_components", "random_state"))
        return PCA(**full).fit_transform(X)

    return full, run


def _tsne_setup(X, n_components, random_state, params):
    n = X.shape[0]
    max_perplexity = (n - 1) / 3
    full = dict(perplexity=min(30.0, max_perplexity), metric="cosine",
                negative_gradient_method="auto" if n_components <= 2 else "bh")
    full.update(params)
    if full["perplexity"] > max_perplexity + 1e-9:
        raise ValueError(f"perplexity={full['perplexity']!r} is too large for N={n} points; "
                         f"use at most (N-1)/3 = {max_perplexity:.4g}")
    if n_components > 2 and str(full["negative_gradient_method"]).lower() in {"fft", "interpolation"}:
        raise ValueError(f"negative_gradient_method={full['negative_gradient_method']!r} supports only "
                         f"n_components<=2 (got {n_components}); use negative_gradient_method='bh' for 3-D")
    full.update(n_components=n_components, random_state=random_state)
    full.setdefault("n_jobs", os.cpu_count() or 1)

    def run():
        openTSNE = _import("openTSNE", "openTSNE")
        _check_params("tsne", openTSNE.TSNE, params, ("n_components", "random_state"))
        return np.asarray(openTSNE.TSNE(**full).fit(X))

    return full, run


def _umap_setup(X, n_components, random_state, params):
    n = X.shape[0]
    full = dict(n_neighbors=min(15, n - 1), min_dist=0.1, metric="cosine")
    if n <= n_components + 2:
        # The spectral initialisation needs n_components + 1 eigenvectors of an N x N graph (k < N).
        full["init"] = "pca"
    full.update(params)
    if not 2 <= full["n_neighbors"] <= n - 1:
        raise ValueError(f"n_neighbors={full['n_neighbors']!r} is out of range for N={n} points; "
                         f"use a value between 2 and N-1 = {n - 1}")
    full.update(n_components=n_components, random_state=random_state)
    if random_state is not None:
        full.setdefault("n_jobs", 1)  # umap-learn is single-threaded when seeded; say so to skip its warning

    def run():
        umap = _import("umap", "umap-learn")
        _check_params("umap", umap.UMAP, params, ("n_components", "random_state"))
        with warnings.catch_warnings():
            # umap-learn warns that a seed disables parallelism; that trade-off is ours to make.
            warnings.filterwarnings("ignore", message=".*overridden to 1 by setting random_state.*")
            return umap.UMAP(**full).fit_transform(X)

    return full, run


_SETUP = {"pca": _pca_setup, "tsne": _tsne_setup, "umap": _umap_setup}


# --------------------------------------------------------------------------- cache

def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, (tuple, set, frozenset)):
        return sorted(obj) if isinstance(obj, (set, frozenset)) else list(obj)
    raise TypeError(type(obj).__name__)


# The distributions whose code computes each kind of projection (importlib.metadata names).
_LIBRARIES = {"pca": ("numpy", "scikit-learn"), "tsne": ("numpy", "scikit-learn", "openTSNE"),
              "umap": ("numpy", "scikit-learn", "umap-learn", "pynndescent")}
_KEY_FILE = re.compile(r"[0-9a-f]{40}\.npy")
_TMP_FILE = re.compile(r"\.tmp-[a-z0-9_]{8}")


@functools.lru_cache(maxsize=None)
def _library_versions(method: str) -> dict:
    """``{distribution: version}`` of what computes ``method`` (None when not installed), read from the installed
    metadata: nothing is imported."""
    from importlib import metadata

    out = {}
    for dist in _LIBRARIES[method]:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _cache_key(X: np.ndarray, method: str, params: dict) -> str | None:
    """BLAKE2b of (format, kit and library versions, method, shape, params, vectors); None when the params are
    not JSON-able (a callable metric, an array initialisation...) or the result is not reproducible (no int
    seed)."""
    if not isinstance(params.get("random_state"), int):
        return None
    try:
        header = json.dumps({"format": PROJECTION_CACHE_FORMAT, "method": method, "shape": list(X.shape),
                             "dtype": "float32", "kit": __version__, "libraries": _library_versions(method),
                             "params": {k: v for k, v in params.items() if k not in _NOT_IN_KEY}},
                            sort_keys=True, default=_json_default)
    except (TypeError, ValueError):
        return None
    h = hashlib.blake2b(digest_size=20)
    h.update(header.encode())
    h.update(b"\0")
    h.update(memoryview(X).cast("B"))
    return h.hexdigest()


def _read_cached(path: Path, n: int, n_components: int):
    try:
        coords = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        warnings.warn(f"unreadable cached projection {path} ({exc}); recomputing it", RuntimeWarning, stacklevel=3)
        return None
    if coords.shape != (n, n_components) or coords.dtype != np.float32:
        warnings.warn(f"cached projection {path} has shape {coords.shape}, expected {(n, n_components)}; "
                      "recomputing it", RuntimeWarning, stacklevel=3)
        return None
    return coords


def _is_entry(p: Path) -> bool:
    return bool(_KEY_FILE.fullmatch(p.name)) and _is_plain_file(p)


def _claim_folder(folder: Path) -> None:
    """Mark ``folder`` as the projection cache before its first entry; refuse a folder holding other files."""
    _claim(folder, "projections", PROJECTION_CACHE_FORMAT, "cache_dir", _is_entry)


def _write_cached(path: Path, coords: np.ndarray) -> None:
    buf = BytesIO()
    np.save(buf, coords, allow_pickle=False)
    _claim_folder(path.parent)
    _atomic_write(path, buf.getvalue())


def clear_cache(cache_dir=None) -> int:
    """Delete cached projections; return how many were removed (0 when ``cache_dir`` does not exist or is empty).

    Only what :func:`project` wrote is deleted: ``cache_dir`` must carry the ``.kit-cache`` marker of a projection
    cache (else ``ValueError``, nothing deleted), and in it only ``<40 hex digits>.npy`` files and temporary
    files of interrupted writes are removed. Anything else, the marker and the folder itself stay. A cache
    written before markers existed is adopted at the default location (``$KIT_HOME/projections``) only.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> _ = project(np.random.default_rng(0).normal(size=(20, 4)), method="pca", cache_dir=folder)
    >>> clear_cache(folder)
    1
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if not root.exists() or (root.is_dir() and not any(root.iterdir())):
        return 0  # nothing there to delete
    _require_marker(root, "projections", PROJECTION_CACHE_FORMAT, default_cache_dir(),
                    lambda r: r.is_dir() and any(_is_entry(p) for p in r.iterdir()))
    removed = 0
    for p in list(root.iterdir()):
        if _is_entry(p):
            p.unlink(missing_ok=True)
            removed += 1
        elif _TMP_FILE.fullmatch(p.name) and _is_plain_file(p):
            p.unlink(missing_ok=True)
    return removed


# --------------------------------------------------------------------------- public API

def project(X, method: str = "umap", n_components: int = 2, random_state=0, cache_dir=None,
            use_cache: bool = True, progress=None, **params) -> Projection:
    """Project vectors to 2-D (or 3-D) with PCA, t-SNE (openTSNE) or UMAP (umap-learn), cached on disk.

    Parameters
    ----------
    X : array-like (N, D) or Embeddings
        The vectors (an ``Embeddings`` is read through its ``.vectors``). Converted to float32;
        NaN or infinite values raise ``ValueError``.
    method : {"umap", "tsne", "pca"}, default "umap"
    n_components : int, default 2
        2 or 3 (1 also works). Needs ``N >= max(3, n_components + 1)``.
    random_state : int, RandomState or None, default 0
        Seed of every random step. Only results with an int seed are cached (others are not
        reproducible). With a seed, UMAP runs single-threaded.
    cache_dir : str or Path, optional
        Where ``<key>.npy`` files go; defaults to ``default_cache_dir()`` (``$KIT_HOME/projections``). The folder
        is marked as a projection cache (``.kit-cache``); one that already holds other files is refused
        (``ValueError``). :func:`clear_cache` empties it.
    use_cache : bool, default True
        False neither reads nor writes the cache.
    progress : callable(done, total, stage), optional
        Called with ``(0, 1, "projection")`` at the start and ``(1, 1, "projection")`` at the end.
    **params
        Passed to the estimator: ``sklearn.decomposition.PCA``, ``openTSNE.TSNE`` or ``umap.UMAP``.
        Kit defaults: t-SNE ``perplexity=min(30, (N-1)/3)``, ``metric="cosine"``,
        ``n_jobs=os.cpu_count()``, ``negative_gradient_method="bh"`` for 3-D; UMAP
        ``n_neighbors=min(15, N-1)``, ``min_dist=0.1``, ``metric="cosine"`` (and ``init="pca"`` when
        ``N <= n_components + 2``, too few points for its spectral initialisation). Parameters that are not
        JSON-serialisable (a callable metric, an array initialisation) disable the cache for the call.
        For N >= 1000 openTSNE's approximate neighbours, hence the coordinates, depend on ``n_jobs``
        (which is part of the cache key). On a machine whose cores are busy, openTSNE's OpenMP threads
        spin-wait and can run ten times slower than ``n_jobs=1``: pass ``n_jobs=1`` there, or start
        Python with ``OMP_WAIT_POLICY=passive``.

    Returns
    -------
    Projection
        ``coords`` (N x n_components float32), ``method``, ``params``, ``seconds``, ``from_cache``.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> X = np.random.default_rng(0).normal(size=(50, 8))
    >>> p = project(X, method="pca", cache_dir=tempfile.mkdtemp())
    >>> p.coords.shape, p.coords.dtype.name, p.from_cache
    ((50, 2), 'float32', False)
    """
    start = time.perf_counter()
    method = method.lower() if isinstance(method, str) else method
    validate_params(_CONSTRAINTS, {"method": method, "n_components": n_components, "random_state": random_state,
                                   "use_cache": use_cache, "progress": progress}, "project")
    known = _METHOD_CONSTRAINTS[method]
    validate_params(known, {k: v for k, v in params.items() if k in known}, f"project(method={method!r})")
    n_components = int(n_components)
    random_state = int(random_state) if isinstance(random_state, Integral) else random_state
    X = _as_matrix(X)
    _check_size(X, n_components, method)

    # ``run`` imports the library and checks the parameter names: only on a cache miss (a cached result was
    # made with valid ones), so reading a cached projection needs neither openTSNE, umap-learn nor scikit-learn
    full, run = _SETUP[method](X, n_components, random_state, dict(params))
    report(progress, 0, 1, "projection")

    path = None
    if use_cache:
        key = _cache_key(X, method, full)
        if key is not None:
            folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
            _claim_folder(folder)  # before computing: a folder that is not a projection cache is refused
            path = folder / f"{key}.npy"
            coords = _read_cached(path, X.shape[0], n_components)
            if coords is not None:
                report(progress, 1, 1, "projection")
                return Projection(coords=coords, method=method, params=full,
                                  seconds=time.perf_counter() - start, from_cache=True)

    coords = np.ascontiguousarray(run(), dtype=np.float32)
    if path is not None:
        _write_cached(path, coords)
    report(progress, 1, 1, "projection")
    return Projection(coords=coords, method=method, params=full, seconds=time.perf_counter() - start,
                      from_cache=False)


def trustworthiness(X, coords, n_neighbors: int = 10, metric: str = "cosine") -> float:
    """How well a projection keeps each point's neighbours, in [0, 1] (1 = no intruders).

    Wraps ``sklearn.manifold.trustworthiness``: it penalises points that are among a point's
    ``n_neighbors`` nearest in the projection but not in the original space.

    Parameters
    ----------
    X : array-like (N, D) or Embeddings
        The original vectors.
    coords : array-like (N, k) or Projection
    n_neighbors : int, default 10
        Must be below N / 2.
    metric : str, default "cosine"
        Distance in the original space (the projection is always compared with Euclidean distance).

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(40, 5))
    >>> round(trustworthiness(X, X[:, :5], n_neighbors=5, metric="euclidean"), 3)
    1.0
    """
    validate_params({"n_neighbors": [Interval(Integral, 1, None, closed="left")], "metric": [str, callable]},
                    {"n_neighbors": n_neighbors, "metric": metric}, "trustworthiness")
    from sklearn.manifold import trustworthiness as _tw

    X = _as_matrix(X)
    if isinstance(coords, Projection):
        coords = coords.coords
    coords = _as_matrix(coords)
    if coords.shape[0] != X.shape[0]:
        raise ValueError(f"coords has {coords.shape[0]} rows but X has {X.shape[0]}; "
                         "pass the projection of these very vectors")
    n = X.shape[0]
    if not n_neighbors < n / 2:
        raise ValueError(f"trustworthiness: n_neighbors={n_neighbors!r} must be below N/2 = {n / 2:g}; lower it")
    return float(_tw(X, coords, n_neighbors=int(n_neighbors), metric=metric))
