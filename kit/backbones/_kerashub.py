"""The ``kerashub`` kind: KerasHub presets (DINOv2, SigLIP, CLIP...) by registry name, ``kaggle://`` or ``hf://``
handle, or local preset folder (one saved with ``save_to_preset``).

* **Loading.** A handle is looked up in the local caches first (``$KAGGLEHUB_CACHE`` or ``~/.cache/kagglehub``;
  ``$HF_HUB_CACHE`` or ``$HF_HOME/hub`` or ``~/.cache/huggingface/hub``) and always loaded from the folder it
  resolves to, with ``keras_hub.models.Backbone.from_preset(folder)``: the same code path for a downloaded preset
  and a folder of your own, and no network once cached. A handle not in the cache is downloaded once
  (:func:`fetch`) after a reachability check that fails within ``REACH_TIMEOUT`` seconds offline, with a message
  naming the model, its download size and how to fetch it.
* **Image vector.** DINOv2 (and any backbone whose output is a token sequence): the CLS token of the final,
  layer-normalised sequence -- DINOv2's self-distillation objective trains exactly that token as the global image
  descriptor (its k-NN evaluations use it). CLIP and SigLIP: the model's own pooled and projected image embedding
  (``get_vision_embeddings``: CLIP's CLS token through its projection, SigLIP's attention-pooling head), the
  vector trained to match the text embedding of its caption, so that text queries work. Feature maps (CNNs) are
  averaged. Rows are L2-normalised by the shared pipeline.
* **Preprocessing.** The photo is decoded and cut to the model's square by the kit (centre crop by default, as the
  preset's image converter does), then scaled with the converter's own ``scale`` and ``offset``.
* **Cache key.** The preset's identity (handle, or backbone class for a folder), a digest of its config and weight
  files, the vector taken and the input size; the preprocessing dict holds the kit's preprocessing version.
* **Runtime.** Keras on the TensorFlow backend: the CPU, or a GPU when TensorFlow sees one. Images per batch are
  capped by the input size and the model's width so that memory stays under ``MEMORY_BUDGET`` bytes on CPU.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from .._utils.quiet import quiet, quiet_import
from ._base import BackboneSpec, BackboneUnavailableError, BatchKind, register_kind

SOURCE = "kerashub"
REACH_TIMEOUT = 5.0  # seconds before an unreachable download site is reported
MEMORY_BUDGET = 3 * 1024 ** 3  # bytes a batch may use on CPU (weights included)
KERAS_HUB_PIN = "keras-hub==0.32.0"

# name -> (preset handle, input size, feature dim, parameters, text tower, description, weights licence)
PRESETS = {
    "dinov2_small": ("kaggle://keras/dinov2/keras/dinov2_small/1", 224, 384, 22_582_656, False,
                     "DINOv2 ViT-S/14, self-supervised (Meta)", "Apache-2.0"),
    "dinov2_base": ("kaggle://keras/dinov2/keras/dinov2_base/1", 224, 768, 87_632_640, False,
                    "DINOv2 ViT-B/14, self-supervised (Meta)", "Apache-2.0"),
    "siglip_base_patch16_224": ("kaggle://keras/siglip/keras/siglip_base_patch16_224/1", 224, 768, 203_156_230,
                                True, "SigLIP ViT-B/16 image tower, text-aligned (Google)", "Apache-2.0"),
    "clip_vit_base_patch32": ("kaggle://keras/clip/keras/clip_vit_base_patch32/3", 224, 512, 151_277_363, True,
                              "CLIP ViT-B/32 image tower, text-aligned (OpenAI)", "MIT"),
}
NOTE = "download on first use"

SPECS = {name: BackboneSpec(name=name, source=SOURCE, handle=handle, input_size=size, feature_dim=dim,
                            description=f"{desc}; KerasHub preset, {NOTE} (about {params * 4 / 1e6:.0f} MB)")
         for name, (handle, size, dim, params, _, desc, _) in PRESETS.items()}
_TEXT_CLASSES = ("CLIPBackbone", "SigLIPBackbone", "MetaCLIP2Backbone")


# ------------------------------------------------------------------ where a preset lives on this machine
def is_handle(handle: str) -> bool:
    return isinstance(handle, str) and handle.lower().startswith(("kaggle://", "hf://"))


def is_preset_folder(path) -> bool:
    """A folder saved with KerasHub's ``save_to_preset`` (a ``config.json`` naming a ``keras_hub`` class)."""
    config = Path(path) / "config.json"
    if not config.is_file():
        return False
    try:
        return "keras_hub" in str(json.loads(config.read_text()).get("registered_name", ""))
    except (ValueError, OSError, AttributeError):
        return False


