"""What the dashboard pages share: the sidebar (data source, backbones, clustering), and cached calls into
``kit``. Pages draw widgets and call these; every computation is a ``kit`` function."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

import kit
import kit.datasets
from kit._methods import NEEDS_K  # without importing kit.cluster (scikit-learn) on the first page

SOURCES = ("Sample photos (built in)", "A folder on this machine", "Upload a zip")
DEFAULT_CLUSTER = {"method": "kmeans", "params": {"n_clusters": None}}
MAX_UPLOAD_MB = 200


# ------------------------------------------------------------------ cached kit calls
@st.cache_data(show_spinner=False)
def sample_path() -> str:
    return str(kit.datasets.sample_folder())


@st.cache_data(show_spinner=False, max_entries=8)
def load_images(folder: str) -> kit.ImageSet:
    return kit.load_folder(folder)


@st.cache_data(show_spinner=False)
def backbone_table() -> pd.DataFrame:
    return kit.backbones.available()


@st.cache_resource(show_spinner=False)
def _memo() -> dict:
    """Embeddings per (folder, backbone), shared by all sessions of this server (arrays stay in memory)."""
    return {}


def _embed(folder: str, backbone: str, progress=None) -> kit.Embeddings:
    memo = _memo()
    key = (folder, backbone)
    if key not in memo:
        memo[key] = kit.embed(load_images(folder), backbone=backbone, progress=progress)
    return memo[key]


def embeddings(folder: str, backbone: str) -> kit.Embeddings:
    """Embeddings of the folder, with a progress bar while computing (the kit's disk cache underneath:
    a new server process re-reads them from disk instead of re-embedding)."""
    slot = st.empty()

    def progress(done, total, stage):
        slot.progress(done / max(total, 1), text=f"Embedding with {backbone}: {done}/{total} images")

    emb = _embed(folder, backbone, progress)
    slot.empty()
    return emb


# What clusterings and scores depend on besides the embeddings: the kit code that computes them and the libraries
# under it. Part of the disk-cache key, so a changed kit or an upgraded scikit-learn never serves old results.
_RESULT_CODE = ("cluster.py", "_knn.py", "_methods.py", "metrics.py")
_RESULT_LIBS = ("numpy", "scipy", "scikit-learn", "faiss-cpu", "numba", "igraph", "leidenalg", "infomap")


@st.cache_resource(show_spinner=False)
def _code_digest() -> str:
    from importlib import metadata

    h = hashlib.blake2b(kit.__version__.encode(), digest_size=16)
    root = Path(kit.__file__).parent
    for name in _RESULT_CODE:
        h.update((root / name).read_bytes())
    for lib in _RESULT_LIBS:
        try:
            h.update(f"{lib}={metadata.version(lib)}".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{lib}=-".encode())
    return h.hexdigest()


def fingerprint(folder: str, backbone: str) -> str:
    """A digest of the embeddings (vectors, paths, labels) and of the code behind results: the key under which
    clusterings and scores persist on disk."""
    memo = _memo()
    key = ("fingerprint", folder, backbone)
    if key not in memo:
        emb = _embed(folder, backbone)
        h = hashlib.blake2b(emb.vectors.tobytes(), digest_size=16)
        h.update("\n".join(emb.paths).encode())
        h.update(f"{emb.labels}|{_code_digest()}".encode())
        memo[key] = h.hexdigest()
    return memo[key]


# Labels and scores also persist on disk (~/.streamlit/cache), keyed by the embeddings' fingerprint: a new
# server process shows the first page without importing scikit-learn or re-clustering.
@st.cache_data(show_spinner="Clustering...", max_entries=64, persist="disk")
def _cluster_labels(fp: str, folder: str, backbone: str, method: str, params_json: str) -> np.ndarray:
    emb = _embed(folder, backbone)
    params = json.loads(params_json)
    if params.get("n_clusters") is None:
        params.pop("n_clusters", None)
    return kit.cluster.make(method, random_state=0, **params).fit(emb.vectors).labels_


def cluster_labels(folder: str, backbone: str, method: str, params_json: str) -> np.ndarray:
    return _cluster_labels(fingerprint(folder, backbone), folder, backbone, method, params_json)


@st.cache_data(show_spinner="Projecting...", max_entries=32)
def projection(folder: str, backbone: str, method: str) -> np.ndarray:
    return kit.project.project(_embed(folder, backbone).vectors, method=method, random_state=0).coords


@st.cache_data(show_spinner="Scoring...", max_entries=64, persist="disk")
def _scores(fp: str, folder: str, backbone: str, method: str, params_json: str) -> dict:
    emb = _embed(folder, backbone)
    return kit.metrics.score(emb.labels, cluster_labels(folder, backbone, method, params_json), X=emb.vectors)


def scores(folder: str, backbone: str, method: str, params_json: str) -> dict:
    return _scores(fingerprint(folder, backbone), folder, backbone, method, params_json)


@st.cache_data(show_spinner="Estimating K with every method...", max_entries=8)
def k_result(folder: str, backbone: str):
    """``kit.k.estimate``'s ``KResult`` (consensus, verdict, table of methods, their curves)."""
    return kit.k.estimate(_embed(folder, backbone).vectors, n_bootstrap=1)


