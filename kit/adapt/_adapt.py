"""Adapt a backbone to your photos: fine-tune the last blocks of a built-in EfficientNet-Lite, then use the result
as a backbone like any other (``kit.embed``, ``kit.compare``, the dashboard, CAM inspection).

The recipe follows the SimilarPictures project: enlarge a small labelled set with augmentations (affine warp,
blur, horizontal flip, translation left and right; here also crops and colour jitter), and train only the layers
*before* the feature vector -- "if you retrain the layers after the feature vector, the vector loses its meaning".
The ImageNet head is kept as it was, so the fine-tuned backbone still gives ImageNet labels and CAMs.

Two ways to train the same layers:

* ``fine_tune``: labelled photos (sub-folders or a CSV). A cosine classifier, started at the class means of the
  ImageNet features, is trained together with the last blocks; it is dropped afterwards.
* ``fine_tune_contrastive``: no labels. SimCLR-style: two augmented views of every photo are pulled together and
  pushed away from the other photos of the batch (NT-Xent loss) through a small projection head, dropped afterwards.

Both hold out part of the photos and stop when the held-out loss stops improving (the best weights are kept),
print an estimate of time and memory measured on the first batches before the long part starts, report progress
through the kit's ``progress(done, total, stage)`` callback (which may raise to stop), and are reproducible from
``random_state`` (data split, shuffling, augmentations, initial weights) without touching global random state.

The result is saved under ``$KIT_HOME/models/finetuned/<name>`` (two TF-Hub-style SavedModels, the trained weights
and a JSON note) and found again by name in any later process. Calling again with the same photos and parameters
reuses it; a name holding a different fine-tune is refused unless ``overwrite=True``; ``remove(name)`` deletes one.

Examples
--------
>>> import kit
>>> images = kit.load_folder(kit.datasets.clothing())
>>> result = kit.adapt.fine_tune(images.subset(range(0, 500, 5)))  # doctest: +SKIP
>>> kit.embed(images, backbone=result.name)  # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import pandas as pd

from .. import backbones as _bb
from .. import costs as _costs
from .._utils.arrays import l2_normalize
from .._utils.config import __version__
from .._utils.validation import Interval, StrOptions, validate_params
from ..io import ImageSet, load_folder, read_image
from ..progress import report
from .._utils.quiet import quiet, quiet_import

# Measured on clothing10 (bench/adapt.py): training the head convolution and the last 4 blocks of
# efficientnet_lite0 gave the largest NMI gain within the time budget on 2 cores.
DEFAULT_TRAINABLE_BLOCKS = 4
DEFAULT_VIEWS = 5
MIN_PHOTOS = 8
MIN_PER_CLASS = 2
_COSINE_SCALE = 16.0
_GENERIC_FOLDERS = {"images", "image", "photos", "pictures", "img", "imgs", "data", "train", "jpg"}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_POSITIVE_INT = Interval(Integral, 1, None, closed="left")


@dataclass
class FineTuneResult:
    """A fine-tuned backbone, saved and registered.

    Attributes
    ----------
    name : str
        The backbone's name: pass it as ``backbone=`` to ``kit.embed``, ``kit.compare``, ``kit.inspect.cam``...
    path : Path
        Its folder under ``$KIT_HOME/models/finetuned``.
    base : str
        The built-in backbone it started from.
    method : str
        ``"supervised"`` (``fine_tune``) or ``"contrastive"`` (``fine_tune_contrastive``).
    params : dict
        Every training parameter, and what was trained (``trained_layers``).
    history : DataFrame
        One row per epoch: ``epoch, train_loss, val_loss`` (supervised: also ``val_accuracy``), ``seconds``.
    classes : list of str or None
        The labels trained on (supervised).
    estimate : dict
        What was measured on the first batches: ``seconds_per_step``, ``steps_per_epoch``, ``max_epochs``,
        ``estimated_seconds`` (upper bound), ``peak_memory_gb``.
    seconds : float
        Wall-clock time of the whole call (training, export and save).
    reused : bool
        True when an identical fine-tune was already saved under this name and nothing was trained.
    """

    name: str
    path: Path
    base: str
    method: str
    params: dict
    history: pd.DataFrame
    classes: list | None = None
    estimate: dict = field(default_factory=dict)
    seconds: float = 0.0
    reused: bool = False

    @property
    def spec(self) -> _bb.BackboneSpec:
        return _bb.get(self.name)

    def __repr__(self) -> str:
        best = self.history["val_loss"].min() if len(self.history) else float("nan")
        return (f"FineTuneResult(name={self.name!r}, base={self.base!r}, method={self.method!r}, "
                f"{len(self.history)} epochs, best val_loss={best:.4f}, reused={self.reused})")


# ------------------------------------------------------------------ low-level pieces
def augmentation(random_state: int = 0):
    """The training augmentations as one Keras model of preprocessing layers (float32 images in [0, 1]).

    Horizontal flip, translation left and right (up to 10 % of the width), an affine warp (rotation up to 11
    degrees and shear), crops (zoom in by up to 30 %), colour jitter (brightness, contrast, saturation, hue) and
    Gaussian blur, each seeded from ``random_state``. Active only when called with ``training=True``.
    """
    keras = quiet_import("keras")
    from keras import layers as L

    s = int(random_state) * 100
    return keras.Sequential([
        L.RandomFlip("horizontal", seed=s + 1),
        L.RandomTranslation(0.0, 0.1, fill_mode="reflect", seed=s + 2),
        L.RandomRotation(0.03, fill_mode="reflect", seed=s + 3),
        L.RandomShear(x_factor=0.1, y_factor=0.1, fill_mode="reflect", seed=s + 4),
        L.RandomZoom((-0.3, 0.0), fill_mode="reflect", seed=s + 5),
        L.RandomColorJitter(value_range=(0, 1), brightness_factor=0.15, contrast_factor=0.2,
                            saturation_factor=(0.35, 0.65), hue_factor=0.03, seed=s + 6),
        L.RandomGaussianBlur(factor=0.5, kernel_size=5, sigma=(0.1, 1.5), value_range=(0, 1), seed=s + 7),
    ], name="kit_augmentation")


def trainable_layers(base: str = _bb.DEFAULT_BACKBONE, trainable_blocks: int = DEFAULT_TRAINABLE_BLOCKS) -> list:
    """Names of the layers fine-tuning may change: the last ``trainable_blocks`` blocks and the head convolution
    of the built-in ``base`` -- everything between the last frozen block and the feature vector, nothing after it."""
    from ..backbones import effnet_lite as _effnet_lite

    if base not in _effnet_lite.VARIANTS:
        raise ValueError(f"backbone={base!r} cannot be fine-tuned here; choose one of {sorted(_effnet_lite.VARIANTS)}")
    width, depth, _ = _effnet_lite.VARIANTS[base]
    n_blocks = sum(plan[0] for plan in _effnet_lite.stage_plan(width, depth))
    if not (isinstance(trainable_blocks, Integral) and 0 <= trainable_blocks <= n_blocks):
        raise ValueError(f"trainable_blocks={trainable_blocks!r} must be an integer from 0 (head convolution only) "
                         f"to {n_blocks} (every block of {base})")
    names = [f"block{i}_{part}" for i in range(n_blocks - int(trainable_blocks), n_blocks)
             for part in ("expand", "dw", "project")]
    return names + ["head"]


def nt_xent(z1, z2, temperature: float = 0.1):
    """SimCLR's normalised-temperature cross-entropy between two batches of projections (row i of ``z1`` and of
    ``z2`` are two views of the same photo). A TensorFlow scalar."""
    tf = quiet_import("tensorflow")

    z = tf.math.l2_normalize(tf.concat([z1, z2], axis=0), axis=1)
    n = tf.shape(z1)[0]
    sim = tf.matmul(z, z, transpose_b=True) / temperature
    sim = sim - 1e9 * tf.eye(2 * n)
    targets = tf.concat([tf.range(n, 2 * n), tf.range(0, n)], axis=0)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(targets, sim))


# ------------------------------------------------------------------ data
def _imageset(images, labels) -> ImageSet:
    if isinstance(images, ImageSet):
        return images
    if isinstance(images, (str, os.PathLike)):
        return load_folder(images, labels=labels)
    raise TypeError(f"images={type(images).__name__} must be a folder path or a kit.ImageSet "
                    f"(kit.load_folder(folder), or .subset(...) of one)")


def _decode_all(imageset: ImageSet, size: int, on_unreadable: str):
    """uint8 array (N, size, size, 3) decoded exactly as ``kit.embed`` does (centre crop), the kept positions,
    and the (path, reason) table of files that could not be used."""
    def one(p):
        try:
            return read_image(p, size=size, resize="center_crop"), None
        except ValueError as exc:
            return None, str(exc)

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="kit-adapt") as pool:
        decoded = list(pool.map(one, imageset.paths))
    keep = [i for i, (a, _) in enumerate(decoded) if a is not None]
    bad = list(zip(imageset.unreadable["path"], imageset.unreadable["reason"]))
    bad += [(imageset.paths[i], r) for i, (a, r) in enumerate(decoded) if a is None]
    if bad and on_unreadable == "raise":
        shown = "; ".join(f"{p}: {r}" for p, r in bad[:3]) + (f"; ... ({len(bad) - 3} more)" if len(bad) > 3 else "")
        raise ValueError(f"{len(bad)} of the photos cannot be read ({shown}). Remove or repair them, or pass "
                         f"on_unreadable='skip' to fine-tune on the {len(keep)} readable ones")
    x = np.stack([decoded[i][0] for i in keep]) if keep else np.zeros((0, size, size, 3), np.uint8)
    return x, keep, pd.DataFrame(bad, columns=["path", "reason"])


def _split(n: int, y, validation_fraction: float, rng):
    """Train / held-out positions; stratified (at least one held out and one trained per class) when ``y``."""
    if y is None:
        order = rng.permutation(n)
        n_val = max(2, int(round(validation_fraction * n)))
        return np.sort(order[n_val:]), np.sort(order[:n_val])
    train, val = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_val = min(len(idx) - 1, max(1, int(round(validation_fraction * len(idx)))))
        val += list(idx[:n_val])
        train += list(idx[n_val:])
    return np.sort(train), np.sort(val)


def _stem(imageset: ImageSet) -> str:
    """A short name for the photos: their folder's name (its parent's for a generic name like 'images')."""
    root = Path(imageset.root).resolve()
    stem = root.name if root.name.lower() not in _GENERIC_FOLDERS else root.parent.name
    return (re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_") or "photos")[:40]


def _default_name(imageset: ImageSet, base: str, suffix: str) -> str:
    return f"{_stem(imageset)}_{base.replace('efficientnet_', '')}_{suffix}"


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"name={name!r} must be 1 to 64 lower-case letters, digits, '_', '-' or '.', starting "
                         f"with a letter or digit (e.g. 'clothing_lite0_ft')")
    if name in _bb.REGISTRY:
        raise ValueError(f"name={name!r} is a built-in backbone; choose another name (e.g. '{name}_ft')")


# ------------------------------------------------------------------ saving
def _digest_arrays(arrays: dict) -> str:
    h = hashlib.blake2b(digest_size=12)
    for key in sorted(arrays):
        h.update(key.encode())
        h.update(np.ascontiguousarray(arrays[key]).tobytes())
    return h.hexdigest()


@quiet()  # saving logs "INFO:tensorflow:Assets written to: ..." when the root logger is at INFO
def _export(model, folder: Path, input_size: int) -> None:
    """Two TF-Hub-style SavedModels of ``model`` ([features, logits]): a ``tf.Module`` holding each variable once
    and a ``tf.function`` with a fixed input signature (a Keras 3 model exported naively saves weights twice)."""
    tf = quiet_import("tensorflow")

    spec = tf.TensorSpec([None, input_size, input_size, 3], tf.float32, name="images")

    def output(index):
        @tf.function(input_signature=[spec])
        def call(images):
            return model(images, training=False)[index]

        return call

    for out_index, sub in ((0, "features"), (1, "classifier")):
        module = tf.Module()
        module.variables_ = [w.value if hasattr(w, "value") else w for w in model.weights]
        module.__call__ = output(out_index)
        tf.saved_model.save(module, str(folder / sub), signatures={"serving_default": module.__call__})


def _leftovers(root: Path, name: str) -> list:
    """The temporary folders a save of ``name`` makes beside it (``.name.tmp-*``, ``.name.old-*``): the kit's own."""
    return [p for prefix in (f".{name}.tmp-", f".{name}.old-") for p in root.glob(f"{prefix}*") if p.is_dir()]


