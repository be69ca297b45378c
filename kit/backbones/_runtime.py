"""The fastest runtime of the built-in EfficientNet-Lite feature models on this machine.

Two runtimes compute the same features (float32 images (N, S, S, 3) in [0, 1] -> (N, 1280), not normalised):

* ``"savedmodel"``: ``tensorflow_hub.load`` of the exported ``features/`` SavedModel;
* ``"tflite"``: that SavedModel converted once (``tf.lite.TFLiteConverter.from_saved_model``, float32, no
  quantisation) to ``features.tflite`` beside it in the kit's own model folder, run by ai-edge-litert's
  ``Interpreter`` (XNNPACK, ``num_threads=os.cpu_count()``).

With ``KIT_RUNTIME=auto`` (the default) a short timed probe (a warm-up, then 3 batches of 32 seeded synthetic
photos per runtime, interleaved) picks the faster one once per machine. The TFLite runtime is chosen only when
its features on the probe batch have a cosine >= 0.9999 to the SavedModel's (each row). The result is recorded
in ``kit_home()/runtime.json`` under the model name and a machine fingerprint (CPU model, CPU count, tensorflow,
ai-edge-litert and kit versions); later processes read the record instead of probing. ``KIT_RUNTIME=savedmodel``
or ``KIT_RUNTIME=tflite`` forces a runtime (no probe). The runtime never changes the embedding cache key: both
compute the same function.

Nothing is written at import. The kit writes only ``features.tflite`` in its own exported model folder and
``runtime.json`` in its home, each through a temporary file of its own renamed into place; it deletes nothing
else.
"""
from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._utils.config import __version__, kit_home
from .._utils.files import atomic_file, atomic_write
from . import effnet_lite as _effnet_lite
from .._utils.quiet import quiet, quiet_import

__all__ = ["RUNTIMES", "RuntimeChoice", "features_fn", "probe", "requested_runtime", "tflite_path",
           "fingerprint", "MIN_COSINE"]

RUNTIMES = ("savedmodel", "tflite")
MIN_COSINE = 0.9999
ENV = "KIT_RUNTIME"
RECORD_FILE = "runtime.json"
TFLITE_FILE = "features.tflite"
LITERT_PIN = "ai-edge-litert==2.3.0"
PROBE_BATCH = 32
PROBE_ROUNDS = 3
_RECORD_FORMAT = 1


@dataclass(frozen=True)
class RuntimeChoice:
    """The runtime picked for a model on this machine.

    Attributes
    ----------
    runtime : str
        ``"savedmodel"`` or ``"tflite"``.
    img_per_s : dict
        Images per second of each runtime timed by the probe (batch 32); empty when nothing was timed.
    cosine : float or None
        Smallest cosine, over the probe batch, of the TFLite features to the SavedModel's; None when the TFLite
        runtime was not run.
    reason : str
        Why this runtime was chosen, in words.
    fingerprint : str
        The machine the choice holds for (CPU model, CPU count, tensorflow, ai-edge-litert and kit versions).
    """

    runtime: str
    img_per_s: dict
    cosine: float | None
    reason: str
    fingerprint: str


# ----------------------------------------------------------------------------------------------- settings


def requested_runtime() -> str:
    """``KIT_RUNTIME`` as ``"auto"``, ``"savedmodel"`` or ``"tflite"`` (unset or empty means ``"auto"``).

    Raises
    ------
    ValueError
        For any other value; the message names the variable, the value and the allowed ones.
    """
    raw = os.environ.get(ENV, "")
    value = raw.strip().lower() or "auto"
    if value not in ("auto",) + RUNTIMES:
        raise ValueError(f"the environment variable {ENV}={raw!r} is not one of 'auto', 'savedmodel', 'tflite': "
                         f"set it to one of these, or unset it to let the kit time both once (auto)")
    return value


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for row in f:
                key, _, value = row.partition(":")
                if key.strip() in ("model name", "Model", "cpu model", "Processor") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def fingerprint() -> str:
    """The machine as the runtime record sees it, e.g. ``"AMD EPYC | 2 cpus | tensorflow 2.21.0 | ..."``."""
    return (f"{_cpu_model()} | {os.cpu_count()} cpus | tensorflow {_version('tensorflow')} | "
            f"ai-edge-litert {_version('ai-edge-litert')} | kit {__version__}")


# ------------------------------------------------------------------------------------------- model files