def _kaggle_root() -> Path:
    return Path(os.environ.get("KAGGLEHUB_CACHE") or Path.home() / ".cache" / "kagglehub") / "models"


def _hf_root() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface"
    return Path(home) / "hub"


def cache_folder(handle: str) -> Path:
    """Where the download of ``handle`` is kept (for a Kaggle handle without a version: its model folder)."""
    scheme, _, rest = handle.partition("://")
    parts = [p for p in rest.strip("/").split("/") if p]
    if scheme.lower() == "kaggle":
        if len(parts) not in (4, 5):
            raise ValueError(f"backbone={handle!r}: a Kaggle handle is kaggle://owner/model/framework/variation"
                             f"[/version], e.g. {PRESETS['dinov2_small'][0]!r}")
        return _kaggle_root().joinpath(*parts)
    if len(parts) != 2:
        raise ValueError(f"backbone={handle!r}: a Hugging Face handle is hf://owner/model, e.g. "
                         f"'hf://keras/dinov2_small'")
    return _hf_root() / f"models--{parts[0]}--{parts[1]}"


def local_folder(handle: str) -> Path | None:
    """The folder holding the preset of ``handle`` on this machine, or None when it is not downloaded. Reads the
    caches' layout only: no network, no import of kagglehub or huggingface_hub."""
    if not is_handle(handle):
        path = Path(handle).expanduser()
        return path if (path / "config.json").is_file() else None
    folder = cache_folder(handle)
    if handle.lower().startswith("kaggle://"):
        if len([p for p in handle.partition("://")[2].strip("/").split("/") if p]) == 4:  # no version: the newest
            versions = sorted((int(p.name) for p in folder.glob("*") if p.name.isdigit()), reverse=True)
            folder = next((folder / str(v) for v in versions if (folder / str(v) / "config.json").is_file()), None)
            if folder is None:
                return None
        return folder if (folder / "config.json").is_file() else None
    ref = folder / "refs" / "main"
    snapshots = folder / "snapshots"
    if ref.is_file() and (snapshots / ref.read_text().strip() / "config.json").is_file():
        return snapshots / ref.read_text().strip()
    found = sorted(p for p in snapshots.glob("*") if (p / "config.json").is_file()) if snapshots.is_dir() else []
    return found[-1] if found else None


def _name_of(handle: str) -> str:
    for name, row in PRESETS.items():
        if row[0] == handle:
            return name
    return handle


def _size_text(handle: str) -> str:
    name = _name_of(handle)
    if name in PRESETS:
        params = PRESETS[name][3]
        return f"a download of about {params * 4 / 1e6:.0f} MB ({params / 1e6:.0f}M parameters, float32)"
    return "a download of unknown size"


def _site(handle: str) -> str:
    scheme, _, rest = handle.partition("://")
    if scheme.lower() == "kaggle":
        return "https://www.kaggle.com/models/" + "/".join(rest.strip("/").split("/")[:2])
    return "https://huggingface.co/" + rest.strip("/")


def _unavailable(handle: str, reason) -> BackboneUnavailableError:
    name = _name_of(handle)
    return BackboneUnavailableError(
        f"backbone {name!r} ({handle}) is not in the local cache ({cache_folder(handle)}) and cannot be downloaded "
        f"here: {_site(handle)} is unreachable ({reason}). It is {_size_text(handle)}, needed once; after that it "
        f"works offline. Fix: when online, run `python -c \"import kit; kit.backbones.fetch({name!r})\"` (needs "
        f"`pip install {KERAS_HUB_PIN}`), or copy the preset folder from a machine that has it into that cache "
        f"folder (or pass the folder itself as the backbone), or use a backbone that works offline (offline=True "
        f"in kit.backbones.available(), such as efficientnet_lite0).")


def check_reachable(handle: str) -> None:
    """Fail within ``REACH_TIMEOUT`` seconds, with what to do, when the download site of ``handle`` is out of
    reach."""
    try:
        urllib.request.urlopen(urllib.request.Request(_site(handle), method="HEAD"), timeout=REACH_TIMEOUT).close()
    except urllib.error.HTTPError:
        return  # the server answered: the network is there
    except (urllib.error.URLError, socket.timeout, OSError) as exc:
        raise _unavailable(handle, getattr(exc, "reason", exc)) from None