def _save(model, name: str, trained: list, note: dict, overwrite: bool) -> Path:
    """Write the backbone into a new temporary sibling folder made here, then rename it into place. An existing
    folder of that name is replaced only when ``overwrite`` and it holds the kit's note (the kit made it).

    Saves of one name take a file lock (``filelock``, released by the operating system when a process dies), so the
    temporary folders a killed save left beside it are known to be dead and are removed by the next save."""
    final = _bb.finetuned_root() / name
    with _name_lock(name):
        for stale in _leftovers(final.parent, name):  # a killed save's: nobody else holds the lock
            shutil.rmtree(stale, ignore_errors=True)
        return _save_locked(model, final, name, trained, note, overwrite)


def _name_lock(name: str):
    """The inter-process lock of the fine-tuned backbone ``name`` (``<finetuned_root>/.locks/<name>.lock``)."""
    from filelock import FileLock

    locks = _bb.finetuned_root() / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    return FileLock(str(locks / f"{name}.lock"))


def _clear_leftovers(name: str) -> None:
    """Remove what a killed save of ``name`` left beside it (only the kit's own temporary folders)."""
    root = _bb.finetuned_root()
    if root.is_dir() and _leftovers(root, name):
        with _name_lock(name):
            for stale in _leftovers(root, name):
                shutil.rmtree(stale, ignore_errors=True)


