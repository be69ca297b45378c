"""The ``tfhub`` and ``savedmodel`` kinds: TF-Hub handles (the seed projects' Inception, MobileNet and ResNet
models; downloaded once into ``$TFHUB_CACHE_DIR``, then offline) and local SavedModel folders taking float32 images
in [0, 1]. A handle not in the cache fails within seconds, offline, with what to do."""
from __future__ import annotations

import hashlib
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ._base import BackboneSpec, BackboneUnavailableError, BatchKind, register_kind
from .._utils.quiet import quiet, quiet_import

_HUB = "https://tfhub.dev/google/imagenet/{}/{}/5"
REACH_TIMEOUT = 10.0  # seconds before an unreachable download is reported


def _hub(name, size, dim, description):
    return BackboneSpec(name=name, source="tfhub", handle=_HUB.format(name, "feature_vector"), input_size=size,
                        feature_dim=dim, classifier_handle=_HUB.format(name, "classification"), label_offset=1,
                        description=description)


SPECS = {
    "inception_v3": _hub("inception_v3", 299, 2048, "Inception V3"),
    "inception_resnet_v2": _hub("inception_resnet_v2", 299, 1536, "Inception-ResNet V2"),
    "mobilenet_v2_100_224": _hub("mobilenet_v2_100_224", 224, 1280, "MobileNet V2 1.0"),
    "mobilenet_v2_140_224": _hub("mobilenet_v2_140_224", 224, 1792, "MobileNet V2 1.4"),
    "resnet_v2_50": _hub("resnet_v2_50", 224, 2048, "ResNet V2 50"),
    "resnet_v2_152": _hub("resnet_v2_152", 224, 2048, "ResNet V2 152"),
}


def hub_cache_dir() -> Path:
    """Where tensorflow_hub keeps downloaded models: ``$TFHUB_CACHE_DIR`` or its default."""
    return Path(os.environ.get("TFHUB_CACHE_DIR") or os.path.join(os.environ.get("TMPDIR", "/tmp"), "tfhub_modules"))


def hub_cache_path(handle: str) -> Path:
    """The folder tensorflow_hub uses for ``handle``: the SHA-1 of the exact handle string."""
    return hub_cache_dir() / hashlib.sha1(handle.encode("utf8")).hexdigest()


def is_url(handle: str) -> bool:
    return urllib.parse.urlparse(handle).scheme in ("http", "https")


def check_reachable(url: str, cache: Path | None = None) -> None:
    """Fail within ``REACH_TIMEOUT`` seconds, with what to do, when ``url`` cannot be reached. ``cache``: where
    the download would be kept (named in the message)."""
    try:
        req = urllib.request.Request(url, method="HEAD")
        urllib.request.urlopen(req, timeout=REACH_TIMEOUT).close()
    except urllib.error.HTTPError:
        return  # the server answered: the network is there; let the loader deal with the reply
    except (urllib.error.URLError, socket.timeout, OSError) as exc:
        where = (f"This handle is not in the TF-Hub cache ({hub_cache_path(url)})" if cache is None else
                 f"Its file is not in the local cache ({cache})")
        raise BackboneUnavailableError(
            f"cannot reach {url} ({getattr(exc, 'reason', exc)}). {where}. Either connect to the internet once, "
            f"copy the unpacked SavedModel to that folder (or set TFHUB_CACHE_DIR to a cache that has it), pass a "
            f"local SavedModel folder, or use a backbone that works offline (offline=True in "
            f"kit.backbones.available(), such as efficientnet_lite0)."
        ) from None


def load_savedmodel(spec: BackboneSpec, path: str):
    """``tensorflow_hub.load(path)``, its many failure types surfaced as one clear error."""
    hub = quiet_import("tensorflow_hub")

    try:
        with quiet():
            return hub.load(path)
    except BackboneUnavailableError:
        raise
    except Exception as exc:
        raise BackboneUnavailableError(f"could not load backbone {spec.name!r} from {path}: {exc}") from exc


def _handle(spec: BackboneSpec, classifier: bool) -> str:
    handle = spec.classifier_handle if classifier else spec.handle
    if handle is None:
        raise ValueError(f"backbone {spec.name!r} has no classification head; choose one with can_classify=True "
                         f"in kit.backbones.available()")
    if spec.source == "tfhub" and is_url(handle) and not (hub_cache_path(handle) / "saved_model.pb").exists():
        check_reachable(handle)
    return handle


class HubKind(BatchKind):
    """A TF-Hub handle: downloaded once into ``$TFHUB_CACHE_DIR``, then offline."""

    source = "tfhub"

    def offline(self, spec):
        return (hub_cache_path(spec.handle) / "saved_model.pb").exists()

    def load(self, spec, classifier):
        return load_savedmodel(spec, _handle(spec, classifier))


class SavedModelKind(HubKind):
    """A local SavedModel folder taking float32 images in [0, 1]; its cache key holds a digest of the graph."""

    source = "savedmodel"

    def cache_key(self, spec):
        pb = Path(spec.handle) / "saved_model.pb"
        digest = hashlib.blake2b(pb.read_bytes(), digest_size=8).hexdigest() if pb.exists() else "missing"
        return f"savedmodel:{os.path.abspath(spec.handle)}:{digest}"

    def offline(self, spec):
        return (Path(spec.handle) / "saved_model.pb").exists()


register_kind(HubKind())
register_kind(SavedModelKind())
