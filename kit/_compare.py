"""Compare backbones and clustering methods on the same images in one call (one score table, a row per pair)."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from . import cluster as _cluster
from . import metrics as _metrics
from .embedding import embed as _embed
from .io import ImageSet, load_folder
from .progress import report


def choose_k(X, random_state=0) -> int:
    """The kit's automatic K: the consensus of ``kit.k.estimate`` (fast methods, one bootstrap)."""
    from .k import estimate

    result = estimate(X, n_bootstrap=1, random_state=random_state)
    if result.k is None:
        raise ValueError("k='auto' found no clear K in this data (every method answered at the range ends); "
                         "pass k as an integer")
    return int(result.k)


def compare(images, backbones=("efficientnet_lite0",), methods=("kmeans",), k="auto", random_state=0,
            cache_dir=None, progress=None, method_params=None) -> pd.DataFrame:
    """Embed ``images`` with each backbone, cluster with each method, and score every result.

    Parameters
    ----------
    images : ImageSet or folder path (labels from sub-folders give external scores)
    backbones : names or handles (see ``kit.backbones.available()``)
        KerasHub presets (``dinov2_small``, ``clip_vit_base_patch32``...) sit beside the CNNs; they are downloaded
        on first use (``offline`` in that table), and fail within seconds offline when they are not there yet.
    methods : names from ``kit.cluster.METHODS``
    k : int or "auto"
        Number of clusters for the methods that need one; "auto" takes ``choose_k`` per backbone.
    method_params : dict of {method: {param: value}}, optional

    Returns
    -------
    DataFrame, one row per (backbone, method): ``k`` (given or estimated), ``n_clusters`` found, every score
    of ``kit.metrics.score``, ``embed_seconds`` and ``cluster_seconds``.
    """
    if isinstance(backbones, str):
        backbones = [backbones]
    if isinstance(methods, str):
        methods = [methods]
    unknown = [m for m in methods if m not in _cluster.METHODS]
    if unknown:
        raise ValueError(f"methods={unknown} are not in {sorted(_cluster.METHODS)}")
    if not (k == "auto" or (isinstance(k, (int, np.integer)) and k >= 2)):
        raise ValueError(f"k={k!r} must be an integer >= 2 or 'auto'")
    imageset = images if isinstance(images, ImageSet) else load_folder(images)
    rows = []
    total = len(backbones) * (1 + len(methods))
    step = 0
    for bb in backbones:
        t0 = time.perf_counter()
        emb = _embed(imageset, backbone=bb, cache_dir=cache_dir)
        embed_s = time.perf_counter() - t0
        step += 1
        report(progress, step, total, "compare")
        X = emb.vectors
        k_used = choose_k(X, random_state) if k == "auto" else int(k)
        for m in methods:
            params = {"random_state": random_state, **((method_params or {}).get(m, {}))}
            if m in _cluster.NEEDS_K:
                params.setdefault("n_clusters", k_used)
            t1 = time.perf_counter()
            labels = _cluster.make(m, **params).fit(X).labels_
            cluster_s = time.perf_counter() - t1
            scores = _metrics.score(emb.labels, labels, X=X, random_state=random_state)
            rows.append({"backbone": emb.backbone, "method": m, "k": k_used if m in _cluster.NEEDS_K else None,
                         **scores, "embed_seconds": embed_s, "cluster_seconds": cluster_s})
            step += 1
            report(progress, step, total, "compare")
    return pd.DataFrame(rows)