def _save_locked(model, final: Path, name: str, trained: list, note: dict, overwrite: bool) -> Path:
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{name}.tmp-"))  # ours alone
    trash = None
    try:
        os.chmod(tmp, 0o755)
        _export(model, tmp, note["input_size"])
        arrays = {f"{layer.name}:{i}": w for layer in trained for i, w in enumerate(layer.get_weights())}
        np.savez(tmp / note["weights_file"], **arrays)
        note = {**note, "weights_digest": _digest_arrays(arrays), "saved": time.strftime("%Y-%m-%d %H:%M:%S")}
        (tmp / _bb.FINETUNED_NOTE).write_text(json.dumps(note, indent=1, default=str))  # written last: complete
        if final.exists() or final.is_symlink():
            if not overwrite or _bb.finetuned_note(final) is None:
                raise ValueError(f"{str(final)!r} appeared meanwhile or was not made by kit.adapt; the kit never "
                                 f"replaces a folder it did not create: move it away or choose another name=")
            trash = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{name}.old-"))
            os.rename(final, trash / name)
        os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # only when it was not renamed into place
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)  # the kit's previous fine-tune of this name, moved aside
    return final


def remove(name: str) -> Path:
    """Delete the fine-tuned backbone ``name`` (only a folder made by ``kit.adapt``, holding its note)."""
    _check_name(name)
    folder = _bb.finetuned_root() / name
    if _bb.finetuned_note(folder) is None:
        raise ValueError(f"name={name!r} is not a fine-tuned backbone saved by kit.adapt (nothing at "
                         f"{str(folder)!r} with a {_bb.FINETUNED_NOTE}); see kit.backbones.available()")
    trash = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{name}.old-"))
    os.rename(folder, trash / name)
    shutil.rmtree(trash, ignore_errors=True)
    return folder


def _result_from_note(folder: Path, note: dict, seconds: float, reused: bool) -> FineTuneResult:
    return FineTuneResult(name=note["name"], path=folder, base=note["base"], method=note["method"],
                          params=note["params"], history=pd.DataFrame(note["history"]), classes=note.get("classes"),
                          estimate=note.get("estimate", {}), seconds=seconds, reused=reused)


