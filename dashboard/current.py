"""The clustering every page shows, and the result pages read: the method and its parameters from the settings
(K resolved and clamped to the photos), the embeddings of the primary backbone, the labels (hand edits
included). Pages call :func:`current_result`; none builds a clustering of its own."""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import streamlit as st

import kit

import calls
import edits
import settings


def k_range(images: kit.ImageSet) -> tuple[int, int]:
    """Smallest and largest K the slider offers for these images (wide enough for every true label)."""
    n = len(images)
    n_labels = len(set(images.labels)) if images.labels else 0
    return 2, max(2, min(n - 1, max(40, 2 * n_labels)))


def default_k(images: kit.ImageSet) -> int:
    """The number of true labels (8 without labels), at most half the photos: a default K never makes every photo
    a cluster of its own."""
    lo, hi = k_range(images)
    return int(np.clip(len(set(images.labels)) if images.labels else 8, lo, max(lo, min(hi, len(images) // 2))))


def current_k(images: kit.ImageSet) -> int:
    k = settings.get("k")
    lo, hi = k_range(images)
    return default_k(images) if k is None else int(np.clip(k, lo, hi))


@dataclass(frozen=True)
class Clustering:
    """The clustering every page shows: method, its parameters (K resolved), and those as JSON (cache key)."""
    method: str
    params: dict
    params_json: str

    @property
    def text(self) -> str:
        return f"{settings.METHODS.get(self.method, self.method)}, {settings.params_text(self.params)}".rstrip(", ")


def clustering(images: kit.ImageSet) -> Clustering:
    """The one clustering of the session, built from the settings and the method's registry entry (clamped to
    these images)."""
    s = settings.settings()
    method = s["method"]
    if method in settings.AUTOMATIC and len(images) < settings.AUTO_MIN_ROWS:
        method = "kmeans"  # too few photos to compare methods on halves: k-means at the default K (the page says so)
    entry = settings.entry(method)
    params = entry.params(s, k=current_k(images) if entry.needs_k else None, n_rows=len(images))
    return Clustering(method, params, json.dumps(params, sort_keys=True))


def images_or_explain(folder, need: int = settings.MIN_PHOTOS, why: str = "") -> kit.ImageSet | None:
    """The images of the folder when an analysis can run on them (at least ``need`` readable photos; ``why``
    says what needs them); otherwise say why on the page and return None."""
    if folder is None:
        st.info("Choose images in the sidebar: the built-in photos, a folder, or a zip.")
        return None
    images = calls.load_images(folder)
    if len(images) < need:
        st.warning(f"This page needs at least {need} readable photos{why}; {found_text(images)} "
                   "Choose another folder in the sidebar, or see the Data page for what was found.",
                   icon=":material/photo_library:")
        return None
    return images


def found_text(images: kit.ImageSet) -> str:
    """One sentence on what a folder held: readable photos, unreadable files, other files."""
    parts = [f"{len(images)} readable photo{'s' if len(images) != 1 else ''}"]
    if len(images.unreadable):
        parts.append(f"{len(images.unreadable)} unreadable image file{'s' if len(images.unreadable) != 1 else ''}")
    if images.ignored:
        parts.append(f"{len(images.ignored)} other file{'s' if len(images.ignored) != 1 else ''} ignored "
                     "(not an image extension)")
    return f"`{images.root}` holds " + ", ".join(parts) + "."


@dataclass
class Result:
    folder: str
    images: kit.ImageSet
    backbone: str
    clustering: Clustering
    embeddings: kit.Embeddings
    labels: np.ndarray
    edited: bool = False  # hand edits (Curate page) replace the algorithm's labels
    n_edits: int = 0

    @property
    def scores(self) -> dict:
        """The scores of the labels shown (hand edits included): what every page and every export reports."""
        if self.edited:
            return calls.label_scores(self.folder, self.backbone, self.labels)
        return calls.scores(self.folder, self.backbone, self.clustering.method, self.clustering.params_json)

    @property
    def undefined(self) -> str | None:
        """Why the external scores mean nothing for the labels shown, or None."""
        if not self.edited:
            return calls.undefined_reason(self.folder, self.backbone, self.clustering.method,
                                          self.clustering.params_json)
        if self.embeddings.labels is None:
            return None
        return kit.metrics.external_undefined(self.embeddings.labels, self.labels)

    @property
    def algorithm_scores(self) -> dict:
        """The scores of the algorithm's own labels, before any hand edit."""
        return calls.scores(self.folder, self.backbone, self.clustering.method, self.clustering.params_json)


def current_result(folder) -> Result | None:
    """The images, primary backbone, clustering, embeddings and labels every result page shows (None, with a
    message on the page, when there is nothing to cluster)."""
    images = images_or_explain(folder)
    if images is None:
        return None
    bb = settings.primary_backbone()
    emb = calls.embeddings(folder, bb)
    if len(emb.vectors) < settings.MIN_PHOTOS:
        st.warning(f"Only {len(emb.vectors)} of the {len(images)} photos could be embedded; at least "
                   f"{settings.MIN_PHOTOS} are needed. The Data page lists the files that could not be read.")
        return None
    c = clustering(images)
    result = Result(folder, images, bb, c, emb, calls.cluster_labels(folder, bb, c.method, c.params_json))
    edited = edits.edits(result)
    if edited is not None and len(edited.labels) == len(result.labels):
        result.labels = edited.labels
        result.edited = True
        result.n_edits = len(edited.history)
    return result
