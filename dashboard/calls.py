"""Cached calls into ``kit`` that the pages share: embeddings per folder and backbone (kept in memory for every
session of the server, read from the kit's disk cache underneath), clusterings, scores, projections, K estimates,
thumbnails and top labels. Results that persist on disk are keyed by :func:`fingerprint`, which the kit computes.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pandas as pd
import streamlit as st

import kit
import kit.datasets

import settings


@st.cache_data(show_spinner=False)
def demo_path() -> str:
    return str(kit.datasets.sample_folder())


def folder_signature(folder: str) -> str:
    """A digest of every file's relative path, size and modification time under ``folder``: it changes when
    photos are added, removed or edited, so cached results of the folder are recomputed (a grown folder's new
    photos are seen on the next rerun)."""
    import os

    h = hashlib.blake2b(digest_size=12)
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs.sort()
        for name in sorted(files):
            try:
                st_ = os.stat(os.path.join(root, name))
            except OSError:
                continue
            h.update(f"{os.path.relpath(os.path.join(root, name), folder)}|{st_.st_size}|{st_.st_mtime_ns}\n".encode())
    return h.hexdigest()


@st.cache_data(show_spinner=False, max_entries=8)
def _load_images(folder: str, signature: str) -> kit.ImageSet:
    return kit.load_folder(folder)


def load_images(folder: str) -> kit.ImageSet:
    """The folder's images; when its files changed since the last call, the embeddings and fingerprints kept in
    memory for it are dropped (the kit's disk cache still serves every photo seen before)."""
    signature = folder_signature(folder)
    memo = _memo()
    if memo.get(("signature", folder), signature) != signature:
        for key in [k for k in memo if (k[0] == folder) or (k[0] == "fingerprint" and k[1] == folder)]:
            del memo[key]
    memo[("signature", folder)] = signature
    return _load_images(folder, signature)


@st.cache_data(show_spinner=False)
def backbone_table() -> pd.DataFrame:
    return kit.backbones.available()


@st.cache_resource(show_spinner=False)
def _memo() -> dict:
    """Embeddings per (folder, backbone), shared by all sessions of this server (arrays stay in memory)."""
    return {}


def _embed(folder: str, backbone: str, progress=None) -> kit.Embeddings:
    load_images(folder)  # drops what is kept for the folder when its files changed
    memo = _memo()
    key = (folder, backbone)
    if key not in memo:
        memo[key] = kit.embed(load_images(folder), backbone=backbone, progress=progress)
    return memo[key]


def embeddings(folder: str, backbone: str, where=None) -> kit.Embeddings:
    """Embeddings of the folder, saying what happens while they are computed (loading the model, then a
    progress bar). ``where``: the container to report in (a column of the Backbones page). The kit's disk cache
    is underneath: a new server process re-reads them from disk instead of re-embedding."""
    load_images(folder)
    if (folder, backbone) in _memo():
        return _memo()[(folder, backbone)]
    slot = (where or st).empty()
    slot.info(f"Reading the embeddings of **{backbone}** (from the disk cache when they were computed before)...",
              icon=":material/hourglass_top:")

    def progress(done, total, stage):
        if stage == "loading model":
            forecast = kit.costs.estimate("embed", backbone, total - done)
            eta = (f" Then {total - done} photos to embed: {forecast.text}." if forecast is not None else
                   f" Then {total - done} photos to embed.")
            slot.info(f"Loading the **{backbone}** network (built once per server, takes a few seconds)...{eta}",
                      icon=":material/hourglass_top:")
        else:
            slot.progress(done / max(total, 1), text=f"Embedding with {backbone}: {done}/{total} photos")

    try:
        emb = _embed(folder, backbone, progress)
    except (kit.backbones.BackboneUnavailableError, ImportError) as exc:  # e.g. a preset not downloaded, offline
        slot.error(f"**{backbone}** cannot be used here: {exc}", icon=":material/cloud_off:")
        st.stop()
    slot.empty()
    return emb


def text_search(folder: str, backbone: str, query: str, k: int = 24) -> pd.DataFrame:
    """The photos of the folder that best match ``query`` in words (CLIP/SigLIP backbones): rank, row, path,
    score."""
    return kit.search.by_text(embeddings(folder, backbone), query, k=k)


@st.cache_data(show_spinner=False, max_entries=16)
def _text_names(fp: str, labels_bytes: bytes, backbone: str, _emb, _labels) -> pd.DataFrame:
    return kit.inspect.text_cluster_names(_emb, _labels, backbone=backbone)


def text_names(folder: str, backbone: str, labels) -> pd.DataFrame:
    """Each cluster named by the ImageNet class names closest to its mean vector in the backbone's text space."""
    emb = embeddings(folder, backbone)
    labels = np.asarray(labels)
    return _text_names(emb.fingerprint(), labels.tobytes(), backbone, emb, labels)


# The packages whose code computes what is kept here (clusterings, scores, K, outliers): part of the key of every
# result, with the embeddings' own fingerprint, so a changed kit or an upgraded library never serves old results.
RESULT_PACKAGES = ("cluster", "metrics", "k", "curate", "project")


def fingerprint(folder: str, backbone: str) -> str:
    """The key under which clusterings and scores persist on disk: the embeddings' fingerprint (vectors, paths,
    labels, backbone) and the kit's digest of the code and libraries behind the results (``kit.code_digest``)."""
    memo = _memo()
    key = ("fingerprint", folder, backbone)
    if key not in memo:
        memo[key] = f"{_embed(folder, backbone).fingerprint()}-{kit.code_digest(*RESULT_PACKAGES)}"
    return memo[key]


# Labels and scores also persist on disk (~/.streamlit/cache), keyed by the embeddings' fingerprint: a new
# server process shows the first page without importing scikit-learn or re-clustering.
@st.cache_data(show_spinner="Clustering...", max_entries=64, persist="disk")
def _cluster_labels(fp: str, folder: str, backbone: str, method: str, params_json: str) -> np.ndarray:
    if method in settings.AUTOMATIC:
        return _auto(fp, folder, backbone, method, params_json).labels
    emb = _embed(folder, backbone)
    return kit.cluster.make(method, random_state=0, **json.loads(params_json)).fit(emb.vectors).labels_


@st.cache_data(show_spinner="Choosing K without labels and clustering (stability on two halves, held-out "
                            "silhouette)...", max_entries=16, persist="disk")
def _auto(fp: str, folder: str, backbone: str, method: str, params_json: str):
    emb = _embed(folder, backbone)
    if method == settings.RECOMMENDED:  # the kit's recommended pipeline, its rows matched to this backbone's
        result = kit.cluster_photos(load_images(folder), random_state=0)
        by_path = dict(zip(result.paths, result.labels))
        return dataclasses.replace(result, labels=np.asarray([by_path.get(p, -1) for p in emb.paths]),
                                   paths=list(emb.paths))
    # named by the backbone, so the reason reads "leiden on efficientnet_lite0 with K=7"
    return kit.cluster.make("auto", random_state=0, **json.loads(params_json)).fit({backbone: emb.vectors}).result_


def auto_result(folder: str, backbone: str, method: str, params_json: str):
    """The ``kit.cluster.AutoResult`` behind an automatic clustering (the recommended one, or Automatic on this
    backbone): labels, method, K, candidates table and the reason in words. The recommended pipeline embeds the
    photos with its backbones first, each with its own progress bar and forecast (:func:`embeddings`)."""
    fp = fingerprint(folder, backbone)
    if method == settings.RECOMMENDED and ("clustered", fp, method, params_json) not in _memo():
        for name in kit.RECOMMENDED_BACKBONES:
            embeddings(folder, name)
    result = _auto(fp, folder, backbone, method, params_json)
    _memo()[("clustered", fp, method, params_json)] = True
    return result


def cluster_labels(folder: str, backbone: str, method: str, params_json: str) -> np.ndarray:
    fp = fingerprint(folder, backbone)
    if method in settings.AUTOMATIC:
        return auto_result(folder, backbone, method, params_json).labels
    labels = _cluster_labels(fp, folder, backbone, method, params_json)
    _memo()[("clustered", fp, method, params_json)] = True
    return labels


def is_clustered(folder: str, backbone: str, method: str, params_json: str) -> bool:
    """Whether this server process already has the clustering (else it may take a while: draw what exists)."""
    return ("clustered", fingerprint(folder, backbone), method, params_json) in _memo()


@st.cache_data(show_spinner=False, max_entries=32)
def _projection(fp: str, folder: str, backbone: str, method: str) -> np.ndarray:
    return kit.project.project(_embed(folder, backbone).vectors, method=method, random_state=0).coords


def projection(folder: str, backbone: str, method: str, where=None) -> np.ndarray:
    name = {"tsne": "t-SNE", "umap": "UMAP", "pca": "PCA"}.get(method, method)
    forecast = kit.costs.estimate("project", method, len(_embed(folder, backbone).paths))
    eta = f" ({forecast.text} unless it was computed before)" if forecast is not None else ""
    with (where or st).spinner(f"Projecting the {backbone} embeddings with {name}{eta}..."):
        return _projection(fingerprint(folder, backbone), folder, backbone, method)


@st.cache_data(show_spinner="Scoring...", max_entries=64, persist="disk")
def _scores(fp: str, folder: str, backbone: str, method: str, params_json: str) -> dict:
    emb = _embed(folder, backbone)
    return kit.metrics.score(emb.labels, cluster_labels(folder, backbone, method, params_json), X=emb.vectors)


def scores(folder: str, backbone: str, method: str, params_json: str) -> dict:
    return _scores(fingerprint(folder, backbone), folder, backbone, method, params_json)


@st.cache_data(show_spinner="Scoring...", max_entries=64)
def _label_scores(fp: str, folder: str, backbone: str, labels_bytes: bytes) -> dict:
    emb = _embed(folder, backbone)
    return kit.metrics.score(emb.labels, np.frombuffer(labels_bytes, dtype=np.int64), X=emb.vectors)


def label_scores(folder: str, backbone: str, labels) -> dict:
    """``kit.metrics.score`` of any labels of the folder's photos (hand-edited ones), cached by their bytes."""
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    return _label_scores(fingerprint(folder, backbone), folder, backbone, labels.tobytes())


@st.cache_data(show_spinner=False, max_entries=64, persist="disk")
def _undefined_reason(fp: str, folder: str, backbone: str, method: str, params_json: str) -> str | None:
    emb = _embed(folder, backbone)
    if emb.labels is None:
        return None
    return kit.metrics.external_undefined(emb.labels, cluster_labels(folder, backbone, method, params_json))


def undefined_reason(folder: str, backbone: str, method: str, params_json: str) -> str | None:
    """Why the external scores (NMI, ARI, ...) mean nothing for this clustering, or None when they do (kept on
    disk like the scores, so a new server process need not import scikit-learn to know)."""
    return _undefined_reason(fingerprint(folder, backbone), folder, backbone, method, params_json)


@st.cache_data(show_spinner=False, max_entries=8)
def _k_result(fp: str, folder: str, backbone: str):
    # the estimate the Automatic clustering bases its K on: one answer to "how many groups" across pages
    return kit.cluster.estimate_k(_embed(folder, backbone).vectors, random_state=0)


def k_result(folder: str, backbone: str):
    """``kit.k.estimate``'s ``KResult`` (consensus, verdict, table of methods, their curves)."""
    forecast = kit.costs.estimate("k_estimate", "bootstrap2", len(_embed(folder, backbone).paths))
    eta = f" ({forecast.text} unless it was done before)" if forecast is not None else ""
    with st.spinner(f"Estimating K with every method, the gap statistic among them{eta}..."):
        return _k_result(fingerprint(folder, backbone), folder, backbone)


@st.cache_data(show_spinner="Classifying every photo for the word-vector estimate...", max_entries=8)
def _word_vector_k(fp: str, folder: str, backbone: str):
    return kit.k.word_vectors(load_images(folder), backbone=backbone)


def word_vector_k(folder: str, backbone: str):
    return _word_vector_k(fingerprint(folder, backbone), folder, backbone)


@st.cache_data(show_spinner=False, max_entries=4096)
def thumbnail(path: str, size: int = 128) -> np.ndarray:
    return kit.read_image(path, size=size, resize="pad")


def _thumbnail_uri(path: str) -> str:
    try:
        return kit.plot.image_uri(path)
    except ValueError:  # moved or damaged since it was embedded: a grey square instead of a broken chart
        return kit.plot.image_uri(np.full((80, 80, 3), 200, np.uint8))


@st.cache_data(show_spinner="Making thumbnails...", max_entries=16)
def thumbnail_uris(paths: tuple) -> list:
    return [_thumbnail_uri(p) for p in paths]


@st.cache_data(show_spinner="Classifying...", max_entries=256)
def top5(path: str, backbone: str) -> pd.DataFrame:
    return kit.inspect.top_labels([path], backbone=backbone, k=5).table


@st.cache_data(show_spinner="Classifying the photos to name the clusters...", max_entries=8)
def _top1_table(fp: str, folder: str, backbone: str) -> pd.DataFrame:
    return kit.inspect.top_labels(_embed(folder, backbone).paths, backbone=backbone, k=1).table


def top1_table(folder: str, backbone: str) -> pd.DataFrame:
    return _top1_table(fingerprint(folder, backbone), folder, backbone)


@st.cache_data(show_spinner=False, max_entries=16)
def _outliers(fp: str, folder: str, backbone: str, labels_bytes: bytes, z: float) -> pd.DataFrame:
    labels = np.frombuffer(labels_bytes, dtype=np.int64)
    return kit.curate.outlier_scores(_embed(folder, backbone).vectors, labels, z=z)


def outlier_table(folder: str, result, z: float = 3.0) -> pd.DataFrame:
    """``kit.curate.outlier_scores`` of the current result's photos and labels (hand edits included)."""
    labels = np.ascontiguousarray(result.labels, dtype=np.int64)
    return _outliers(fingerprint(folder, result.backbone), folder, result.backbone, labels.tobytes(), float(z))


# ------------------------------------------------------------------ embedding stores (Store page)
def store_backbones(path: str) -> pd.DataFrame | None:
    """The namespaces of the embedding store at ``path`` (``EmbeddingStore.backbones``), or None when ``path``
    is not a store the kit made."""
    from kit.scale import EmbeddingStore

    try:
        store = EmbeddingStore(path)  # a folder or an fsspec URL
    except ValueError:  # a URL whose protocol has no package installed
        return None
    return store.backbones() if store.is_store() else None


def _store_signature(path: str) -> str:
    """A digest of the store's partition files (names, rows, bytes): it changes when the store grows."""
    from kit.scale import EmbeddingStore

    parts = EmbeddingStore(path).partitions()
    return hashlib.blake2b(parts.to_csv(index=False).encode(), digest_size=12).hexdigest()


@st.cache_data(show_spinner=False, max_entries=4)
def _store_view(path: str, signature: str, backbone: str, method: str, sample_size: int, k: int) -> pd.DataFrame:
    from kit import scale as scale_cluster
    from kit.scale import EmbeddingStore

    placed = scale_cluster.project_store(path, method, sample_size=sample_size, backbone=backbone, random_state=0)
    km = scale_cluster.kmeans(path, k, sample_size=max(sample_size, k), backbone=backbone, write=False,
                              random_state=0)
    labels = EmbeddingStore(path).table(backbone, columns=["label"])["label"]
    clusters = km.read_labels()
    return placed.table.assign(cluster=clusters["cluster"].to_numpy(), distance=clusters["distance"].to_numpy(),
                               label=labels.to_numpy())


def store_view(path: str, backbone: str, method: str, sample_size: int, k: int) -> pd.DataFrame:
    """One row per photo of the store (path, hash, x, y, cluster, distance to its centre, label): the map and
    k-means fitted on a sample of ``sample_size`` rows, every row placed partition by partition (kit.scale.kmeans).
    """
    with st.spinner(f"Fitting the map and k-means (K = {k}) on a sample of {sample_size:,} rows, then placing every "
                    "row..."):
        return _store_view(path, _store_signature(path), backbone, method, sample_size, k)