def _download(handle: str) -> Path:
    scheme, _, rest = handle.partition("://")
    try:
        if scheme.lower() == "kaggle":
            import kagglehub

            return Path(kagglehub.model_download(rest.strip("/")))
        import huggingface_hub

        return Path(huggingface_hub.snapshot_download(repo_id=rest.strip("/")))
    except ImportError as exc:
        raise ImportError(f"downloading {handle} needs KerasHub's dependencies: pip install {KERAS_HUB_PIN} "
                          f"({exc})") from exc
    except Exception as exc:  # the hubs raise many types; one clear error with the handle
        raise BackboneUnavailableError(f"could not download backbone {_name_of(handle)!r} from {handle}: {exc}") \
            from exc


_FETCH_LOCK = threading.Lock()


def fetch(spec: BackboneSpec) -> Path:
    """The local folder of ``spec``'s preset, downloaded first when it is not cached (online only)."""
    folder = local_folder(spec.handle)
    if folder is not None:
        return folder
    if not is_handle(spec.handle):
        raise BackboneUnavailableError(f"backbone {spec.name!r}: {spec.handle} has no config.json (not a KerasHub "
                                       f"preset folder); save one with backbone.save_to_preset(folder)")
    with _FETCH_LOCK:
        folder = local_folder(spec.handle)
        if folder is None:
            check_reachable(spec.handle)
            folder = _download(spec.handle)
    return folder


# ------------------------------------------------------------------ what the preset is
_META: dict = {}  # (folder, config mtime) -> dict


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BackboneUnavailableError(f"cannot read {path} ({exc}); the preset folder is damaged: fetch it "
                                       f"again") from exc


def _weight_files(folder: Path) -> list:
    index = folder / "model.weights.json"
    if index.is_file():
        shards = _read_json(index)
        names = sorted({str(v) for v in (shards.get("weight_map") or {}).values()} | set(shards.get("shards", [])))
        return [folder / n for n in names] or sorted(folder.glob("model*.weights.h5"))
    return sorted(folder.glob("*.weights.h5")) or sorted(folder.glob("*.safetensors"))


_DIGESTS: dict = {}  # (path, size, mtime_ns) -> hex


