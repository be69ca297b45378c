"""Pairwise and BCubed scores of a face clustering."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import metrics
from .._utils.validation import StrOptions, validate_params
from ..io import ImageSet

NO_FACE_POLICIES = ("exclude", "singletons")


def score(emb, labels_pred, truth=None, no_face: str = "exclude", noise: str = "singletons") -> dict:
    """Pairwise and BCubed precision/recall/F of a face clustering, as in the face-clustering papers.

    Parameters
    ----------
    emb : Embeddings of faces (rows = faces, ``emb.labels`` their people unless ``truth`` is given)
    labels_pred : one cluster label per face (-1: noise)
    truth : ImageSet or dict {path: person}, optional
        Labels of every photo. Needed for ``no_face="singletons"`` (the photos without a face have no row).
    no_face : {"exclude", "singletons"}
        Photos without a face row (no face found, unreadable) are left out, or scored as one cluster
        each (their person's other photos then count as missed).
    noise : {"singletons", "cluster"}
        Predicted -1: each its own cluster (default: an unclustered face is a person of its own), or one
        cluster together (``kit.metrics``' default).

    Returns
    -------
    dict: ``pairwise_precision, pairwise_recall, pairwise_f, bcubed_precision, bcubed_recall, bcubed_f,
    n_clusters, n_faces, n_no_face`` (photos without a face scored as singletons; 0 when excluded).
    Computed with ``kit.metrics``.
    """
    validate_params({"no_face": [StrOptions(set(NO_FACE_POLICIES))],
                     "noise": [StrOptions(set(metrics.NOISE_POLICIES))]},
                    {"no_face": no_face, "noise": noise}, "kit.faces.score")
    pred = np.asarray(labels_pred)
    if len(pred) != len(emb):
        raise ValueError(f"labels_pred has {len(pred)} entries for {len(emb)} faces; pass one label per face")
    if isinstance(truth, ImageSet):
        if truth.labels is None:
            raise ValueError("truth is an unlabelled ImageSet; load it with labels ('folders' or a CSV)")
        truth = dict(zip(truth.paths, truth.labels))
    if truth is None:
        if emb.labels is None:
            raise ValueError("no true labels: the embeddings are unlabelled; pass truth= (an ImageSet or a dict "
                             "{path: person})")
        if no_face == "singletons" and len(emb.unreadable):
            raise ValueError("no_face='singletons' needs the people of the photos without a face; pass truth= "
                             "(the labelled ImageSet, or a dict {path: person})")
        true = list(emb.labels)
        missing = []
    else:
        if not isinstance(truth, dict):
            raise ValueError(f"truth must be a labelled ImageSet or a dict {{path: person}}, "
                             f"got {type(truth).__name__}")
        lost = [p for p in emb.paths if p not in truth]
        if lost:
            raise ValueError(f"truth has no label for {len(lost)} face photos (e.g. {lost[0]!r}); it must cover "
                             f"every photo")
        true = [truth[p] for p in emb.paths]
        with_face = set(emb.paths)
        missing = [p for p in truth if p not in with_face] if no_face == "singletons" else []
    codes = pd.factorize(pred)[0].astype(np.int64)
    is_noise = pred == -1 if pred.dtype.kind in "iuf" else np.zeros(len(pred), bool)
    if noise == "singletons" and is_noise.any():
        codes[is_noise] = codes.max() + 1 + np.arange(int(is_noise.sum()))
    start = int(codes.max()) + 1 if len(codes) else 0
    codes = np.concatenate([codes, start + np.arange(len(missing), dtype=np.int64)])
    true = np.asarray(list(map(str, true)) + [str(truth[p]) for p in missing])
    if len(true) == 0:
        raise ValueError("nothing to score: no faces and no photos")
    pp, pr, pf = metrics.pairwise_precision_recall_f(true, codes)
    bp, br, bf = metrics.bcubed_precision_recall_f(true, codes)
    return {"pairwise_precision": pp, "pairwise_recall": pr, "pairwise_f": pf, "bcubed_precision": bp,
            "bcubed_recall": br, "bcubed_f": bf, "n_clusters": int(len(set(pred.tolist()) - {-1})),
            "n_faces": int(len(pred)), "n_no_face": int(len(missing))}