def _check_name(name) -> int:
    names = [*_effnet_lite.VARIANTS, *_effnet_lite.GRID_VARIANTS]
    if name not in names:
        raise ValueError(f"name={name!r} is not a built-in EfficientNet-Lite backbone (one of "
                         f"{sorted(names)}); other backbones load with tensorflow_hub.load")
    return _effnet_lite.input_size(name)


def _features_dir(name: str, savedmodel_dir) -> Path:
    """The ``features/`` SavedModel: ``savedmodel_dir`` itself or its ``features/`` subfolder."""
    folder = Path(savedmodel_dir).expanduser()
    if (folder / "saved_model.pb").is_file():
        return folder
    if (folder / "features" / "saved_model.pb").is_file():
        return folder / "features"
    raise ValueError(f"savedmodel_dir={str(savedmodel_dir)!r} holds no SavedModel (no saved_model.pb in it or in "
                     f"its features/ subfolder); pass the folder made by kit.backbones.builtin_folder({name!r}) "
                     f"or its features/ subfolder")


def _kits_model_folder(name: str, features_dir: Path) -> Path | None:
    """The kit's exported folder ``<name>-kit<version>`` holding ``features_dir``, or None if it is not one."""
    folder = features_dir.parent
    if (features_dir.name == "features" and folder.name == f"{name}-kit{__version__}"
            and (folder / "classifier" / "saved_model.pb").is_file()):
        return folder
    return None


def tflite_path(name: str, savedmodel_dir) -> Path:
    """Where the converted float32 TFLite model of ``name`` lives (it may not exist yet).

    Raises
    ------
    ValueError
        When ``savedmodel_dir`` is not a model folder exported by the kit (the kit writes only into its own).
    """
    _check_name(name)
    features_dir = _features_dir(name, savedmodel_dir)
    folder = _kits_model_folder(name, features_dir)
    if folder is None:
        raise ValueError(f"savedmodel_dir={str(savedmodel_dir)!r} is not a model folder exported by this kit "
                         f"(<kit home>/models/{name}-kit{__version__} holding features/ and classifier/); the kit "
                         f"writes its TFLite model only into its own folders: pass that folder, or set "
                         f"{ENV}=savedmodel")
    return folder / TFLITE_FILE


_convert_lock = threading.Lock()


def _ensure_tflite(name: str, features_dir: Path, progress=None) -> Path:
    """Convert the features SavedModel to ``features.tflite`` once (temporary file, then ``os.replace``)."""
    target = tflite_path(name, features_dir)
    if target.is_file():
        return target
    with _convert_lock:
        if target.is_file():
            return target
        stage = f"converting {name} to TFLite (once)"
        if progress is not None:
            progress(0, 1, stage)
        tf = quiet_import("tensorflow")

        with quiet():
            converter = tf.lite.TFLiteConverter.from_saved_model(str(features_dir))
            content = converter.convert()  # float32: no optimizations requested
        atomic_write(target, content, prefix=f".{target.name}.tmp-", chmod=0o644)
        if progress is not None:
            progress(1, 1, stage)
    return target


# ------------------------------------------------------------------------------------------------ runners


class FeaturesFn:
    """A callable from float32 images (N, S, S, 3) in [0, 1] to float32 features (N, 1280), not normalised.
    ``runtime`` says which runtime computes them. Thread-safe."""

    def __init__(self, name: str, runtime: str, size: int, call):
        self.name = name
        self.runtime = runtime
        self.size = size
        self._call = call

    def __repr__(self) -> str:
        return f"FeaturesFn({self.name!r}, runtime={self.runtime!r})"

    def __call__(self, images) -> np.ndarray:
        x = np.ascontiguousarray(images, dtype=np.float32)
        if x.ndim != 4 or x.shape[1:] != (self.size, self.size, 3):
            raise ValueError(f"images of shape {x.shape} given to {self.name}: expected (N, {self.size}, "
                             f"{self.size}, 3) float32 in [0, 1]; resize the photos to {self.size} px first")
        if len(x) == 0:
            return np.zeros((0, _effnet_lite.feature_dim(self.name)), np.float32)
        return self._call(x)


def _savedmodel_call(features_dir: Path):
    hub = quiet_import("tensorflow_hub")

    with quiet():
        model = hub.load(str(features_dir))
    return lambda x: np.asarray(model(x), dtype=np.float32)


