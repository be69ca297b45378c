"""The backbone registry: which models the kit can embed with, looked up by name.

A backbone is a ``BackboneSpec`` (name, source = its kind, handle, input size...); its kind (``kinds()``) does what
is specific to it, one private module each, and ``kit.embedding.run`` does the rest for every kind. Registered here:

* ``efficientnet_lite0/1/2`` and their ``_grid`` variants (kind ``builtin``, ``_builtin``): offline;
* TF-Hub handles (``tfhub``, ``_hub``) -- need internet the first time, then load from ``$TFHUB_CACHE_DIR``
  offline; any local SavedModel folder (``savedmodel``: pass its path; give ``input_size`` if it is not 224);
* ``keras.applications`` models (``keras``, ``_keras``: ``keras_mobilenet_v2``, ``keras_resnet50``,
  ``keras_inception_v3``) when their ImageNet weights are in the Keras cache; downloaded once otherwise;
* ``dlib_face`` (``dlib``, ``_faces``): faces found, aligned and described; rows are faces;
* ``color_hist``, ``hog``, ``pixels`` (``_classical``): classical baselines, no network;
* fine-tuned backbones made by ``kit.adapt`` (``finetuned``, ``_finetuned``), found again by name in every process;
* KerasHub presets (``kerashub``, ``_kerashub``: ``dinov2_small``, ``dinov2_base``, ``siglip_base_patch16_224``,
  ``clip_vit_base_patch32``), any ``kaggle://``/``hf://`` preset handle and local preset folders -- downloaded on
  first use (:func:`fetch`), then offline; CLIP and SigLIP also embed text (:func:`text_features`);
* your own: :func:`register` a callable (``callable``, ``_user``) or a SavedModel folder under a name.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pandas as pd

from . import _builtin, _classical, _faces, _hub, _keras, _kerashub, _user
from ._base import KINDS, Backbone, BackboneSpec, kind_of, load_backbone
from ._finetuned import finetuned_names, finetuned_spec

DEFAULT_BACKBONE = "efficientnet_lite0"

REGISTRY: dict[str, BackboneSpec] = {**_builtin.SPECS, **_hub.SPECS, **_keras.SPECS, **_kerashub.SPECS,
                                     "dlib_face": _faces.SPEC, **_classical.SPECS}
_BUILTIN_NAMES = frozenset(REGISTRY)


def is_offline_ready(spec: BackboneSpec) -> bool:
    """True when ``spec`` can be loaded right now without the network."""
    return bool(kind_of(spec).offline(spec))


def available() -> pd.DataFrame:
    """The registered backbones: name, source, input size, feature dim, can_classify, offline.

    ``offline`` says whether it can be used right now without internet. Fine-tuned backbones saved by
    ``kit.adapt`` under ``$KIT_HOME/models/finetuned`` are listed after the built-in ones.
    """
    import_plugins()
    specs = [*REGISTRY.values(), *(s for s in map(finetuned_spec, finetuned_names()) if s is not None)]
    rows = [
        dict(name=s.name, source=s.source, input_size=s.input_size, feature_dim=s.feature_dim,
             can_classify=s.can_classify, offline=is_offline_ready(s), description=s.description)
        for s in specs
    ]
    return pd.DataFrame(rows)


def get(backbone, input_size: int | None = None) -> BackboneSpec:
    """Resolve a registered name, a TF-Hub URL, a KerasHub preset handle (``kaggle://...``, ``hf://...``), a local
    KerasHub preset folder, or a local SavedModel folder to a ``BackboneSpec``."""
    if isinstance(backbone, BackboneSpec):
        return backbone
    if not isinstance(backbone, (str, os.PathLike)):
        raise TypeError(f"backbone={backbone!r} must be a name, a TF-Hub handle or a SavedModel folder")
    handle = os.fspath(backbone)
    import_plugins()
    if handle in REGISTRY:
        spec = REGISTRY[handle]
        return spec if input_size is None else dataclasses.replace(spec, input_size=int(input_size))
    spec = finetuned_spec(handle) if handle and os.sep not in handle and not handle.startswith(".") else None
    if spec is not None:
        return spec if input_size is None else dataclasses.replace(spec, input_size=int(input_size))
    if _kerashub.is_handle(handle):
        return _kerashub.spec_of(handle, input_size)
    if _hub.is_url(handle):
        return BackboneSpec(name=handle, source="tfhub", handle=handle, input_size=input_size or 224,
                            feature_dim=None)
    path = Path(handle).expanduser()
    if _kerashub.is_preset_folder(path):
        return _kerashub.spec_of(str(path), input_size)
    if (path / "saved_model.pb").exists():
        return BackboneSpec(name=path.name, source="savedmodel", handle=str(path.resolve()),
                            input_size=input_size or 224, feature_dim=None)
    raise ValueError(
        f"backbone={handle!r} is neither a registered name ({', '.join([*REGISTRY, *finetuned_names()])}), an "
        f"http(s) TF-Hub handle, a kaggle:// or hf:// KerasHub preset handle, nor a folder with a saved_model.pb "
        f"or a KerasHub preset (config.json)"
    )


def keras_model(backbone=DEFAULT_BACKBONE, guided: bool = False):
    """A Keras model of a classifying backbone: float32 images in [0, 1] -> ``[features, logits]``.

    Works for the built-in EfficientNet-Lite family, fine-tuned ones and ``keras.applications`` backbones. The
    model's attribute ``cam_layer`` names the layer whose *input* is the last convolutional feature map (the
    global pooling). ``guided=True`` returns a copy with guided-ReLU gradients. Cached per process.
    """
    return _keras.model_of(get(backbone), guided=guided)


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

    Notes
    -----
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


# ------------------------------------------------------------------ KerasHub presets (downloaded once) and text
def fetch(backbone) -> Path:
    """Download a KerasHub preset into its local cache (once, online) and return its folder; a preset already
    there is not downloaded again. Afterwards the backbone works offline.

    Examples
    --------
    >>> import kit
    >>> kit.backbones.fetch("dinov2_small")                                      # doctest: +SKIP
    PosixPath('/root/.cache/kagglehub/models/keras/dinov2/keras/dinov2_small/1')
    """
    spec = get(backbone)
    if spec.source != _kerashub.SOURCE:
        raise ValueError(f"backbone={spec.name!r} is a {spec.source!r} backbone; fetch() downloads KerasHub presets "
                         f"({', '.join(_kerashub.PRESETS)}, kaggle:// or hf:// handles)")
    return _kerashub.fetch(spec)


def has_text(backbone) -> bool:
    """Whether ``backbone`` also embeds text into its image space (CLIP and SigLIP presets)."""
    return _kerashub.has_text(get(backbone))


def text_features(texts, backbone) -> "np.ndarray":
    """Raw text embeddings ``(len(texts), D)`` float32 of a language-aligned backbone (not normalised; use
    ``kit.embed_text`` for rows comparable with ``kit.embed``)."""
    spec = get(backbone)
    if not has_text(spec):
        raise ValueError(f"backbone={spec.name!r} has no text tower; text needs a language-aligned KerasHub preset "
                         f"({', '.join(n for n, row in _kerashub.PRESETS.items() if row[4])}, or a CLIP/SigLIP "
                         f"preset handle or folder)")
    return _kerashub.text_vectors(spec, list(texts))
