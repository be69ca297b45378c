"""Keras models of the classifying backbones (for CAM, Grad-CAM and guided backprop, and the ``keras`` kind):
the built-in EfficientNet-Lite family, fine-tuned ones and ``keras.applications`` models, whose ImageNet weights
come from the Keras cache (``$KERAS_HOME/models``), downloaded once otherwise."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import effnet_lite as _effnet_lite
from ._base import BackboneSpec, BackboneUnavailableError, BatchKind, register_kind
from ._finetuned import finetuned_note
from ._hub import check_reachable
from .._utils.quiet import quiet_import

# name -> (keras.applications class, module, input size, feature dim, weights file, folder on the server)
KERAS_APPS = {
    "keras_mobilenet_v2": ("MobileNetV2", "mobilenet_v2", 224, 1280,
                           "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5", "mobilenet_v2"),
    "keras_resnet50": ("ResNet50", "resnet50", 224, 2048, "resnet50_weights_tf_dim_ordering_tf_kernels.h5", "resnet"),
    "keras_inception_v3": ("InceptionV3", "inception_v3", 299, 2048,
                           "inception_v3_weights_tf_dim_ordering_tf_kernels.h5", "inception_v3"),
}
_KERAS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/{}/{}"
SPECS = {name: BackboneSpec(name=name, source="keras", handle=name, input_size=size, feature_dim=dim,
                            classifier_handle=name, description=f"keras.applications.{cls}, ImageNet")
         for name, (cls, _, size, dim, _, _) in KERAS_APPS.items()}
_KERAS_MODELS: dict = {}


def keras_weights_path(name: str) -> Path:
    """Where Keras keeps the ImageNet weights file of a ``keras.applications`` backbone."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models" / KERAS_APPS[name][4]


def _guided_clone(model):
    """A copy of ``model`` whose ReLU gradients are guided (for guided backpropagation)."""
    keras = quiet_import("keras")
    tf = quiet_import("tensorflow")

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


def model_of(spec: BackboneSpec, guided: bool = False):
    """The Keras model of ``spec`` (see ``kit.backbones.keras_model``), cached per process."""
    key = (spec.cache_key if spec.source == "finetuned" else spec.name, guided)
    if key in _KERAS_MODELS:
        return _KERAS_MODELS[key]
    keras = quiet_import("keras")

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
            base = model_of(spec, guided=False)
            model = _guided_clone(base)
            model.cam_layer = base.cam_layer
        else:
            cls, module, size, _, fname, folder = KERAS_APPS[spec.name]
            path = keras_weights_path(spec.name)
            if not path.exists():
                check_reachable(_KERAS_URL.format(folder, fname), cache=path)
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


class KerasKind(BatchKind):
    """``keras.applications`` models with ImageNet weights from the Keras cache (downloaded once otherwise)."""

    source = "keras"

    def offline(self, spec):
        return keras_weights_path(spec.name).exists()

    def load(self, spec, classifier):
        model = model_of(spec)
        index = 1 if classifier else 0
        return lambda x: model(x, training=False)[index]


register_kind(KerasKind())
