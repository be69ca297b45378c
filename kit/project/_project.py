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

A computed :class:`Projection` keeps its fitted model (scikit-learn ``PCA``, openTSNE ``TSNEEmbedding``, umap-learn
``UMAP``), so :meth:`Projection.transform` places new points on the same map; a projection read from the cache
rebuilds what placing needs on its first ``transform`` (see there). t-SNE and UMAP report their optimisation through
``progress(done, total, stage)`` (stages ``"t-SNE"``, ``"UMAP"``; ``"PCA"`` reports its start and end).

scikit-learn, openTSNE and umap-learn are imported only when a projection of that kind is computed.
:func:`trustworthiness` scores how well a projection keeps each point's nearest neighbours.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import re
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import BytesIO
from numbers import Integral, Real
from pathlib import Path

import numpy as np

from .._utils.config import __version__, kit_home
from .._utils.files import atomic_write, claim, is_plain_file, require_marker
from .._utils.validation import Interval, StrOptions, validate_params
from ..progress import report

METHODS = ("pca", "tsne", "umap")
PROJECTION_CACHE_FORMAT = 1

# Keyword arguments that change logging only, never the coordinates: not part of the cache key.
# (``n_jobs`` is part of it: openTSNE's Annoy neighbours, used from N = 1000 on, depend on it.)
_NOT_IN_KEY = frozenset({"verbose", "callbacks", "callbacks_every_iters", "tqdm_kwds"})
# The stage names ``progress`` sees.
_STAGE = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}


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
    model : object or None
        The fitted model behind ``coords``: a ``sklearn.decomposition.PCA``, an ``openTSNE.TSNEEmbedding`` or a
        ``umap.UMAP``. None for a projection read from the cache until its first :meth:`transform` rebuilds it.

    The projection also keeps a reference to the vectors it was computed from (as float32, no copy when they
    already were), which :meth:`transform` needs to rebuild the model of a cached projection.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> X = np.random.default_rng(0).normal(size=(50, 8))
    >>> p = project(X[:40], method="pca", cache_dir=tempfile.mkdtemp())
    >>> p.transform(X[40:]).shape
    (10, 2)
    """

    coords: np.ndarray
    method: str
    params: dict = field(default_factory=dict)
    seconds: float = 0.0
    from_cache: bool = False
    model: object = field(default=None, compare=False)
    _data: np.ndarray | None = field(default=None, init=False, compare=False)

    @property
    def n_components(self) -> int:
        return int(self.coords.shape[1])

    def __len__(self) -> int:
        return int(self.coords.shape[0])

    def __repr__(self) -> str:
        src = "cache" if self.from_cache else f"{self.seconds:.2f} s"
        return f"Projection({self.method}, {self.coords.shape[0]} x {self.coords.shape[1]}, {src})"

    def transform(self, X_new, progress=None, **params) -> np.ndarray:
        """Place new points on this projection's map, without moving the points already on it.

        PCA applies the fitted linear map. t-SNE uses ``openTSNE.TSNEEmbedding.transform`` (each new point starts
        at the median of its nearest training points, then is optimised against the fixed map). UMAP uses
        ``umap.UMAP.transform`` (the new points' neighbour graph to the training points, then a short
        optimisation against the fixed map, seeded by UMAP's ``transform_seed``).

        A projection read from the cache (``from_cache``) has no model in memory. Its first ``transform`` rebuilds
        what placing needs from the vectors it was computed from, with the same parameters and ``random_state``,
        stores it in ``model`` and places the points: PCA is refitted (cheap); t-SNE recomputes its affinities
        (the neighbour index of the training vectors) and UMAP its neighbour graph and search index, but neither
        reruns its optimisation: the map is ``coords`` as read from the cache. New points are therefore placed
        against exactly the coordinates shown, and get the same positions as they would on the freshly computed
        projection. The rebuild costs roughly a neighbour search over the training vectors.

        Parameters
        ----------
        X_new : array-like (M, D) or Embeddings
            New vectors with the same D (and the same kind: same backbone, same preprocessing) as the projected
            ones.
        progress : callable(done, total, stage), optional
            Stages ``"<method> refit"`` (the rebuild of a cached projection), then ``"PCA transform"``,
            ``"t-SNE transform"`` (per optimisation iteration) or ``"UMAP transform"`` (per epoch).
        **params
            t-SNE only: passed to ``openTSNE.TSNEEmbedding.transform`` (``perplexity`` (kit default
            ``min(5, (N-1)/3)``), ``k``, ``n_iter``, ``learning_rate``...). PCA and UMAP take none.

        Returns
        -------
        ndarray (M, n_components) float32
            In the frame of ``coords``: plot both together.

        Raises
        ------
        ValueError
            ``X_new`` is not finite or has another number of columns; the projection was built by hand (no model
            and no vectors to rebuild one).

        Examples
        --------
        >>> import numpy as np, tempfile
        >>> X = np.random.default_rng(0).normal(size=(60, 8))
        >>> p = project(X[:50], method="pca", cache_dir=tempfile.mkdtemp())
        >>> p.transform(X[50:]).dtype.name
        'float32'
        """
        validate_params({"progress": [callable, None]}, {"progress": progress}, "Projection.transform")
        X_new = _as_matrix(X_new)
        if self.model is None and self._data is None:
            raise ValueError(f"this {self.method} Projection holds neither a fitted model nor the vectors it was "
                             "computed from (it was built by hand), so it cannot place new points; compute it with "
                             "kit.project.project(X, method=...) and call transform on that result")
        n_features = self._data.shape[1] if self._data is not None else _model_n_features(self.method, self.model)
        if n_features is not None and X_new.shape[1] != n_features:
            raise ValueError(f"X_new has D={X_new.shape[1]} columns but this projection was computed from D="
                             f"{n_features}; pass vectors from the same backbone and preprocessing")
        _check_transform_params(self.method, params, self.params)
        if len(X_new) == 0:
            return np.zeros((0, self.n_components), np.float32)
        stage = _STAGE[self.method]
        if self.model is None:
            report(progress, 0, 1, f"{stage} refit")
            self.model = _REBUILD[self.method](self._data, self.params, self.coords)
            report(progress, 1, 1, f"{stage} refit")
        placed = _PLACE[self.method](self.model, self.coords, X_new, params, progress, f"{stage} transform")
        return np.ascontiguousarray(placed, dtype=np.float32)


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


# --------------------------------------------------------------------------- progress

class _Reporter:
    """``progress(done, total, stage)`` at most once per whole percent (about 100 calls a stage), never backwards."""

    def __init__(self, progress, total, stage):
        self.progress, self.total, self.stage, self._last = progress, max(int(total), 1), stage, -1

    def __call__(self, done, total=None):
        if total is not None:
            self.total = max(int(total), 1)
        done = min(int(done), self.total)
        percent = done * 100 // self.total
        if percent > self._last:
            self._last = percent
            self.progress(done, self.total, self.stage)


class _TSNEProgress:
    """An openTSNE callback turning the iterations of its optimisation phases (early exaggeration, then the
    main phase; openTSNE restarts its count for each) into one running count. It never stops the optimisation;
    the kit's ``progress`` may raise to do so."""

    def __init__(self, report, phases):
        self.report, self.phases, self._phase, self._offset = report, [int(p) for p in phases], -1, 0

    def optimization_about_to_start(self):  # openTSNE calls this at the start of each phase
        self._phase += 1
        self._offset = sum(self.phases[:self._phase])

    def __call__(self, iteration, error, embedding):
        self.report(self._offset + iteration)
        return False


def _with_tsne_progress(kw: dict, user_callbacks, report, phases, every_given: bool) -> None:
    """Add the kit's progress callback to openTSNE keyword arguments ``kw`` (keeping the user's callbacks)."""
    if user_callbacks is None:
        user = []
    elif callable(user_callbacks):
        user = [user_callbacks]
    elif isinstance(user_callbacks, (list, tuple)):
        user = list(user_callbacks)
    else:
        raise ValueError(f"callbacks={user_callbacks!r} must be a callable or a list of callables "
                         "(openTSNE's callback(iteration, error, embedding))")
    kw["callbacks"] = user + [_TSNEProgress(report, phases)]
    if not user and not every_given:
        kw["callbacks_every_iters"] = 10  # finer than openTSNE's 50; only the kit's callback runs this often


# umap-learn reports its epochs only through a tqdm bar (``for n in tqdm(range(n_epochs))`` in umap.layouts). While
# a kit call with ``progress`` runs, ``umap.layouts.tqdm`` is an ``_EpochReports``: in the thread that registered a
# reporter it also reports each epoch; everywhere else it is the original tqdm. The original is put back when the
# last such call ends. umap-learn versions without that loop just report the start and the end.
_UMAP_LOCK = threading.Lock()
_UMAP_USERS = 0
_UMAP_LOCAL = threading.local()


class _EpochReports:
    def __init__(self, original):
        self.original = original

    def __call__(self, iterable=None, *args, **kwargs):
        bar = self.original(iterable, *args, **kwargs)
        reporter = getattr(_UMAP_LOCAL, "reporter", None)
        if reporter is None or iterable is None:
            return bar
        total = len(iterable) if hasattr(iterable, "__len__") else kwargs.get("total")
        return _epochs(bar, total, reporter) if total else bar


def _epochs(bar, total, reporter):
    for i, item in enumerate(bar):
        if i:
            reporter(i, total)  # epoch i - 1 is done
        yield item
    reporter(total, total)


@contextmanager
def _umap_epochs(progress, stage: str, expected: int):
    """Report umap-learn's epochs to ``progress`` under ``stage`` while the block runs (nothing when None)."""
    global _UMAP_USERS
    if progress is None:
        yield
        return
    reporter = _Reporter(progress, expected, stage)
    reporter(0)
    import umap.layouts as layouts

    patchable = hasattr(layouts, "tqdm")
    if patchable:
        with _UMAP_LOCK:
            if not isinstance(layouts.tqdm, _EpochReports):
                layouts.tqdm = _EpochReports(layouts.tqdm)
            _UMAP_USERS += 1
    previous = getattr(_UMAP_LOCAL, "reporter", None)
    _UMAP_LOCAL.reporter = reporter
    try:
        yield
    finally:
        _UMAP_LOCAL.reporter = previous
        if patchable:
            with _UMAP_LOCK:
                _UMAP_USERS -= 1
                if _UMAP_USERS == 0 and isinstance(layouts.tqdm, _EpochReports):
                    layouts.tqdm = layouts.tqdm.original
    reporter(reporter.total)


def _umap_fit_epochs(params: dict, n: int) -> int:
    """How many epochs umap-learn's fit will run (its defaults: 500 up to 10,000 points, else 200; +200 densMAP)."""
    n_epochs = params.get("n_epochs")
    if n_epochs is None:
        return (500 if n <= 10_000 else 200) + (200 if params.get("densmap") else 0)
    return int(max(n_epochs)) if isinstance(n_epochs, (list, tuple, np.ndarray)) else int(n_epochs)


# --------------------------------------------------------------------------- the three methods

def _import(module: str, pip_name: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"this projection needs {pip_name}: pip install {pip_name} ({exc})") from exc


def _pca_setup(X, n_components, random_state, params):
    full = dict(params, n_components=n_components, random_state=random_state)

    def run(progress):
        PCA = _import("sklearn.decomposition", "scikit-learn").PCA
        _check_params("pca", PCA, params, ("n_components", "random_state"))
        report(progress, 0, 1, "PCA")
        model = PCA(**full)
        coords = model.fit_transform(X)
        report(progress, 1, 1, "PCA")
        return coords, model

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

    def run(progress):
        openTSNE = _import("openTSNE", "openTSNE")
        _check_params("tsne", openTSNE.TSNE, params, ("n_components", "random_state"))
        kw, reporter = dict(full), None
        if progress is not None:
            defaults = inspect.signature(openTSNE.TSNE.__init__).parameters
            phases = [full.get(name, defaults[name].default) for name in ("early_exaggeration_iter", "n_iter")]
            reporter = _Reporter(progress, sum(phases), "t-SNE")
            reporter(0)
            _with_tsne_progress(kw, full.get("callbacks"), reporter, phases, "callbacks_every_iters" in full)
        model = openTSNE.TSNE(**kw).fit(X)
        if reporter is not None:
            # The model keeps openTSNE's gradient-descent settings for transform: not the kit's progress callback.
            for name in ("callbacks", "callbacks_every_iters"):
                if name in model.gradient_descent_params:
                    model.gradient_descent_params[name] = full.get(name, defaults[name].default)
            reporter(reporter.total)
        return np.asarray(model), model

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

    def run(progress):
        umap = _import("umap", "umap-learn")
        _check_params("umap", umap.UMAP, params, ("n_components", "random_state"))
        model = umap.UMAP(**full)
        with _quiet_umap(), _umap_epochs(progress, "UMAP", _umap_fit_epochs(full, n)):
            coords = model.fit_transform(X)
        return coords, model

    return full, run


@contextmanager
def _quiet_umap():
    with warnings.catch_warnings():
        # umap-learn warns that a seed disables parallelism; that trade-off is ours to make.
        warnings.filterwarnings("ignore", message=".*overridden to 1 by setting random_state.*")
        yield


_SETUP = {"pca": _pca_setup, "tsne": _tsne_setup, "umap": _umap_setup}


# --------------------------------------------------------------------------- placing new points

def _model_n_features(method: str, model):
    if method == "pca":
        return getattr(model, "n_features_in_", None)
    if method == "umap":
        raw = getattr(model, "_raw_data", None)
        return None if raw is None else raw.shape[1]
    return None


def _check_transform_params(method: str, params: dict, fit_params: dict) -> None:
    if method == "tsne":
        openTSNE = _import("openTSNE", "openTSNE")
        allowed = set(inspect.signature(openTSNE.TSNEEmbedding.transform).parameters) - {"self", "X"}
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise TypeError(f"Projection.transform (t-SNE) got an unexpected parameter {unknown[0]!r}; "
                            f"openTSNE.TSNEEmbedding.transform accepts: {', '.join(sorted(allowed))}")
    elif params:
        raise TypeError(f"Projection.transform ({method}) takes no parameters besides X_new and progress; "
                        f"got {', '.join(sorted(params))}")
    if method == "umap" and fit_params.get("densmap"):
        raise ValueError("umap-learn cannot place new points on a densMAP (densmap=True); "
                         "project with densmap=False to use transform")


def _rebuild_pca(X, params, coords):
    PCA = _import("sklearn.decomposition", "scikit-learn").PCA
    return PCA(**params).fit(X)


def _rebuild_tsne(X, params, coords):
    """openTSNE's affinities (neighbour index) of the training vectors, around the cached coordinates."""
    openTSNE = _import("openTSNE", "openTSNE")
    model = openTSNE.TSNE(**params).prepare_initial(X)
    np.asarray(model)[...] = coords
    return model


def _rebuild_umap(X, params, coords):
    """umap-learn's neighbour graph and search index of the training vectors, around the cached coordinates.

    ``transform_mode="graph"`` makes ``fit`` stop after the graph (no layout optimisation); ``transform`` then
    needs only ``embedding_``, which is the cached map. Without that option (older umap-learn) it refits fully.
    """
    umap = _import("umap", "umap-learn")
    kw = dict(params)
    graph_only = ("transform_mode" in inspect.signature(umap.UMAP.__init__).parameters
                  and kw.get("transform_mode", "embedding") == "embedding")
    if graph_only:
        kw["transform_mode"] = "graph"
    with _quiet_umap():
        model = umap.UMAP(**kw).fit(X)
    if graph_only:
        model.transform_mode = "embedding"
    model.embedding_ = np.array(coords, dtype=np.float32)
    return model


_REBUILD = {"pca": _rebuild_pca, "tsne": _rebuild_tsne, "umap": _rebuild_umap}
# openTSNE's transform centres its reference embedding in place: one transform of a t-SNE model at a time.
_TSNE_TRANSFORM_LOCK = threading.Lock()


def _place_pca(model, coords, X_new, params, progress, stage):
    report(progress, 0, 1, stage)
    out = model.transform(X_new)
    report(progress, 1, 1, stage)
    return out


def _place_tsne(model, coords, X_new, params, progress, stage):
    openTSNE = _import("openTSNE", "openTSNE")
    params = dict(params)
    params.setdefault("perplexity", min(5.0, (len(coords) - 1) / 3))
    gd = model.gradient_descent_params
    with _TSNE_TRANSFORM_LOCK:
        # Reset the reference to the coordinates shown (openTSNE centred it in place on an earlier transform) and
        # drop the interpolation grid computed for those earlier positions.
        np.asarray(model)[...] = coords
        for name in ("interp_coeffs", "box_x_lower_bounds", "box_y_lower_bounds"):
            setattr(model, name, None)
        base = np.asarray(model)
        centre = (base.max(axis=0) + base.min(axis=0)) / 2
        saved = {name: gd[name] for name in ("callbacks", "callbacks_every_iters") if name in gd}
        reporter = None
        if progress is not None:
            defaults = inspect.signature(openTSNE.TSNEEmbedding.transform).parameters
            phases = [params.get(name, defaults[name].default) for name in ("early_exaggeration_iter", "n_iter")]
            reporter = _Reporter(progress, sum(phases), stage)
            reporter(0)
            kw = {}
            _with_tsne_progress(kw, gd.get("callbacks"), reporter, phases, False)
            gd.update(kw)
        try:
            placed = model.transform(X_new, **params)
        finally:
            for name in ("callbacks", "callbacks_every_iters"):
                if name in saved:
                    gd[name] = saved[name]
                else:
                    gd.pop(name, None)
        if reporter is not None:
            reporter(reporter.total)
        return np.asarray(placed) + centre


def _place_umap(model, coords, X_new, params, progress, stage):
    expected = int(model.n_epochs // 3) if isinstance(model.n_epochs, Integral) else (
        100 if len(X_new) <= 10_000 else 30)
    with _quiet_umap(), _umap_epochs(progress, stage, expected):
        return model.transform(X_new)


_PLACE = {"pca": _place_pca, "tsne": _place_tsne, "umap": _place_umap}


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
    return bool(_KEY_FILE.fullmatch(p.name)) and is_plain_file(p)


def _claim_folder(folder: Path) -> None:
    """Mark ``folder`` as the projection cache before its first entry; refuse a folder holding other files."""
    claim(folder, "projections", PROJECTION_CACHE_FORMAT, "cache_dir", _is_entry)


def _write_cached(path: Path, coords: np.ndarray) -> None:
    buf = BytesIO()
    np.save(buf, coords, allow_pickle=False)
    _claim_folder(path.parent)
    atomic_write(path, buf.getvalue())


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
    require_marker(root, "projections", PROJECTION_CACHE_FORMAT, default_cache_dir(),
                    lambda r: r.is_dir() and any(_is_entry(p) for p in r.iterdir()))
    removed = 0
    for p in list(root.iterdir()):
        if _is_entry(p):
            p.unlink(missing_ok=True)
            removed += 1
        elif _TMP_FILE.fullmatch(p.name) and is_plain_file(p):
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
        Stage ``"t-SNE"``: ``done`` counts openTSNE's optimisation iterations (early exaggeration then the main
        phase, ``total`` = ``early_exaggeration_iter + n_iter``, reported every 10 iterations through openTSNE's
        ``callbacks``). Stage ``"UMAP"``: ``done`` counts umap-learn's layout epochs (about once per percent).
        Stage ``"PCA"``: ``(0, 1)`` then ``(1, 1)``. A result read from the cache reports ``(0, 1)`` and ``(1, 1)``
        under its stage. The callback may raise to stop the computation.
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
        ``coords`` (N x n_components float32), ``method``, ``params``, ``seconds``, ``from_cache``, ``model``
        (the fitted estimator; None when read from the cache) and :meth:`Projection.transform` to place new
        points (which also works on a result read from the cache).

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> X = np.random.default_rng(0).normal(size=(50, 8))
    >>> p = project(X, method="pca", cache_dir=tempfile.mkdtemp())
    >>> p.coords.shape, p.coords.dtype.name, p.from_cache
    ((50, 2), 'float32', False)
    >>> p.transform(X[:3]).shape
    (3, 2)
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
    stage = _STAGE[method]

    path = None
    if use_cache:
        key = _cache_key(X, method, full)
        if key is not None:
            folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
            _claim_folder(folder)  # before computing: a folder that is not a projection cache is refused
            path = folder / f"{key}.npy"
            coords = _read_cached(path, X.shape[0], n_components)
            if coords is not None:
                report(progress, 0, 1, stage)
                report(progress, 1, 1, stage)
                return _result(coords, method, full, start, True, None, X)

    t_run = time.perf_counter()
    warm = {"tsne": "openTSNE", "umap": "umap", "pca": "sklearn.decomposition"}.get(method) in sys.modules
    coords, model = run(progress)
    if warm and X.shape[0] >= 50:  # what it cost here (not a first call that imports/compiles the library)
        from .. import costs

        costs.record("project", method, X.shape[0], time.perf_counter() - t_run)
    coords = np.ascontiguousarray(coords, dtype=np.float32)
    if path is not None:
        _write_cached(path, coords)
    return _result(coords, method, full, start, False, model, X)


def _result(coords, method, params, start, from_cache, model, X) -> Projection:
    out = Projection(coords=coords, method=method, params=params, seconds=time.perf_counter() - start,
                     from_cache=from_cache, model=model)
    out._data = X
    return out


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