# ------------------------------------------------------------------ the training loop
def _peak_memory_gb() -> float:
    try:
        import resource

        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return kb / (1024 ** 3 if sys.platform == "darwin" else 1024 ** 2)
    except (ImportError, OSError):
        return float("nan")


def _split_model(model, base: str, trainable_blocks: int):
    """``(prefix, tail)``: the frozen part as a Keras model (images -> the activations entering the first trained
    layer) and the trained part as a function (those activations -> feature vectors), sharing ``model``'s layers,
    so ``tail(prefix(x))`` equals ``model(x)[0]``."""
    keras = quiet_import("keras")

    from ..backbones import effnet_lite as _effnet_lite

    width, depth, _ = _effnet_lite.VARIANTS[base]
    n_blocks = sum(plan[0] for plan in _effnet_lite.stage_plan(width, depth))
    first = n_blocks - int(trainable_blocks)
    names = {layer.name for layer in model.layers}
    entry = "head" if first == n_blocks else next(n for n in (f"block{first}_expand", f"block{first}_dw")
                                                  if n in names)
    prefix = keras.Model(model.input, model.get_layer(entry).input, name=f"{base}_frozen")
    get = model.get_layer

    def tail(x):
        for i in range(first, n_blocks):
            h = x
            if f"block{i}_expand" in names:
                h = get(f"block{i}_expand_relu6")(get(f"block{i}_expand")(h))
            h = get(f"block{i}_project")(get(f"block{i}_dw_relu6")(get(f"block{i}_dw")(h)))
            x = get(f"block{i}_add")([x, h]) if f"block{i}_add" in names else h
        return get("features")(get("head_relu6")(get("head")(x)))

    return prefix, tail


def _activations(run, x_uint8, batch: int, tick=None) -> np.ndarray:
    out = []
    for i in range(0, len(x_uint8), batch):
        out.append(np.asarray(run(x_uint8[i:i + batch].astype(np.float32) / 255.0)))
        if tick is not None:
            tick(min(i + batch, len(x_uint8)))
    return np.concatenate(out)


class _Supervised:
    """Cosine classifier on the feature vector, started at the class means; cross-entropy with label smoothing."""

    needs_views = 1

    def __init__(self, tail, trunk, clean_train, y_train, clean_val, y_val, n_classes, learning_rate):
        keras = quiet_import("keras")
        tf = quiet_import("tensorflow")

        feats = _tail_features(tail, clean_train)
        means = np.stack([feats[y_train == c].mean(axis=0) for c in range(n_classes)]).T
        self.w = keras.Variable(l2_normalize(means, axis=0), name="cosine_head")
        self.variables, self.y, self.val = trunk, y_train.astype(np.int32), (clean_val, y_val.astype(np.int32))
        opt_trunk, opt_head = keras.optimizers.Adam(learning_rate), keras.optimizers.Adam(learning_rate * 10)
        opt_trunk.build(trunk)
        opt_head.build([self.w])

        def logits(h):
            f = tail(h)
            return _COSINE_SCALE * tf.matmul(tf.math.l2_normalize(f, axis=1), tf.math.l2_normalize(self.w, axis=0))

        def loss_of(y, z):
            onehot = tf.one_hot(y, n_classes) * 0.9 + 0.1 / n_classes
            return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(onehot, z))

        @tf.function(reduce_retracing=True)
        def step(h, y, apply):
            with tf.GradientTape() as tape:
                loss = loss_of(y, logits(h))
            grads = tape.gradient(loss, [*trunk, self.w])
            if apply:
                opt_trunk.apply_gradients(zip(grads[:-1], trunk))
                opt_head.apply_gradients([(grads[-1], self.w)])
            return loss

        @tf.function(reduce_retracing=True)
        def score(h, y):
            z = logits(h)
            return loss_of(y, z) * tf.cast(tf.shape(h)[0], tf.float32), tf.reduce_sum(
                tf.cast(tf.equal(tf.argmax(z, axis=1, output_type=tf.int32), y), tf.float32))

        self._step, self._score = step, score

    def batch(self, views, idx, rng):
        """One random augmented view of each photo of the batch."""
        return views[rng.integers(0, len(views), len(idx)), idx], self.y[idx]

    def train_step(self, batch, apply=True):
        return float(self._step(*batch, apply))

    def evaluate(self):
        h, y = self.val
        loss = acc = 0.0
        for i in range(0, len(h), 64):
            l, a = self._score(h[i:i + 64], y[i:i + 64])
            loss, acc = loss + float(l), acc + float(a)
        return {"val_loss": loss / len(h), "val_accuracy": acc / len(h)}