def _import_litert():
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter


def _tflite_call(path: Path):
    Interpreter = _import_litert()
    # The default op resolver (AUTO) applies the XNNPACK delegate to the float32 graph.
    interp = Interpreter(model_path=str(path), num_threads=os.cpu_count())
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    lock = threading.Lock()
    shape = [None]  # the batch size the tensors are allocated for
    invoked = [False]

    def call(x):
        with lock:
            if shape[0] != len(x):
                interp.resize_tensor_input(inp["index"], list(x.shape), strict=False)
                with quiet():  # applying the XNNPACK delegate says so on stderr
                    interp.allocate_tensors()
                shape[0] = len(x)
            interp.set_tensor(inp["index"], x)
            if invoked[0]:
                interp.invoke()
            else:
                with quiet():
                    interp.invoke()
                invoked[0] = True
            return np.array(interp.get_tensor(out["index"]), dtype=np.float32)  # a copy, never the buffer

    return call


_RUNNERS: dict = {}
_runners_lock = threading.Lock()


def _runner(name: str, features_dir: Path, runtime: str, progress=None) -> FeaturesFn:
    key = (name, str(features_dir.resolve()), runtime)
    with _runners_lock:
        if key not in _RUNNERS:
            size = _check_name(name)
            if runtime == "savedmodel":
                call = _savedmodel_call(features_dir)
            else:
                call = _tflite_call(_ensure_tflite(name, features_dir, progress))
            _RUNNERS[key] = FeaturesFn(name, runtime, size, call)
        return _RUNNERS[key]


def _litert_missing() -> str | None:
    """None when ai_edge_litert imports, else why not."""
    try:
        _import_litert()
    except ImportError as exc:
        return f"ai_edge_litert cannot be imported ({exc}); pip install {LITERT_PIN} to time the TFLite runtime"
    return None


# ------------------------------------------------------------------------------------------------- record


def _record_path() -> Path:
    return kit_home() / RECORD_FILE