def _file_digest(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.blake2b(digest_size=16)
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def digest(folder: Path) -> str:
    """A digest of the preset's config and weight files (each file hashed once per process and modification)."""
    folder = Path(folder)
    weights = _weight_files(folder)
    if not weights:
        raise BackboneUnavailableError(f"the preset folder {folder} has no weights file (model.weights.h5); it is "
                                       f"incomplete: fetch it again")
    h = hashlib.blake2b(digest_size=16)
    h.update((folder / "config.json").read_bytes())
    for w in weights:
        h.update(_file_digest(w).encode())
    return h.hexdigest()


def meta(folder: Path) -> dict:
    """What the kit needs of a preset folder, from its JSON files only (nothing is imported, no weights read):
    backbone class, image size (None when the model takes any), patch, width, heads, MLP width, text tower,
    converter ``scale``/``offset`` and size, weights' size."""
    folder = Path(folder)
    key = (str(folder.resolve()), (folder / "config.json").stat().st_mtime_ns)
    if key in _META:
        return _META[key]
    config = _read_json(folder / "config.json")
    cls = str(config.get("class_name") or config.get("registered_name", "?").rpartition(">")[2])
    cfg = config.get("config", {})
    vision = cfg.get("vision_encoder", {}).get("config", cfg) if isinstance(cfg.get("vision_encoder"), dict) else cfg
    shape = vision.get("image_shape") or [None]
    fixed = cls != "DINOV2Backbone" and shape[0] is not None  # DINOv2 interpolates its position embeddings
    converter = {}
    if (folder / "image_converter.json").is_file():
        converter = _read_json(folder / "image_converter.json").get("config", {})
    weights = _weight_files(folder)
    out = dict(
        cls=cls, fixed_size=int(shape[0]) if fixed else None, native_size=shape[0],
        patch=int(vision.get("patch_size", 16) or 16), hidden=int(vision.get("hidden_dim", 768) or 768),
        heads=int(vision.get("num_heads", 12) or 12),
        intermediate=int(vision.get("intermediate_dim", 4 * int(vision.get("hidden_dim", 768) or 768)) or 3072),
        text=cls in _TEXT_CLASSES, weights_bytes=sum(w.stat().st_size for w in weights),
        scale=converter.get("scale"), offset=converter.get("offset"),
        converter_size=converter.get("image_size"),
    )
    _META[key] = out
    return out


_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
_OPENAI = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
_DEFAULT_NORMALIZE = {  # the converters of the released presets, for folders saved without one
    "DINOV2Backbone": ([1 / 255 / s for s in _IMAGENET[1]], [-m / s for m, s in zip(*_IMAGENET)]),
    "CLIPBackbone": ([1 / 255 / s for s in _OPENAI[1]], [-m / s for m, s in zip(*_OPENAI)]),
    "SigLIPBackbone": (1 / 127.5, -1.0),
}


def normalization(info: dict) -> tuple:
    """``(scale, offset)`` taking uint8-range pixels to the network's input: the preset's image converter's own,
    else the released presets' for that class, else [0, 1]."""
    if info["scale"] is not None or info["offset"] is not None:
        return (1.0 if info["scale"] is None else info["scale"]), (0.0 if info["offset"] is None else info["offset"])
    return _DEFAULT_NORMALIZE.get(info["cls"], (1 / 255, 0.0))


def input_size(spec: BackboneSpec, info: dict) -> int:
    """The square side photos are cut to: the model's own when it is fixed (CLIP, SigLIP), else ``spec``'s."""
    return int(info["fixed_size"] or spec.input_size)


def batch_cap(info: dict, size: int) -> int:
    """Images per batch keeping a forward pass under ``MEMORY_BUDGET`` on CPU: attention maps and the widest
    activations of one layer per image (with a factor 3 for TensorFlow's temporaries), after the weights."""
    tokens = (size // info["patch"]) ** 2 + 1
    per_image = 4 * 3 * (2 * info["heads"] * tokens ** 2 + tokens * (6 * info["hidden"] + 2 * info["intermediate"]))
    free = MEMORY_BUDGET - 2 * info["weights_bytes"]
    return max(1, int(free // per_image))


# ------------------------------------------------------------------ the loaded model
_MODELS: dict = {}
_MODELS_LOCK = threading.Lock()


def _missing_keras_hub(exc) -> ImportError:
    return ImportError(f"KerasHub backbones need keras-hub: pip install {KERAS_HUB_PIN} ({exc})")


def model(spec: BackboneSpec):
    """``(keras_hub backbone, meta)`` of ``spec``, loaded once per process from its local folder."""
    folder = fetch(spec)
    info = meta(folder)
    size = input_size(spec, info)
    key = (str(folder.resolve()), digest(folder), size)
    with _MODELS_LOCK:
        if key not in _MODELS:
            try:
                keras = quiet_import("keras")
                keras_hub = quiet_import("keras_hub")
            except ImportError as exc:
                raise _missing_keras_hub(exc) from exc
            if keras.backend.backend() != "tensorflow":
                raise BackboneUnavailableError(f"backbone {spec.name!r}: the kit runs KerasHub presets on Keras' "
                                               f"TensorFlow backend, and this process uses "
                                               f"{keras.backend.backend()!r}; unset KERAS_BACKEND or set it to "
                                               f"'tensorflow'")
            kwargs = {"image_shape": (size, size, 3)} if info["fixed_size"] is None and info["native_size"] else {}
            try:
                with quiet():
                    _MODELS[key] = keras_hub.models.Backbone.from_preset(str(folder), **kwargs)
            except Exception as exc:
                raise BackboneUnavailableError(f"could not load backbone {spec.name!r} from {folder}: {exc}") from exc
        return _MODELS[key], info


def image_function(spec: BackboneSpec):
    """A function ``float32 network input (N, S, S, 3) -> (N, D)`` (see the module docstring for the vector)."""
    tf = quiet_import("tensorflow")

    net, info = model(spec)
    if info["text"]:
        def vectors(x):
            return net.get_vision_embeddings(x)
    else:
        def vectors(x):
            out = net({"images": x}, training=False)
            if isinstance(out, dict):
                out = out.get("sequence_output", next(iter(out.values())))
            if len(out.shape) == 3:  # tokens: the CLS token
                return out[:, 0]
            if len(out.shape) == 4:  # a feature map: its mean
                return tf.reduce_mean(out, axis=[1, 2])
            return out

    fn = tf.function(vectors, reduce_retracing=True)
    return lambda x: fn(tf.convert_to_tensor(x, tf.float32)).numpy()


def vector_name(info: dict) -> str:
    return "projected" if info["text"] else "cls"


_TEXT: dict = {}


def text_vectors(spec: BackboneSpec, texts: list) -> np.ndarray:
    """Text embeddings ``(len(texts), D)`` of a language-aligned preset (CLIP, SigLIP), not normalised."""
    net, info = model(spec)
    if not info["text"]:
        raise ValueError(f"backbone {spec.name!r} ({info['cls']}) has no text tower; text search needs a "
                         f"language-aligned preset: {', '.join(n for n, r in PRESETS.items() if r[4])}")
    keras_hub = quiet_import("keras_hub")
    tf = quiet_import("tensorflow")

    key = id(net)
    with _MODELS_LOCK:
        if key not in _TEXT:
            folder = fetch(spec)
            cls = getattr(keras_hub.models, info["cls"].replace("Backbone", "Preprocessor"), None)
            if cls is None:
                raise ValueError(f"backbone {spec.name!r}: KerasHub has no text preprocessor for {info['cls']}")
            try:
                prep = cls.from_preset(str(folder))
            except Exception as exc:
                raise BackboneUnavailableError(f"backbone {spec.name!r}: could not load its tokenizer from {folder} "
                                               f"({exc})") from exc
            prep.image_converter = None
            fn = tf.function(net.get_text_embeddings, reduce_retracing=True)
            _TEXT[key] = (prep, fn)
        prep, fn = _TEXT[key]
    tokens = prep({"images": None, "prompts": tf.constant(list(texts))})["token_ids"]
    return np.asarray(fn(tokens), dtype=np.float32)


# ------------------------------------------------------------------ the kind
class KerasHubKind(BatchKind):
    """KerasHub presets: registry names, ``kaggle://``/``hf://`` handles, local preset folders."""

    source = SOURCE

    def offline(self, spec):
        return local_folder(spec.handle) is not None

    def _info(self, spec):
        return meta(fetch(spec))

    def cache_key(self, spec):
        info = self._info(spec)
        identity = spec.handle if is_handle(spec.handle) else f"folder:{info['cls']}"
        return f"{SOURCE}:{identity}:{digest(fetch(spec))}:{vector_name(info)}:{input_size(spec, info)}"

    def preprocessing(self, spec, options):
        info = self._info(spec)
        scale, offset = normalization(info)
        out = super().preprocessing(dataclasses.replace(spec, input_size=input_size(spec, info)), options)
        out.update(range="0-255", scale=scale, offset=offset)
        return out

    def decode(self, spec, path, options):
        from ..io import read_image

        return read_image(path, size=input_size(spec, self._info(spec)), resize=options.resize)

    def features(self, spec, batch):
        from ._base import load_backbone

        scale, offset = normalization(self._info(spec))
        x = batch.astype(np.float32) * np.asarray(scale, np.float32) + np.asarray(offset, np.float32)
        return load_backbone(spec).features(x)

    def load(self, spec, classifier):
        if classifier:
            return super().load(spec, classifier)
        return image_function(spec)

    def compute(self, spec, paths, options, progress, stats):
        info = self._info(spec)
        cap = batch_cap(info, input_size(spec, info))
        stats["batch_size"] = min(int(options.batch_size), cap)
        stats["runtime"] = "keras-tensorflow"
        yield from super().compute(spec, paths, dataclasses.replace(options, batch_size=stats["batch_size"]),
                                   progress, stats)


register_kind(KerasHubKind())


def spec_of(handle: str, input_size: int | None = None) -> BackboneSpec:
    """The spec of a ``kaggle://``/``hf://`` handle or a local preset folder (its name is the string itself, so
    ``Embeddings.backbone`` names it again)."""
    if not is_handle(handle):
        handle = str(Path(handle).expanduser().resolve())
    else:
        cache_folder(handle)  # a malformed handle fails here, before any download
    size = input_size
    folder = local_folder(handle)
    if size is None and folder is not None:  # the model's own size, else its image converter's
        info = meta(folder)
        size = info["fixed_size"] or (info["converter_size"] or [None])[0]
    return BackboneSpec(name=handle, source=SOURCE, handle=handle, input_size=int(size or 224), feature_dim=None,
                        description=f"KerasHub preset {handle}")


def has_text(spec: BackboneSpec) -> bool:
    """Whether ``spec`` has a text tower (CLIP, SigLIP). Registry names are known without the download; others are
    read from their local config."""
    if spec.source != SOURCE:
        return False
    name = _name_of(spec.handle)
    if name in PRESETS:
        return PRESETS[name][4]
    folder = local_folder(spec.handle)
    return bool(folder is not None and meta(folder)["text"])