class _Contrastive:
    """SimCLR: a projection head (1280 -> 512 -> 128) on the feature vector, NT-Xent between two augmented views."""

    needs_views = 2

    def __init__(self, tail, trunk, val_views, learning_rate, temperature, random_state):
        keras = quiet_import("keras")
        tf = quiet_import("tensorflow")

        init = keras.initializers.GlorotUniform
        head = keras.Sequential([
            keras.layers.Dense(512, activation="relu", kernel_initializer=init(seed=random_state)),
            keras.layers.Dense(128, kernel_initializer=init(seed=random_state + 1))], name="projection")
        head.build((None, _tail_features(tail, val_views[0][:1]).shape[1]))
        head_vars = head.trainable_weights
        self.variables, self.val = trunk, val_views
        opt_trunk, opt_head = keras.optimizers.Adam(learning_rate), keras.optimizers.Adam(learning_rate * 10)
        opt_trunk.build(trunk)
        opt_head.build(head_vars)

        @tf.function(reduce_retracing=True)
        def step(h1, h2, apply):
            with tf.GradientTape() as tape:
                z = head(tail(tf.concat([h1, h2], axis=0)))
                n = tf.shape(h1)[0]
                loss = nt_xent(z[:n], z[n:], temperature)
            grads = tape.gradient(loss, [*trunk, *head_vars])
            if apply:
                opt_trunk.apply_gradients(zip(grads[:len(trunk)], trunk))
                opt_head.apply_gradients(zip(grads[len(trunk):], head_vars))
            return loss

        self._step = step
        self._score = tf.function(lambda h1, h2: nt_xent(head(tail(h1)), head(tail(h2)), temperature),
                                  reduce_retracing=True)

    def batch(self, views, idx, rng):
        """Two different augmented views of each photo of the batch."""
        a = rng.integers(0, len(views), len(idx))
        b = (a + rng.integers(1, len(views), len(idx))) % len(views)
        return views[a, idx], views[b, idx]

    def train_step(self, batch, apply=True):
        return float(self._step(*batch, apply))

    def evaluate(self):
        return {"val_loss": float(self._score(*self.val))}


def _tail_features(tail, h, batch=64):
    return np.concatenate([np.asarray(tail(h[i:i + batch])) for i in range(0, len(h), batch)])


def _train(task_factory, prefix, tail, trunk, augment, x_train, x_val, *, views, epochs, batch_size, patience,
           max_steps, rng, progress, verbose, what):
    """The frozen blocks see each photo once per augmented view (computed first, kept in memory); then the trained
    blocks learn from those activations for up to ``epochs`` epochs, each photo shown as a random view, with early
    stopping on the held-out loss (the best epoch's weights are put back). Prints the time and memory estimated on
    the first batches before the long part. Returns (history, estimate)."""
    tf = quiet_import("tensorflow")

    t_start = time.perf_counter()
    n, bs = len(x_train), min(batch_size, len(x_train))
    clean = tf.function(lambda t: prefix(t, training=False), reduce_retracing=True)
    aug = tf.function(lambda t: prefix(augment(t, training=True), training=False), reduce_retracing=True)
    stage = f"{what}: frozen blocks"
    frozen_total = n * (views + 1) + len(x_val) * (1 if task_factory.needs_views == 1 else 2)
    done = [0]

    def tick(base):
        return lambda k: report(progress, min(base + k, frozen_total), frozen_total, stage)

    report(progress, 0, frozen_total, stage)
    t0 = time.perf_counter()
    clean_train = _activations(clean, x_train, 32, tick(0))
    per_photo = (time.perf_counter() - t0) / n
    done[0] = n
    if task_factory.needs_views == 1:
        val_data = _activations(clean, x_val, 32, tick(done[0]))
        done[0] += len(x_val)
    else:
        val_data = tuple(_activations(aug, x_val, 32, tick(done[0] + j * len(x_val))) for j in range(2))
        done[0] += 2 * len(x_val)
    task = task_factory(clean_train, val_data)
    t0 = time.perf_counter()
    first_view = _activations(aug, x_train, 32, tick(done[0]))
    per_view = time.perf_counter() - t0
    done[0] += n
    probe = task.batch(first_view[None], np.arange(bs), rng) if task_factory.needs_views == 1 else (
        first_view[:bs], first_view[:bs])
    task.train_step(probe, apply=False)  # traces
    t0 = time.perf_counter()
    task.train_step(probe, apply=False)
    sps = time.perf_counter() - t0
    steps_per_epoch = max(1, n // bs)  # full batches only: one traced shape
    total = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    act_gb = first_view.nbytes * (views + 1) / 1024 ** 3
    estimate = {"seconds_per_photo_frozen": round(per_photo, 4), "seconds_per_view": round(per_view, 1),
                "seconds_per_step": round(sps, 3), "steps_per_epoch": steps_per_epoch, "max_epochs": epochs,
                "estimated_seconds": round((views - 1) * per_view + total * sps * 1.1
                                           + epochs * sps / 3 * max(1, len(x_val) / bs), 1),
                "activations_gb": round(act_gb, 2), "peak_memory_gb": round(_peak_memory_gb() + act_gb, 2)}
    if verbose:
        print(f"{what}: {n} photos for training, {len(x_val)} held out. Measured on the first batches "
              f"({os.cpu_count()} cores): {per_view:.0f} s per augmented view of all photos through the frozen "
              f"blocks ({views} views), {sps:.2f} s per training step of {bs} -> about "
              f"{estimate['estimated_seconds'] / 60:.1f} min more for at most {epochs} epochs (early stopping often "
              f"ends sooner); memory about {estimate['peak_memory_gb']:.1f} GB. Interrupt now to stop.", flush=True)
    all_views = [first_view]
    for v in range(1, views):
        all_views.append(_activations(aug, x_train, 32, tick(done[0])))
        done[0] += n
    report(progress, frozen_total, frozen_total, stage)
    all_views = np.stack(all_views)
    del first_view

    history, best, best_values, bad_epochs, step = [], np.inf, None, 0, 0
    t_train = time.perf_counter()
    report(progress, 0, total, what)
    for epoch in range(1, epochs + 1):
        t_epoch = time.perf_counter()
        order = rng.permutation(n)
        losses = []
        for b in range(steps_per_epoch):
            if step >= total:
                break
            losses.append(task.train_step(task.batch(all_views, np.sort(order[b * bs:(b + 1) * bs]), rng)))
            step += 1
            report(progress, step, total, what)
        scores = task.evaluate()
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else np.nan, **scores,
                        "seconds": round(time.perf_counter() - t_epoch, 2)})
        if scores["val_loss"] < best - 1e-4:
            best, bad_epochs = scores["val_loss"], 0
            best_values = [np.array(v.numpy()) for v in task.variables]
        else:
            bad_epochs += 1
        if bad_epochs >= patience or step >= total:
            break
    if best_values is not None:
        for v, value in zip(task.variables, best_values):
            v.assign(value)
    report(progress, total, total, what)
    estimate["frozen_seconds"] = round(t_train - t_start, 1)
    estimate["training_seconds"] = round(time.perf_counter() - t_start, 1)
    return pd.DataFrame(history), estimate