def _read_records(path: Path) -> dict | None:
    """The records in ``path`` ({} when absent), or None when the file exists but is not the kit's format."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not (isinstance(data, dict) and data.get("format") == _RECORD_FORMAT
                and isinstance(data.get("records"), dict)):
            raise ValueError("not a kit runtime record")
        return data["records"]
    except (OSError, ValueError) as exc:
        warnings.warn(f"{str(path)!r} is not a runtime record the kit can read ({exc}); the runtime is probed "
                      f"without recording it: delete or move that file to let the kit record again",
                      RuntimeWarning, stacklevel=3)
        return None


_record_lock = threading.Lock()


def _write_record(key: str, entry: dict) -> None:
    path = _record_path()
    with _record_lock:
        records = _read_records(path)
        if records is None:
            return  # never replace a file the kit cannot read (it may not be ours)
        records[key] = entry
        with atomic_file(path, "w", prefix=f".{path.name}.tmp-", suffix=".json", chmod=0o644) as f:
            json.dump({"format": _RECORD_FORMAT, "records": records}, f, indent=2, sort_keys=True)


def _choice_from(entry: dict) -> RuntimeChoice | None:
    """The choice a record holds; None when it is not one the kit wrote (wrong keys or types: measured again)."""
    if not (isinstance(entry, dict)
            and all(isinstance(entry.get(k), str) for k in ("runtime", "reason", "fingerprint"))
            and isinstance(entry.get("img_per_s"), dict)
            and all(isinstance(v, (int, float)) for v in entry["img_per_s"].values())
            and (entry.get("cosine") is None or isinstance(entry.get("cosine"), (int, float)))):
        return None
    try:
        choice = RuntimeChoice(runtime=str(entry["runtime"]),
                               img_per_s={str(k): float(v) for k, v in dict(entry["img_per_s"]).items()},
                               cosine=None if entry["cosine"] is None else float(entry["cosine"]),
                               reason=str(entry["reason"]), fingerprint=str(entry["fingerprint"]))
    except (KeyError, TypeError, ValueError):
        return None
    return choice if choice.runtime in RUNTIMES else None


# -------------------------------------------------------------------------------------------------- probe


def _probe_batch(size: int, n: int | None = None) -> np.ndarray:
    """A fixed seeded batch of photo-like images: smooth colour fields with edges and grain, in [0, 1]."""
    n = PROBE_BATCH if n is None else n
    rng = np.random.default_rng(20240613)
    low = rng.random((n, 8, 8, 3), dtype=np.float32)
    pos = np.linspace(0, 7, size, dtype=np.float32)
    i0 = np.floor(pos).astype(int)
    i1 = np.minimum(i0 + 1, 7)
    f = (pos - i0).astype(np.float32)[None, :, None, None]
    x = low[:, i0] * (1 - f) + low[:, i1] * f
    f = f.reshape(1, 1, size, 1)
    x = x[:, :, i0] * (1 - f) + x[:, :, i1] * f
    edge = np.arange(size)[None, :, None] > rng.integers(size // 4, 3 * size // 4, n)[:, None, None]
    x += (np.float32(0.25) * edge[..., None]) * rng.choice(np.float32([-1, 1]), (n, 1, 1, 3))
    x += rng.standard_normal(x.shape, dtype=np.float32) * np.float32(0.03)
    return np.clip(x, 0, 1, out=x)


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    num = (a.astype(np.float64) * b).sum(1)
    den = np.linalg.norm(a, axis=1).astype(np.float64) * np.linalg.norm(b, axis=1)
    return float(np.min(num / np.maximum(den, 1e-30)))


def _time_runtimes(runners: dict, x: np.ndarray, rounds: int = PROBE_ROUNDS) -> dict:
    """Images per second of each runner: the median of ``rounds`` timed batches, runtimes interleaved."""
    times = {rt: [] for rt in runners}
    order = list(runners)
    for r in range(rounds):
        for rt in (order if r % 2 == 0 else order[::-1]):
            t = time.perf_counter()
            runners[rt](x)
            times[rt].append(time.perf_counter() - t)
    return {rt: round(len(x) / float(np.median(ts)), 1) for rt, ts in times.items()}


_probe_lock = threading.Lock()


def probe(name: str, savedmodel_dir, force: bool = False, progress=None) -> RuntimeChoice:
    """The fastest runtime of the built-in backbone ``name`` on this machine, timed once and recorded.

    Reads ``kit_home()/runtime.json`` first: a record for ``name`` on this machine's `fingerprint` is returned
    without timing anything (unless ``force``). Otherwise both runtimes are loaded (the TFLite model converted
    once if needed), warmed up and timed on 3 interleaved batches of 32 seeded synthetic photos; the faster one is
    chosen if its features have a cosine >= 0.9999 to the SavedModel's on every image, else ``"savedmodel"`` (the
    reason says why). The choice is then recorded. ``KIT_RUNTIME`` is not read here (see `features_fn`).

    Parameters
    ----------
    name : str
        ``"efficientnet_lite0"``, ``"efficientnet_lite1"`` or ``"efficientnet_lite2"``.
    savedmodel_dir : path
        The kit's exported model folder of ``name`` or its ``features/`` SavedModel.
    force : bool
        Time again even if a record exists, and replace the record.
    progress : callable or None
        ``progress(done, total, stage)`` for the one-time conversion and probe.

    Examples
    --------
    >>> from kit import _runtime, backbones
    >>> choice = _runtime.probe("efficientnet_lite0", backbones.builtin_folder("efficientnet_lite0"))
    >>> choice.runtime in ("savedmodel", "tflite")
    True
    """
    size = _check_name(name)
    if not isinstance(force, (bool, np.bool_)):
        raise ValueError(f"force={force!r} must be True or False")
    features_dir = _features_dir(name, savedmodel_dir)
    fp = fingerprint()
    key = f"{name} | {fp}"
    with _probe_lock:
        if not force:
            records = _read_records(_record_path()) or {}
            if key in records:
                choice = _choice_from(records[key])
                if choice is not None and (choice.runtime != "tflite" or _litert_missing() is None):
                    return choice  # (a record of tflite on a machine that lost ai-edge-litert: measured again)
        if _kits_model_folder(name, features_dir) is None:
            return RuntimeChoice("savedmodel", {}, None,
                                 f"{str(features_dir)!r} is not a model folder exported by the kit, so no TFLite "
                                 f"model is written beside it", fp)
        missing = _litert_missing()
        if missing is not None:
            return RuntimeChoice("savedmodel", {}, None, missing, fp)
        stage = f"timing the runtimes of {name} (once per machine)"
        runners = {"savedmodel": _runner(name, features_dir, "savedmodel", progress)}
        try:
            runners["tflite"] = _runner(name, features_dir, "tflite", progress)
        except Exception as exc:  # conversion or interpreter failure: keep the SavedModel, say why
            reason = f"the TFLite runtime could not be prepared ({type(exc).__name__}: {exc})"
            warnings.warn(f"{name}: {reason}; using the SavedModel", RuntimeWarning, stacklevel=2)
            return RuntimeChoice("savedmodel", {}, None, reason, fp)
        if progress is not None:
            progress(0, 1, stage)
        x = _probe_batch(size)
        reference = runners["savedmodel"](x)  # warm-ups (the first calls trace and allocate)
        cosine = _min_cosine(runners["tflite"](x), reference)
        speeds = _time_runtimes(runners, x)
        fastest = max(speeds, key=speeds.get)
        slower = min(speeds, key=speeds.get)
        timing = (f"{fastest} {speeds[fastest]:.1f} img/s vs {slower} {speeds[slower]:.1f} img/s "
                  f"({PROBE_ROUNDS} timed batches of {PROBE_BATCH} each)")
        if fastest == "tflite" and cosine < MIN_COSINE:
            runtime = "savedmodel"
            reason = (f"tflite was faster ({timing}) but its features have a cosine of {cosine:.6f} < {MIN_COSINE} "
                      f"to the SavedModel's, so the SavedModel is kept")
        else:
            runtime = fastest
            reason = f"fastest: {timing}; min cosine of tflite to savedmodel {cosine:.6f}"
        choice = RuntimeChoice(runtime, speeds, round(cosine, 7), reason, fp)
        entry = dataclasses.asdict(choice)
        entry.update(name=name, measured_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
        _write_record(key, entry)
        with _runners_lock:  # free the runtime that lost; the chosen one stays loaded for features_fn
            for rt in RUNTIMES:
                if rt != runtime:
                    _RUNNERS.pop((name, str(features_dir.resolve()), rt), None)
        if progress is not None:
            progress(1, 1, stage)
        return choice


def features_fn(name: str, savedmodel_dir, progress=None, *, runtime: str | None = None) -> FeaturesFn:
    """A function from float32 images (N, S, S, 3) in [0, 1] to float32 features (N, 1280), not normalised,
    computed by the runtime ``KIT_RUNTIME`` asks for (``auto``: the one `probe` picked for this machine).

    Parameters
    ----------
    name : str
        ``"efficientnet_lite0"``, ``"efficientnet_lite1"`` or ``"efficientnet_lite2"``.
    savedmodel_dir : path
        The kit's exported model folder of ``name`` or its ``features/`` SavedModel.
    progress : callable or None
        ``progress(done, total, stage)`` for the one-time TFLite conversion and probe.
    runtime : {"auto", "savedmodel", "tflite"} or None
        Overrides ``KIT_RUNTIME`` (None: read it).

    Returns
    -------
    FeaturesFn
        Thread-safe, loaded once per process; its ``runtime`` attribute names the runtime.

    Raises
    ------
    ValueError
        A bad ``KIT_RUNTIME``/``runtime``, ``name`` or ``savedmodel_dir``.
    ImportError
        ``tflite`` forced without ai-edge-litert installed.

    Examples
    --------
    >>> import numpy as np
    >>> from kit import _runtime, backbones
    >>> fn = _runtime.features_fn("efficientnet_lite0", backbones.builtin_folder("efficientnet_lite0"))
    >>> fn(np.zeros((2, 224, 224, 3), np.float32)).shape
    (2, 1280)
    """
    if runtime is None:
        wanted = requested_runtime()
    elif isinstance(runtime, str) and runtime in ("auto",) + RUNTIMES:
        wanted = runtime
    else:
        raise ValueError(f"runtime={runtime!r} is not one of 'auto', 'savedmodel', 'tflite' or None; pass one of "
                         f"these (None reads {ENV})")
    _check_name(name)
    features_dir = _features_dir(name, savedmodel_dir)
    if wanted == "auto":
        wanted = probe(name, features_dir, progress=progress).runtime
    elif wanted == "tflite":
        missing = _litert_missing()
        if missing is not None:
            raise ImportError(f"the tflite runtime of {name} needs ai-edge-litert: pip install {LITERT_PIN}, or set "
                              f"{ENV}=savedmodel or {ENV}=auto ({missing})")
    return _runner(name, features_dir, wanted, progress)
