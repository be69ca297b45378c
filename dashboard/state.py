"""What the dashboard pages share: the settings (data source, backbones, clustering) and cached calls into
``kit``. Pages draw widgets and call these; every computation is a ``kit`` function.

Settings live in one plain dict, ``st.session_state["settings"]``, the single source of truth. Streamlit forgets
the state of widgets that a page does not draw, so a widget never owns a setting: it is bound to one with
:func:`bind` (its value is restored from the setting before it is drawn, and written back by its callback).
The settings are mirrored in the URL's query parameters, so a reload keeps them and a view can be shared.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

import kit
import kit.datasets
from kit._methods import AUTO_MIN_ROWS, NEEDS_K  # without importing kit.cluster (scikit-learn) on the first page

SOURCES = {"clothing": "Clothing photos (built in, 500 photos)", "demo": "Quick demo (scikit-image photos)",
           "folder": "A folder on this machine", "upload": "Upload a zip"}
METHODS = {"auto": "Automatic (label-free)", "kmeans": "k-means", "agglomerative": "Agglomerative",
           "spectral": "Spectral", "hdbscan": "HDBSCAN", "dbscan": "DBSCAN", "chinese_whispers": "Chinese Whispers",
           "leiden": "Leiden", "infomap": "Infomap", "scan": "SCAN head"}
LINKAGES = ("ward", "average", "complete", "single")
REDUCE_TO = (2, 3, 5, 10, 20, 50)
DEFAULT_BACKBONE = "efficientnet_lite0"
MAX_UPLOAD_MB = 200
MIN_PHOTOS = 2

# Every setting, its default, and which clustering methods use it (None: not a clustering parameter).
DEFAULTS = {
    "source": "clothing", "folder": "", "upload": "", "backbones": [DEFAULT_BACKBONE],
    "method": "auto", "k": None, "linkage": "ward", "min_cluster_size": 15, "reduce_to": 5,
    "min_samples": 5, "eps": None, "cw_threshold": None, "cw_k": 20, "resolution": 1.0,
}
# Settings that belong to one data source: reset when the data changes (K=5 for one folder must not score
# another; the photo chosen on Inspect does not exist in the next folder).
PER_DATA = ("k", "eps", "min_cluster_size", "selected", "gallery_cluster", "inspect_image", "inspect_rank")
_INTS = {"k", "min_cluster_size", "reduce_to", "min_samples", "cw_k"}
_FLOATS = {"eps", "cw_threshold", "resolution"}


# ------------------------------------------------------------------ settings
def settings() -> dict:
    """The settings dict (created with the defaults, then the URL's query parameters, on a session's first run)."""
    ss = st.session_state
    if "settings" not in ss:
        ss["settings"] = {**{k: (list(v) if isinstance(v, list) else v) for k, v in DEFAULTS.items()},
                          "selected": [], "gallery_cluster": None, "inspect_image": None, "inspect_rank": 1}
        ss["url_problems"] = _read_url(ss["settings"])
    return ss["settings"]


def get(name):
    return settings()[name]


def get_or(name, default):
    return settings().get(name, default)


def put(name, value) -> None:
    settings()[name] = value


def _store(name: str, widget_key: str) -> None:
    settings()[name] = st.session_state[widget_key]


def bind(name: str, value=None, key: str | None = None, default=None) -> dict:
    """Keyword arguments that tie a widget to the setting ``name``: ``st.slider(..., **state.bind("k"))``.

    ``value``: what the widget shows when it differs from the stored setting (a resolved default, or the
    setting clamped to the widget's range). ``default``: the first value of a view setting that is not in
    ``DEFAULTS`` (a page's own choice, such as the projection). The widget is not given a ``value=``/``index=``
    of its own."""
    key = key or f"w_{name}"
    if name not in settings():
        settings()[name] = default
    shown = settings()[name] if value is None else value
    if st.session_state.get(key, object()) != shown:
        st.session_state[key] = shown
    return {"key": key, "on_change": _store, "args": (name, key)}


def _store_auto(name: str, widget_key: str, fallback) -> None:
    settings()[name] = None if st.session_state[widget_key] else fallback


def bind_auto(name: str, fallback) -> dict:
    """Keyword arguments for a checkbox "automatic" of the setting ``name`` (None means automatic); unticking
    it sets the setting to ``fallback``."""
    key = f"w_{name}_auto"
    shown = settings()[name] is None
    if st.session_state.get(key, object()) != shown:
        st.session_state[key] = shown
    return {"key": key, "on_change": _store_auto, "args": (name, key, fallback)}


def _read_url(s: dict) -> list:
    """Apply the query parameters to the settings; return the ones that could not be used."""
    q = st.query_params
    problems = []
    for name in DEFAULTS:
        if name not in q:
            continue
        raw = q[name]
        try:
            if name == "backbones":
                value = [b for b in raw.split(",") if b]
            elif name in _INTS:
                value = int(raw)
            elif name in _FLOATS:
                value = float(raw)
            else:
                value = raw
            if name == "source" and value not in SOURCES:
                raise ValueError(value)
            if name == "method" and value not in METHODS:
                raise ValueError(value)
            if name == "linkage" and value not in LINKAGES:
                raise ValueError(value)
        except ValueError:
            problems.append(f"{name}={raw}")
            continue
        s[name] = value
    return problems


def _write_url(s: dict) -> None:
    """Mirror the settings that differ from the defaults (and matter for the current source and method)."""
    wanted = {"source": s["source"], "backbones": ",".join(s["backbones"]), "method": s["method"]}
    if s["source"] == "folder" and s["folder"]:
        wanted["folder"] = s["folder"]
    if s["source"] == "upload" and s["upload"]:
        wanted["upload"] = s["upload"]
    for name in method_settings(s["method"]):
        if s[name] is not None:
            wanted[name] = str(s[name])
    if dict(st.query_params) != wanted:
        st.query_params.from_dict(wanted)


def method_settings(method: str) -> tuple:
    return {"kmeans": ("k",), "spectral": ("k",), "agglomerative": ("k", "linkage"),
            "hdbscan": ("min_cluster_size", "reduce_to"), "dbscan": ("min_samples", "eps"),
            "chinese_whispers": ("cw_threshold", "cw_k"), "leiden": ("resolution",)}.get(method, ())


# ------------------------------------------------------------------ cached kit calls
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
    if method == "auto":
        return _auto(fp, folder, backbone, params_json).labels
    emb = _embed(folder, backbone)
    return kit.cluster.make(method, random_state=0, **json.loads(params_json)).fit(emb.vectors).labels_


@st.cache_data(show_spinner="Choosing the method and K without labels (stability on two halves, held-out "
                            "silhouette)...", max_entries=16, persist="disk")
def _auto(fp: str, folder: str, backbone: str, params_json: str):
    emb = _embed(folder, backbone)
    # named by the backbone, so the reason reads "leiden on efficientnet_lite0 with K=7"
    return kit.cluster.make("auto", random_state=0, **json.loads(params_json)).fit({backbone: emb.vectors}).result_


def auto_result(folder: str, backbone: str, params_json: str):
    """The ``kit.cluster.auto`` result behind the "Automatic" clustering: labels, method, K, candidates table and
    the reason in words."""
    return _auto(fingerprint(folder, backbone), folder, backbone, params_json)


def cluster_labels(folder: str, backbone: str, method: str, params_json: str) -> np.ndarray:
    return _cluster_labels(fingerprint(folder, backbone), folder, backbone, method, params_json)


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
    return kit.k.estimate(_embed(folder, backbone).vectors, n_bootstrap=1)


def k_result(folder: str, backbone: str):
    """``kit.k.estimate``'s ``KResult`` (consensus, verdict, table of methods, their curves)."""
    forecast = kit.costs.estimate("k_estimate", "bootstrap1", len(_embed(folder, backbone).paths))
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


# ------------------------------------------------------------------ sidebar
def _upload_folder(data: bytes) -> str:
    digest = hashlib.blake2b(data, digest_size=10).hexdigest()
    dest = kit.kit_home() / "uploads" / digest
    if not dest.exists():
        report = kit.datasets.extract_zip(data, dest, max_bytes=4 * MAX_UPLOAD_MB * 1_000_000)
        if len(report.skipped):
            st.sidebar.warning(f"{len(report.skipped)} files in the zip were skipped (not images).")
    return digest


def folder() -> str | None:
    """The image folder chosen in the sidebar (None when none is chosen yet)."""
    return st.session_state.get("folder_in_use")


def _resolve_folder(sb) -> str | None:
    s = settings()
    source = s["source"]
    if source == "clothing":
        sb.caption("500 CC0 photos of clothing in 10 classes, some alike (shirt, t-shirt, longsleeve).")
        return str(kit.datasets.clothing())
    if source == "demo":
        with st.spinner("Preparing the demo photos (first run only)..."):
            path = demo_path()
        sb.caption("Near-duplicates of 8 scikit-image photos: every method finds them, so scores tie at 1.0.")
        return path
    if source == "folder":
        typed = sb.text_input("Folder path", placeholder="/path/to/photos", **bind("folder")).strip()
        if not typed:
            return None
        path = Path(typed).expanduser()
        if path.is_dir():
            return str(path.resolve())
        sb.error(f"{typed!r} is not a folder on this machine: type the path of a folder that holds photos.")
        return None
    up = sb.file_uploader(f"Zip of images (up to {MAX_UPLOAD_MB} MB)", type=["zip"], key="upload_file")
    if up is not None:
        if up.size > MAX_UPLOAD_MB * 1_000_000:
            sb.error(f"The zip is {up.size / 1e6:.0f} MB; the limit is {MAX_UPLOAD_MB} MB.")
            return None
        try:
            put("upload", _upload_folder(up.getvalue()))
        except ValueError as exc:
            sb.error(f"This zip was refused: {exc}")
            return None
    if s["upload"]:
        dest = kit.kit_home() / "uploads" / s["upload"]
        if dest.is_dir():
            return str(dest)
        sb.warning("The zip of this link is no longer on the server: upload it again.")
    return None


def sidebar() -> str | None:
    """Draw the shared sidebar (from the entry file); remember and return the image folder in use."""
    s = settings()
    sb = st.sidebar
    for problem in st.session_state.pop("url_problems", []):
        sb.warning(f"Ignored `{problem}` in the address: not a valid value.")
    sb.header("Data")
    sb.radio("Images", list(SOURCES), format_func=SOURCES.get, **bind("source"))
    folder = _resolve_folder(sb)
    if folder != st.session_state.get("data_of_settings"):
        if st.session_state.get("data_of_settings") is not None:  # not on a session's first run (URL values)
            for name in PER_DATA:
                s[name] = {"selected": [], "inspect_rank": 1}.get(name, DEFAULTS.get(name))
        st.session_state["data_of_settings"] = folder
    sb.header("Backbones")
    table = backbone_table()
    offline = table.loc[table["offline"], "name"].tolist()
    unknown = [b for b in s["backbones"] if b not in offline]
    if unknown:
        sb.warning(f"Not available here: {', '.join(unknown)} (not in the TF-Hub cache or not installed).")
        s["backbones"] = [b for b in s["backbones"] if b in offline]
    sb.multiselect("Compare these backbones", offline, **bind("backbones"),
                   help="Backbones usable right now. TF-Hub ones appear once they are in the TF-Hub cache.")
    if not s["backbones"]:
        sb.warning("Choose at least one backbone.")
    st.session_state["folder_in_use"] = folder
    return folder


def sidebar_footer() -> None:
    """Drawn after the page ran, so it shows the clustering the page may just have changed; then the URL."""
    s = settings()
    shown = {name: s[name] for name in method_settings(s["method"]) if s[name] is not None}
    auto = [name for name in method_settings(s["method"]) if s[name] is None]
    text = f"Clustering: **{METHODS[s['method']]}** {params_text(shown)}"
    if auto:
        text += " (" + ", ".join(f"{a} automatic" for a in auto) + ")"
    st.sidebar.caption(text + ". Change it on the Cluster page.")
    _write_url(s)


def params_text(params: dict) -> str:
    shown = {k: v for k, v in params.items() if v is not None}
    return ", ".join(f"{k}={v}" for k, v in shown.items())


def primary_backbone() -> str:
    chosen = get("backbones") or [DEFAULT_BACKBONE]
    return chosen[0]


# ------------------------------------------------------------------ the current clustering
def k_range(images: kit.ImageSet) -> tuple[int, int]:
    """Smallest and largest K the slider offers for these images (wide enough for every true label)."""
    n = len(images)
    n_labels = len(set(images.labels)) if images.labels else 0
    return 2, max(2, min(n - 1, max(40, 2 * n_labels)))


def default_k(images: kit.ImageSet) -> int:
    lo, hi = k_range(images)
    return int(np.clip(len(set(images.labels)) if images.labels else 8, lo, hi))


def current_k(images: kit.ImageSet) -> int:
    k = get("k")
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
        return f"{METHODS.get(self.method, self.method)}, {params_text(self.params)}".rstrip(", ")


def clustering(images: kit.ImageSet) -> Clustering:
    """The one clustering of the session, built from the settings (clamped to these images)."""
    s = settings()
    method = s["method"]
    if method == "auto" and len(images) < AUTO_MIN_ROWS:
        method = "kmeans"  # too few photos to compare methods on halves: k-means at the default K (the page says so)
    params = {}
    if method in NEEDS_K:
        params["n_clusters"] = current_k(images)
    if method == "agglomerative":
        params["linkage"] = s["linkage"]
        if s["linkage"] != "ward":
            params["metric"] = "cosine"
    if method == "hdbscan":
        params["min_cluster_size"] = int(np.clip(s["min_cluster_size"], 2, max(2, len(images))))
        params["reduce_to"] = s["reduce_to"]
    if method == "dbscan":
        params["min_samples"] = s["min_samples"]
        params["eps"] = "auto" if s["eps"] is None else s["eps"]
    if method == "chinese_whispers":
        params["threshold"] = "auto" if s["cw_threshold"] is None else s["cw_threshold"]
        params["k"] = s["cw_k"]
    if method == "leiden":
        params["resolution"] = s["resolution"]
    return Clustering(method, params, json.dumps(params, sort_keys=True))


def images_or_explain(folder) -> kit.ImageSet | None:
    """The images of the folder when an analysis can run on them; otherwise say why on the page and return None."""
    if folder is None:
        st.info("Choose images in the sidebar: the built-in photos, a folder, or a zip.")
        return None
    images = load_images(folder)
    if len(images) < MIN_PHOTOS:
        st.warning(f"This page needs at least {MIN_PHOTOS} readable photos; {found_text(images)} "
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
    images: kit.ImageSet
    backbone: str
    clustering: Clustering
    embeddings: kit.Embeddings
    labels: np.ndarray
    edited: bool = False  # hand edits (Curate page) replace the algorithm's labels


def current_result(folder) -> Result | None:
    """The images, primary backbone, clustering, embeddings and labels every result page shows (None, with a
    message on the page, when there is nothing to cluster)."""
    images = images_or_explain(folder)
    if images is None:
        return None
    bb = primary_backbone()
    emb = embeddings(folder, bb)
    if len(emb.vectors) < MIN_PHOTOS:
        st.warning(f"Only {len(emb.vectors)} of the {len(images)} photos could be embedded; at least {MIN_PHOTOS} "
                   "are needed. The Data page lists the files that could not be read.")
        return None
    c = clustering(images)
    result = Result(images, bb, c, emb, cluster_labels(folder, bb, c.method, c.params_json))
    edited = edits(result)
    if edited is not None and len(edited.labels) == len(result.labels):
        result.labels = edited.labels
        result.edited = True
    return result


@st.cache_data(show_spinner=False, max_entries=16)
def _outliers(fp: str, folder: str, backbone: str, labels_bytes: bytes, z: float) -> pd.DataFrame:
    labels = np.frombuffer(labels_bytes, dtype=np.int64)
    return kit.curate.outlier_scores(_embed(folder, backbone).vectors, labels, z=z)


def outlier_table(folder: str, result: Result, z: float = 3.0) -> pd.DataFrame:
    """``kit.curate.outlier_scores`` of the current result's photos and labels (hand edits included)."""
    labels = np.ascontiguousarray(result.labels, dtype=np.int64)
    return _outliers(fingerprint(folder, result.backbone), folder, result.backbone, labels.tobytes(), float(z))


# ------------------------------------------------------------------ hand edits (kit.curate)
def edits_dir() -> Path:
    """Where the dashboard keeps hand-edited clusterings: ``$KIT_HOME/dashboard/edits`` (the kit's own folder)."""
    return kit.kit_home() / "dashboard" / "edits"


def edit_key(folder: str, backbone: str, c: Clustering) -> str:
    """The file stem of one clustering's edits: a digest of the folder, the backbone and the clustering."""
    text = json.dumps([str(Path(folder).resolve()), backbone, c.method, c.params_json])
    return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


def _write_text(path: Path, text: str) -> None:
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf8") as f:
        f.write(text)
    os.replace(tmp, path)


def edits(result: Result) -> kit.curate.ClusterEdits | None:
    """The hand edits of the current clustering: from this session, else from disk (a previous visit), else None.
    Photos added to the folder since the edits were saved are noise (-1) until assigned (Curate page)."""
    folder = str(result.images.root)
    key = edit_key(folder, result.backbone, result.clustering)
    memo = st.session_state.setdefault("edits", {})
    if key not in memo:
        saved = edits_dir() / f"{key}.csv"
        if not saved.is_file():
            return None
        table = pd.read_csv(saved, keep_default_na=False)
        memo[key] = kit.curate.ClusterEdits.from_table(table, result.embeddings.paths)
        memo[key].saved_paths = set(table["path"].astype(str))
    return memo[key]


def start_edits(result: Result) -> kit.curate.ClusterEdits:
    memo = st.session_state.setdefault("edits", {})
    key = edit_key(str(result.images.root), result.backbone, result.clustering)
    memo[key] = kit.curate.ClusterEdits(result.labels)
    memo[key].saved_paths = set(result.embeddings.paths)
    return memo[key]


def save_edits(result: Result, e: kit.curate.ClusterEdits) -> Path:
    """Write the labels CSV (atomically) and append the last operation to the run log beside it."""
    key = edit_key(str(result.images.root), result.backbone, result.clustering)
    path = edits_dir() / f"{key}.csv"
    _write_text(path, e.table(result.embeddings.paths).to_csv(index=False))
    e.saved_paths = set(result.embeddings.paths)
    if e.log:
        kit.export.append_run_log(edits_dir() / "runs.jsonl",
                                  {"folder": str(result.images.root), "backbone": result.backbone,
                                   "method": result.clustering.method, "params": result.clustering.params,
                                   "edit": e.log[-1]["operation"], "details": e.log[-1]["details"]})
    return path


def drop_edits(result: Result) -> None:
    """Forget the edits of the current clustering (in the session and the kit's own CSV of them)."""
    key = edit_key(str(result.images.root), result.backbone, result.clustering)
    st.session_state.setdefault("edits", {}).pop(key, None)
    (edits_dir() / f"{key}.csv").unlink(missing_ok=True)


# ------------------------------------------------------------------ embedding stores (Store page)
def store_backbones(path: str) -> pd.DataFrame | None:
    """The namespaces of the embedding store at ``path`` (``EmbeddingStore.backbones``), or None when ``path``
    is not a store the kit made."""
    from kit.store import EmbeddingStore

    try:
        store = EmbeddingStore(path)  # a folder or an fsspec URL
    except ValueError:  # a URL whose protocol has no package installed
        return None
    return store.backbones() if store.is_store() else None


def _store_signature(path: str) -> str:
    """A digest of the store's partition files (names, rows, bytes): it changes when the store grows."""
    from kit.store import EmbeddingStore

    parts = EmbeddingStore(path).partitions()
    return hashlib.blake2b(parts.to_csv(index=False).encode(), digest_size=12).hexdigest()


@st.cache_data(show_spinner=False, max_entries=4)
def _store_view(path: str, signature: str, backbone: str, method: str, sample_size: int, k: int) -> pd.DataFrame:
    from kit import scale_cluster
    from kit.store import EmbeddingStore

    placed = scale_cluster.project_store(path, method, sample_size=sample_size, backbone=backbone, random_state=0)
    km = scale_cluster.kmeans(path, k, sample_size=max(sample_size, k), backbone=backbone, write=False,
                              random_state=0)
    labels = EmbeddingStore(path).table(backbone, columns=["label"])["label"]
    clusters = km.read_labels()
    return placed.table.assign(cluster=clusters["cluster"].to_numpy(), distance=clusters["distance"].to_numpy(),
                               label=labels.to_numpy())


def store_view(path: str, backbone: str, method: str, sample_size: int, k: int) -> pd.DataFrame:
    """One row per photo of the store (path, hash, x, y, cluster, distance to its centre, label): the map and
    k-means fitted on a sample of ``sample_size`` rows, every row placed partition by partition (kit.scale_cluster).
    """
    with st.spinner(f"Fitting the map and k-means (K = {k}) on a sample of {sample_size:,} rows, then placing every "
                    "row..."):
        return _store_view(path, _store_signature(path), backbone, method, sample_size, k)


# ------------------------------------------------------------------ photo grids
@st.cache_data(show_spinner=False, max_entries=8192)
def tile_uri(path: str, size: int = 120) -> str:
    try:
        return kit.plot.image_uri(path, size=size)
    except ValueError:  # moved or damaged since it was embedded
        return kit.plot.image_uri(np.full((size, size, 3), 200, np.uint8))


def photo_grid(paths, captions=None, marked=(), size: int = 120, where=None) -> None:
    """Photos in a wrapping grid; the full path shows on hover; ``marked`` (indices) get a red frame."""
    import html

    marked = set(marked)
    tiles = []
    for i, p in enumerate(paths):
        caption = html.escape(captions[i]) if captions else ""
        frame = "3px solid #d62728" if i in marked else "1px solid #ddd"
        tiles.append(f'<figure title="{html.escape(str(p))}" style="margin:0;width:{size}px">'
                     f'<img src="{tile_uri(str(p), size)}" style="width:{size}px;height:{size}px;object-fit:contain;'
                     f'border:{frame};border-radius:4px" alt="{html.escape(Path(p).name)}"/>'
                     f'<figcaption style="font-size:0.72rem;line-height:1.1;overflow:hidden;text-overflow:ellipsis;'
                     f'white-space:nowrap">{caption}</figcaption></figure>')
    (where or st).markdown('<div class="kit-grid" style="display:flex;flex-wrap:wrap;gap:8px">' + "".join(tiles)
                           + "</div>", unsafe_allow_html=True)