@st.cache_data(show_spinner="Classifying every photo for the word-vector estimate...", max_entries=8)
def word_vector_k(folder: str, backbone: str):
    return kit.k.word_vectors(load_images(folder), backbone=backbone)


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


# ------------------------------------------------------------------ sidebar
def _init():
    defaults = {"source": SOURCES[0], "folder": "", "backbones": ["efficientnet_lite0"],
                "cluster": dict(DEFAULT_CLUSTER)}
    for key, value in defaults.items():
        if key not in st.session_state:
            st.session_state[key] = value


def _upload_folder(data: bytes) -> str:
    digest = hashlib.blake2b(data, digest_size=10).hexdigest()
    dest = kit.kit_home() / "uploads" / digest
    if not dest.exists():
        report = kit.datasets.extract_zip(data, dest, max_bytes=4 * MAX_UPLOAD_MB * 1_000_000)
        if len(report.skipped):
            st.sidebar.warning(f"{len(report.skipped)} files in the zip were skipped (not images).")
    return str(dest)


def folder() -> str | None:
    """The image folder chosen in the sidebar (None when none is chosen yet)."""
    return st.session_state.get("folder_in_use")


def sidebar() -> str | None:
    """Draw the shared sidebar (from the entry file); remember and return the image folder in use."""
    _init()
    sb = st.sidebar
    sb.header("Data")
    source = sb.radio("Images", SOURCES, key="source")
    folder = None
    if source == SOURCES[0]:
        with st.spinner("Preparing the sample photos (first run only)..."):
            folder = sample_path()
        sb.caption("Near-duplicate groups made from scikit-image's photos (see the README).")
    elif source == SOURCES[1]:
        typed = sb.text_input("Folder path", key="folder", placeholder="/path/to/photos")
        if typed:
            if Path(typed).expanduser().is_dir():
                folder = str(Path(typed).expanduser().resolve())
            else:
                sb.error(f"{typed!r} is not a folder on this machine.")
    else:
        up = sb.file_uploader(f"Zip of images (up to {MAX_UPLOAD_MB} MB)", type=["zip"], key="upload")
        if up is not None:
            if up.size > MAX_UPLOAD_MB * 1_000_000:
                sb.error(f"The zip is {up.size / 1e6:.0f} MB; the limit is {MAX_UPLOAD_MB} MB.")
            else:
                try:
                    folder = _upload_folder(up.getvalue())
                except ValueError as exc:
                    sb.error(f"This zip was refused: {exc}")
    sb.header("Backbones")
    table = backbone_table()
    offline = table.loc[table["offline"], "name"].tolist()
    sb.multiselect("Compare these backbones", offline, key="backbones",
                   help="Backbones usable right now. TF-Hub ones appear once they are in the TF-Hub cache.")
    if not st.session_state["backbones"]:
        sb.warning("Choose at least one backbone.")
    st.session_state["folder_in_use"] = folder
    return folder


def sidebar_footer() -> None:
    """Drawn after the page ran, so it shows the clustering the page may just have changed."""
    c = st.session_state["cluster"]
    st.sidebar.caption(f"Clustering: **{c['method']}** {params_text(c['params'])} (change it on the Cluster page)")


def params_text(params: dict) -> str:
    shown = {k: v for k, v in params.items() if v is not None}
    return ", ".join(f"{k}={v}" for k, v in shown.items())


def primary_backbone() -> str:
    chosen = st.session_state.get("backbones") or ["efficientnet_lite0"]
    return chosen[0]


def cluster_choice(images: kit.ImageSet) -> tuple[str, str]:
    """The current method and its parameters as JSON; K defaults to the number of true labels (or 8)."""
    c = st.session_state["cluster"]
    params = dict(c["params"])
    if "n_clusters" in params and params["n_clusters"] is None and c["method"] in NEEDS_K:
        params["n_clusters"] = len(set(images.labels)) if images.labels else 8
    return c["method"], json.dumps(params, sort_keys=True)


def current_result(folder: str):
    """The images, primary backbone, clustering choice, embeddings and labels every result page shows."""
    images = load_images(folder)
    bb = primary_backbone()
    method, params_json = cluster_choice(images)
    emb = embeddings(folder, bb)
    labels = cluster_labels(folder, bb, method, params_json)
    return images, bb, method, params_json, emb, labels


def need_folder(folder) -> bool:
    if folder is None:
        st.info("Choose images in the sidebar: the built-in sample photos, a folder, or a zip.")
        return False
    return True