# ------------------------------------------------------------------ the public calls
_COMMON = {
    "backbone": [str], "name": [str, None], "trainable_blocks": [Interval(Integral, 0, None, closed="left")],
    "views": [_POSITIVE_INT],
    "epochs": [_POSITIVE_INT], "batch_size": [Interval(Integral, 2, None, closed="left")],
    "learning_rate": [Interval(Real, 0, None, closed="neither")],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")], "patience": [_POSITIVE_INT],
    "max_steps": [_POSITIVE_INT, None], "random_state": [Interval(Integral, 0, None, closed="left")],
    "progress": [callable, None], "verbose": ["boolean"], "on_unreadable": [StrOptions({"raise", "skip"})],
    "overwrite": ["boolean"],
}


def _cost_key(method: str, backbone: str, trainable_blocks: int) -> str:
    return f"{method}:{backbone}:{int(trainable_blocks)}"


def forecast(n_photos: int, backbone: str = _bb.DEFAULT_BACKBONE, *, method: str = "supervised",
             trainable_blocks: int = DEFAULT_TRAINABLE_BLOCKS, views: int = DEFAULT_VIEWS,
             epochs: int = 20) -> _costs.Estimate | None:
    """How long fine-tuning ``n_photos`` training photos will take at most (no early stop), from what earlier
    fine-tunes of the same backbone, method and number of trained blocks cost on this machine (``kit.costs``);
    None when none ran here yet. ``fine_tune`` prints it before it starts, then measures its own first batches.

    >>> forecast(300, "no-such-backbone") is None
    True
    """
    validate_params({"n_photos": [Interval(Integral, 0, None, closed="left")],
                     "method": [StrOptions({"supervised", "contrastive"})], "views": [_POSITIVE_INT],
                     "epochs": [_POSITIVE_INT], "trainable_blocks": [Interval(Integral, 0, None, closed="left")]},
                    {"n_photos": n_photos, "method": method, "views": views, "epochs": epochs,
                     "trainable_blocks": trainable_blocks}, "forecast")
    return _costs.estimate("fine_tune", _cost_key(method, backbone, trainable_blocks),
                           int(n_photos) * (int(views) + int(epochs)))


