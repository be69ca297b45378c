"""The kit's one recommended pipeline from photos to clusters, without labels: ``kit.cluster_photos``.

It embeds the photos with the recommended offline backbones (``RECOMMENDED_BACKBONES``), centres and concatenates
them, finds K from internal criteria only and clusters with Leiden (:func:`kit.cluster.auto`). Each choice was
measured on four labelled sets of photos of different kinds (objects, clothes, scenes, faces) against k-means on
one backbone at the true K: ``bench/quality.py`` prints the table.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import pandas as pd

from . import costs
from .embedding import cost_key
from .embedding import embed as _embed
from .io import as_imageset, empty_unreadable
from .progress import report

#: The backbones ``cluster_photos`` embeds with (all offline, built in): three widths of the same network see the
#: photos at three resolutions (224, 240, 260 pixels); auto compares each alone and their concatenation.
RECOMMENDED_BACKBONES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
#: Test-time augmentation of the recommended embeddings (``kit.embed(tta=...)``): none. Averaging in the mirror
#: view ("flip") costs twice the embedding and, measured with auto over the three backbones (3 seeds), changed NMI
#: by +0.006 on scenes6, -0.008 on imagenette10, -0.010 on clothing10 and -0.063 on faces_5celeb.
RECOMMENDED_TTA = None
#: The method of ``cluster_photos``: Leiden on the k-nearest-neighbour graph, its resolution set to give the K
#: that ``kit.k.estimate`` found. Measured at a fixed K on the centred concatenation (bench/quality.py's sets), it
#: scored the best or near the best NMI of k-means, Ward, spectral and Leiden on every set, while auto's own choice
#: among them (by stability and held-out silhouette) often took a weaker one. SCAN is left out: several times
#: slower, and it lost to k-means on photos it was not tuned on.
RECOMMENDED_METHODS = ("leiden",)
#: The representation: the concatenation of the backbones, each centred on the photos' mean (``auto(center=True)``).
#: Choosing one backbone alone by stability (on the centred blocks) picked a weaker one on two seeds of three on
#: clothing10; centring made Leiden's kNN graph better on all four sets (fewer hubs).
RECOMMENDED_REPRESENTATION = "concat"
_COST_STEP = "cluster_photos"


def _short(backbone: str) -> str:
    return backbone.replace("efficientnet_", "")


def recommended_auto(blocks: dict, random_state=0, progress=None):
    """What ``cluster_photos`` runs on the embeddings (a dict backbone -> (N, D) array, rows in one order):
    :func:`kit.cluster.auto` on the centred concatenation with Leiden (on one block: that block, centred)."""
    from .cluster import auto

    return auto(blocks, methods=RECOMMENDED_METHODS, random_state=random_state, progress=progress, center=True,
                representation=RECOMMENDED_REPRESENTATION if len(blocks) > 1 else None)


def cluster_photos_forecast(n_photos: int, backbones=RECOMMENDED_BACKBONES, tta=RECOMMENDED_TTA):
    """Seconds ``cluster_photos`` should take on ``n_photos`` photos here, from the runs this machine recorded
    (``kit.costs``): embedding with every backbone (at most: photos already cached cost almost nothing) and
    choosing the clustering. None when one of the steps was never measured on this machine."""
    parts = [costs.estimate("embed", cost_key(b, tta), n_photos) for b in backbones]
    parts.append(costs.estimate(_COST_STEP, f"{len(backbones)}x{tta}", n_photos))
    if any(p is None for p in parts):
        return None
    return float(sum(p.seconds for p in parts))


def cluster_photos(images, random_state=0, progress=None, *, backbones=RECOMMENDED_BACKBONES,
                   tta=RECOMMENDED_TTA, cache_dir=None):
    """Cluster photos without labels with the kit's recommended pipeline.

    Embeds ``images`` with each of ``backbones`` (cached on disk like any ``kit.embed``), concatenates the
    embeddings, each centred on the photos' mean, estimates K there with ``kit.k.estimate`` (and says whether it
    is clear), and clusters with Leiden at that K (:func:`kit.cluster.auto` with ``center=True``,
    ``representation="concat"``, ``methods=("leiden",)``; its table scores the result's stability on random
    halves). Labels the photos may carry (sub-folders, a CSV) are never read: the result is the same with or
    without them.

    Parameters
    ----------
    images : folder path, ``kit.ImageSet`` or list of photo paths
    random_state : int
        Seeds the choice (the half splits) and every clustering: the same value gives the same clusters.
    progress : callable ``progress(done, total, stage)`` or None
        One bar for the whole run (``kit.progress.TqdmProgress()`` draws it): the first call's stage says how long
        the run should take when this machine has measured it before.
    backbones : names of ``kit.backbones.available()``, the embeddings compared (default: the recommended three)
    tta : {"flip", None}, test-time augmentation of the embeddings (``kit.embed``)
    cache_dir : folder of the embedding cache (default ``$KIT_HOME/embeddings``)

    Returns
    -------
    kit.cluster.AutoResult
        ``labels`` (one per row of ``paths``), ``k``, ``clear`` (False: no clear number of groups, the clusters are
        a partition of convenience), ``method``, ``representation``, ``table`` (every candidate scored),
        ``reason`` (the choice in words), ``paths`` and ``unreadable`` (photos that could not be embedded, with the
        reason).

    Examples
    --------
    >>> result = kit.cluster_photos("photos/", progress=kit.progress.TqdmProgress())  # doctest: +SKIP
    >>> result.k, result.clear, result.reason  # doctest: +SKIP
    """
    from .cluster import AUTO_MIN_ROWS

    if isinstance(backbones, str):
        backbones = (backbones,)
    backbones = tuple(backbones)
    if not backbones:
        raise ValueError("backbones=() is empty; give at least one name of kit.backbones.available(), or leave the "
                         "default (the recommended three)")
    if tta not in (None, "flip"):
        raise ValueError(f"tta={tta!r} must be 'flip' or None")
    imageset = as_imageset(images)
    imageset = dataclasses.replace(imageset, labels=None)  # label-free: the labels never reach the pipeline
    n = len(imageset.paths)
    steps = 20  # the clustering's share of the bar, in steps of auto's progress
    total = n * len(backbones) + steps
    seconds = cluster_photos_forecast(n, backbones, tta)
    report(progress, 0, total, f"clustering {n} photos: embedding with {len(backbones)} backbone"
                               f"{'s' if len(backbones) > 1 else ''}, then choosing method and K" +
           (f" (at most {seconds:.0f} s)" if seconds is not None else ""))

    vectors, unreadable, order = {}, [], None
    for i, backbone in enumerate(backbones):
        def sub(done, sub_total, stage, _i=i, _b=backbone):
            if stage != "loading model":
                report(progress, _i * n + min(done, n), total, f"embedding with {_b}")

        emb = _embed(imageset, backbone=backbone, tta=tta, cache_dir=cache_dir, progress=sub)
        vectors[_short(backbone)] = pd.DataFrame(emb.vectors, index=emb.paths)
        if len(emb.unreadable):
            unreadable.append(emb.unreadable)
        order = list(emb.paths) if order is None else [p for p in order if p in set(emb.paths)]
    table = pd.concat(unreadable, ignore_index=True).drop_duplicates("path") if unreadable else empty_unreadable()
    # a photo one backbone could not embed is left out of all (listed once in ``unreadable``)
    missing = sorted(set().union(*(set(v.index) for v in vectors.values())) - set(order))
    if missing:
        extra = pd.DataFrame({"path": missing, "reason": "not embedded by every backbone"})
        table = pd.concat([table, extra], ignore_index=True).drop_duplicates("path")
    blocks = {name: v.loc[order].to_numpy(np.float32) for name, v in vectors.items()}
    if len(order) < AUTO_MIN_ROWS:
        raise ValueError(f"cluster_photos needs at least {AUTO_MIN_ROWS} readable photos to choose a method and K "
                         f"without labels; {len(order)} of {n} could be embedded ({len(table)} unreadable): cluster "
                         f"a few photos by hand instead, e.g. kit.cluster.KMeans(k).fit(kit.embed(images).vectors)")
    base = n * len(backbones)

    def sub_auto(done, sub_total, stage):
        report(progress, base + int(steps * done / max(sub_total, 1)), total, stage)

    t0 = time.perf_counter()
    result = recommended_auto(blocks, random_state=random_state, progress=sub_auto)
    costs.record(_COST_STEP, f"{len(backbones)}x{tta}", len(order), time.perf_counter() - t0)
    report(progress, total, total, "done")
    return dataclasses.replace(result, paths=order, unreadable=table.reset_index(drop=True))
