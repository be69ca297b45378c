"""The shared sidebar, drawn by the entry file on every page: the data source (built-in photos, a folder, a zip)
and the backbones to compare; after the page, a footer with the clustering in use, and the URL kept in step."""
from __future__ import annotations

import hashlib
from pathlib import Path

import streamlit as st

import kit
import kit.datasets

import calls
import current
import settings


def _upload_folder(data: bytes) -> str:
    digest = hashlib.blake2b(data, digest_size=10).hexdigest()
    dest = kit.kit_home() / "uploads" / digest
    if not dest.exists():
        report = kit.datasets.extract_zip(data, dest, max_bytes=4 * settings.MAX_UPLOAD_MB * 1_000_000)
        if len(report.skipped):
            st.sidebar.warning(f"{len(report.skipped)} files in the zip were skipped (not images).")
    return digest


def folder() -> str | None:
    """The image folder chosen in the sidebar (None when none is chosen yet)."""
    return st.session_state.get("folder_in_use")


def _resolve_folder(sb) -> str | None:
    s = settings.settings()
    source = s["source"]
    if source == "clothing":
        sb.caption("500 CC0 photos of clothing in 10 classes, some alike (shirt, t-shirt, longsleeve).")
        return str(kit.datasets.clothing())
    if source == "demo":
        with st.spinner("Preparing the demo photos (first run only)..."):
            path = calls.demo_path()
        sb.caption("Near-duplicates of 8 scikit-image photos: every method finds them, so scores tie at 1.0.")
        return path
    if source == "folder":
        typed = sb.text_input("Folder path", placeholder="/path/to/photos", **settings.bind("folder")).strip()
        if not typed:
            return None
        path = Path(typed).expanduser()
        if path.is_dir():
            return str(path.resolve())
        sb.error(f"{typed!r} is not a folder on this machine: type the path of a folder that holds photos.")
        return None
    up = sb.file_uploader(f"Zip of images (up to {settings.MAX_UPLOAD_MB} MB)", type=["zip"], key="upload_file")
    if up is not None:
        if up.size > settings.MAX_UPLOAD_MB * 1_000_000:
            sb.error(f"The zip is {up.size / 1e6:.0f} MB; the limit is {settings.MAX_UPLOAD_MB} MB.")
            return None
        try:
            settings.put("upload", _upload_folder(up.getvalue()))
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
    s = settings.settings()
    sb = st.sidebar
    for problem in st.session_state.pop("url_problems", []):
        sb.warning(f"Ignored `{problem}` in the address: not a valid value.")
    sb.header("Data")
    sb.radio("Images", list(settings.SOURCES), format_func=settings.SOURCES.get, **settings.bind("source"))
    folder = _resolve_folder(sb)
    if folder != st.session_state.get("data_of_settings"):
        if st.session_state.get("data_of_settings") is not None:  # not on a session's first run (URL values)
            for name in settings.PER_DATA:
                s[name] = {"selected": [], "inspect_rank": 1}.get(name, settings.DEFAULTS.get(name))
        st.session_state["data_of_settings"] = folder
    sb.header("Backbones")
    table = calls.backbone_table()
    offline = table.loc[table["offline"], "name"].tolist()
    later = table.loc[~table["offline"] & (table["source"] == "kerashub"), "name"].tolist()
    options = offline + later
    unknown = [b for b in s["backbones"] if b not in options]
    if unknown:
        sb.warning(f"Not available here: {', '.join(unknown)} (not in the TF-Hub cache or not installed).")
        s["backbones"] = [b for b in s["backbones"] if b in options]
    sb.multiselect("Compare these backbones", options, **settings.bind("backbones"),
                   format_func=lambda b: f"{b} (download on first use)" if b in later else b,
                   help="Backbones usable right now, and the KerasHub presets (DINOv2, CLIP, SigLIP): those are "
                        "downloaded the first time they are used (internet needed once), then work offline. CLIP "
                        "and SigLIP also search the photos in words. TF-Hub ones appear once they are in the "
                        "TF-Hub cache.")
    if not s["backbones"]:
        sb.warning("Choose at least one backbone.")
    st.session_state["folder_in_use"] = folder
    settings.restore_selection(folder)
    return folder


def sidebar_footer() -> None:
    """Drawn after the page ran, so it shows the clustering the page may just have changed (with K and the
    parameters resolved for the photos in use); then the URL."""
    s = settings.settings()
    folder = st.session_state.get("folder_in_use")
    images = calls.load_images(folder) if folder is not None else None
    if images is not None and len(images) >= settings.MIN_PHOTOS:
        c = current.clustering(images)
        text = f"Clustering: **{settings.METHODS.get(c.method, c.method)}**"
        automatic = [spec.label for spec in settings.entry(c.method).settings
                     if spec.auto is not None and s.get(spec.key) is None]
        if c.method in settings.AUTOMATIC:
            text += ", K chosen from the photos" if c.method == settings.RECOMMENDED else \
                ", method and K chosen from the photos"
        elif c.params:
            text += ", " + settings.params_text({k: v for k, v in c.params.items() if v != "auto"})
        if automatic:
            text += " (" + ", ".join(f"{a} automatic" for a in automatic) + ")"
    else:
        text = f"Clustering: **{settings.METHODS[s['method']]}**"
    st.sidebar.caption(text + ". Change it on the Cluster page.")
    settings.write_url(s)