def _run(method, images, labels, backbone, name, trainable_blocks, views, epochs, batch_size, learning_rate,
         validation_fraction, patience, max_steps, random_state, progress, verbose, on_unreadable, overwrite,
         temperature=None) -> FineTuneResult:
    t0 = time.perf_counter()
    from ..backbones import effnet_lite as _effnet_lite

    if backbone not in _effnet_lite.VARIANTS:
        raise ValueError(f"backbone={backbone!r} cannot be fine-tuned; choose a built-in EfficientNet-Lite: "
                         f"{', '.join(sorted(_effnet_lite.VARIANTS))}")
    layer_names = trainable_layers(backbone, trainable_blocks)
    imageset = _imageset(images, labels if method == "supervised" else None)
    if method == "supervised" and imageset.labels is None:
        raise ValueError("images have no labels: fine_tune needs photos in one sub-folder per class, or "
                         "labels='file.csv' (columns path, label); for unlabelled photos use "
                         "kit.adapt.fine_tune_contrastive")
    if method == "supervised":
        counts = pd.Series(imageset.labels).value_counts()
        if len(counts) < 2:
            raise ValueError(f"images have {len(counts)} class ({', '.join(map(repr, counts.index))}): fine_tune "
                             f"needs photos of at least 2 classes; for one class or no labels use "
                             f"kit.adapt.fine_tune_contrastive")
    name = name if name is not None else _default_name(imageset, backbone, "ft" if method == "supervised" else "simclr")
    _check_name(name)
    _clear_leftovers(name)
    input_size = _effnet_lite.VARIANTS[backbone][2]
    params = {"method": method, "base": backbone, "trainable_blocks": int(trainable_blocks), "views": int(views),
              "epochs": int(epochs),
              "batch_size": int(batch_size), "learning_rate": float(learning_rate),
              "validation_fraction": float(validation_fraction), "patience": int(patience),
              "max_steps": None if max_steps is None else int(max_steps), "random_state": int(random_state),
              "on_unreadable": on_unreadable, "kit_version": __version__}
    if temperature is not None:
        params["temperature"] = float(temperature)
    fp = hashlib.blake2b(json.dumps({"params": params, "hashes": imageset.hashes, "labels": imageset.labels},
                                    sort_keys=True).encode(), digest_size=12).hexdigest()
    folder = _bb.finetuned_root() / name
    old = _bb.finetuned_note(folder)
    if old is not None and old.get("fingerprint") == fp:
        if verbose:
            print(f"{name!r} was already fine-tuned on these photos with these parameters ({old.get('saved')}): "
                  f"reusing it (remove it with kit.adapt.remove({name!r}) to train again)", flush=True)
        return _result_from_note(folder, old, time.perf_counter() - t0, reused=True)
    if (folder.exists() or folder.is_symlink()) and not overwrite:
        made = f"saved {old.get('saved')} from other photos or parameters" if old else "not made by kit.adapt"
        raise ValueError(f"name={name!r} is taken ({str(folder)!r}, {made}); choose another name=, or pass "
                         f"overwrite=True to replace a fine-tune the kit made")
    if folder.exists() and old is None:
        raise ValueError(f"{str(folder)!r} exists but was not made by kit.adapt (no {_bb.FINETUNED_NOTE}); the kit "
                         f"never deletes a folder it did not create: move it away or choose another name=")

    x, keep, unreadable = _decode_all(imageset, input_size, on_unreadable)
    if len(keep) < MIN_PHOTOS:
        raise ValueError(f"images: {len(keep)} readable photos; fine-tuning needs at least {MIN_PHOTOS} "
                         f"(a few hundred work far better)")
    rng = np.random.default_rng(random_state)
    y, classes = None, None
    if method == "supervised":
        lab = np.asarray([imageset.labels[i] for i in keep])
        classes = sorted(set(lab.tolist()))
        counts = pd.Series(lab).value_counts()
        small = counts[counts < MIN_PER_CLASS]
        if len(classes) < 2:
            raise ValueError(f"images: only class {classes[0]!r} has readable photos; fine_tune needs at least 2 "
                             f"classes")
        if len(small):
            few = {str(k): int(v) for k, v in small.items()}
            raise ValueError(f"images: classes {few} have fewer than {MIN_PER_CLASS} readable photos "
                             f"(one is held out to stop training in time); add photos or drop those classes")
        y = np.searchsorted(classes, lab).astype(np.int32)
    train, val = _split(len(x), y, validation_fraction, rng)
    earlier = forecast(len(train), backbone, method=method, trainable_blocks=trainable_blocks, views=views,
                       epochs=epochs)
    if verbose and earlier is not None:
        print(f"Forecast from earlier fine-tunes on this machine: at most {earlier.text[len('about '):]} for "
              f"{len(train)} photos, {views} views and up to {epochs} epochs.", flush=True)

    model = _effnet_lite.build(backbone)
    trained = [model.get_layer(n) for n in layer_names]
    for layer in model.layers:
        layer.trainable = layer.name in set(layer_names)
    trunk = [w for layer in trained for w in layer.trainable_weights]
    prefix, tail = _split_model(model, backbone, trainable_blocks)
    if method == "supervised":
        def task_factory(clean_train, val_data):
            return _Supervised(tail, trunk, clean_train, y[train], val_data, y[val], len(classes), learning_rate)
        task_factory.needs_views = 1
        what = f"fine-tuning {backbone} ({len(classes)} classes)"
    else:
        def task_factory(clean_train, val_data):
            return _Contrastive(tail, trunk, val_data, learning_rate, temperature, random_state)
        task_factory.needs_views = 2
        what = f"contrastive fine-tuning {backbone}"
    history, estimate = _train(task_factory, prefix, tail, trunk, augmentation(random_state), x[train], x[val],
                               views=int(views), epochs=int(epochs), batch_size=int(batch_size),
                               patience=int(patience), max_steps=max_steps, rng=rng, progress=progress,
                               verbose=verbose, what=what)
    # one item = one training photo through one view or one epoch: the unit forecast() counts in
    _costs.record("fine_tune", _cost_key(method, backbone, trainable_blocks),
                  len(train) * (int(views) + len(history)), estimate["training_seconds"])
    params = {**params, "epochs_run": int(len(history)), "trained_layers": layer_names}
    note = {"name": name, "base": backbone, "method": method, "input_size": input_size,
            "feature_dim": _effnet_lite.FEATURE_DIM, "weights_file": "trained_weights.npz", "fingerprint": fp,
            "images": _stem(imageset), "n_images": len(keep), "n_train": int(len(train)),
            "n_val": int(len(val)), "classes": classes, "params": params,
            "history": history.to_dict("records"), "estimate": estimate,
            "unreadable_skipped": int(len(unreadable))}
    folder = _save(model, name, trained, note, overwrite)
    if verbose:
        last = history.iloc[int(history["val_loss"].idxmin())]
        print(f"saved {name!r} ({len(history)} epochs, best held-out loss {last['val_loss']:.3f} at epoch "
              f"{int(last['epoch'])}) in {folder}", flush=True)
    return _result_from_note(folder, _bb.finetuned_note(folder), time.perf_counter() - t0, reused=False)


def fine_tune(images, backbone: str = _bb.DEFAULT_BACKBONE, *, labels="folders", name: str | None = None,
              trainable_blocks: int = DEFAULT_TRAINABLE_BLOCKS, views: int = DEFAULT_VIEWS, epochs: int = 20,
              batch_size: int = 32, learning_rate: float = 3e-4, validation_fraction: float = 0.2, patience: int = 4,
              max_steps: int | None = None, random_state: int = 0, progress=None, verbose: bool = True,
              on_unreadable: str = "raise", overwrite: bool = False) -> FineTuneResult:
    """Fine-tune a built-in EfficientNet-Lite on labelled photos and save it as a new named backbone.

    Parameters
    ----------
    images : folder path or ImageSet
        Labelled photos: one sub-folder per class, or ``labels=`` a CSV. A labelled part of your photos is
        enough (e.g. ``images.subset(...)`` with 20 % of them); embed all of them afterwards.
    backbone : {"efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"}
        The built-in backbone to start from.
    labels : "folders" or CSV path
        Where labels come from when ``images`` is a folder (see ``kit.load_folder``).
    name : str, optional
        The new backbone's name (default ``<folder>_<lite0>_ft``, e.g. ``clothing_lite0_ft``).
    trainable_blocks : int
        How many of the last blocks are trained, besides the head convolution; all layers after the feature
        vector (the ImageNet classifier) and every earlier block stay as they were.
    views : int
        Augmented views of each training photo. The frozen blocks run once per view (the costly part, done
        first); the trained blocks then learn from those activations, each epoch showing every photo as one of
        its views, so epochs are cheap.
    epochs, batch_size, learning_rate : training length, photos per step, Adam step size of the trained blocks
        (the temporary classifier learns 10 times faster).
    validation_fraction : float
        Share of the photos of each class held out to stop training when their loss stops improving.
    patience : int
        Epochs without improvement before stopping; the best epoch's weights are kept.
    max_steps : int, optional
        Stop after this many training steps (a quick trial).
    random_state : int
        Seeds the split, the shuffling, the augmentations and the initial weights.
    progress : callable(done, total, stage), optional
        Called after every step; raise from it to stop (nothing is saved then).
    verbose : bool
        Print the time and memory estimate measured on the first batches, and where the result went.
    on_unreadable : {"raise", "skip"}
        What to do when some photos cannot be read.
    overwrite : bool
        Replace a different fine-tune the kit saved under ``name`` (other photos or parameters). An identical
        one (same photos, same parameters) is always reused without training.

    Returns
    -------
    FineTuneResult
        ``.name`` is the new backbone, usable wherever a backbone is (``kit.embed``, ``kit.compare``, CAM).

    Examples
    --------
    >>> import kit
    >>> images = kit.load_folder(kit.datasets.clothing())
    >>> ft = kit.adapt.fine_tune(images.subset(range(0, 500, 5)))  # doctest: +SKIP
    >>> ft.name  # doctest: +SKIP
    'clothing_lite0_ft'
    """
    validate_params({**_COMMON, "labels": [str, os.PathLike]},
                    {"backbone": backbone, "name": name, "trainable_blocks": trainable_blocks, "views": views,
                     "epochs": epochs,
                     "batch_size": batch_size, "learning_rate": learning_rate,
                     "validation_fraction": validation_fraction, "patience": patience, "max_steps": max_steps,
                     "random_state": random_state, "progress": progress, "verbose": verbose,
                     "on_unreadable": on_unreadable, "overwrite": overwrite, "labels": labels}, "fine_tune")
    return _run("supervised", images, labels, backbone, name, trainable_blocks, views, epochs, batch_size,
                learning_rate, validation_fraction, patience, max_steps, random_state, progress, verbose,
                on_unreadable, overwrite)


def fine_tune_contrastive(images, backbone: str = _bb.DEFAULT_BACKBONE, *, name: str | None = None,
                          trainable_blocks: int = DEFAULT_TRAINABLE_BLOCKS, views: int = DEFAULT_VIEWS,
                          epochs: int = 20, batch_size: int = 32, learning_rate: float = 1e-4,
                          temperature: float = 0.2, validation_fraction: float = 0.2, patience: int = 4,
                          max_steps: int | None = None, random_state: int = 0, progress=None, verbose: bool = True,
                          on_unreadable: str = "raise", overwrite: bool = False) -> FineTuneResult:
    """Fine-tune the same last blocks without labels (SimCLR-style) and save the result as a new named backbone.

    Every step takes a batch of photos, makes two augmented views of each and trains the last blocks (through a
    temporary projection head) so that the two views of one photo come out closer to each other than to any
    other photo of the batch (NT-Xent loss with ``temperature``). Labels, if any, are ignored. The default name
    is ``<folder>_<lite0>_simclr``; ``views`` must be at least 2; every other parameter is as in ``fine_tune``.
    Each step sees the batch twice, so it costs about twice a supervised step.

    Examples
    --------
    >>> import kit
    >>> ft = kit.adapt.fine_tune_contrastive(kit.datasets.clothing(), epochs=3)  # doctest: +SKIP
    """
    validate_params({**_COMMON, "temperature": [Interval(Real, 0, None, closed="neither")]},
                    {"backbone": backbone, "name": name, "trainable_blocks": trainable_blocks, "views": views,
                     "epochs": epochs,
                     "batch_size": batch_size, "learning_rate": learning_rate,
                     "validation_fraction": validation_fraction, "patience": patience, "max_steps": max_steps,
                     "random_state": random_state, "progress": progress, "verbose": verbose,
                     "on_unreadable": on_unreadable, "overwrite": overwrite, "temperature": temperature},
                    "fine_tune_contrastive")
    if views < 2:
        raise ValueError(f"views={views} must be at least 2 for fine_tune_contrastive (two different views of each "
                         f"photo are compared); pass views=2 or more")
    return _run("contrastive", images, None, backbone, name, trainable_blocks, views, epochs, batch_size,
                learning_rate, validation_fraction, patience, max_steps, random_state, progress, verbose,
                on_unreadable, overwrite, temperature=temperature)
