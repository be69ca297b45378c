"""Hand edits of a clustering (Curate page, ``kit.curate.ClusterEdits``): kept in the session, saved as a labels
CSV under the kit's own folder (``$KIT_HOME/dashboard/edits``), each operation appended to a run log beside it."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import streamlit as st

import kit


def edits_dir() -> Path:
    """Where the dashboard keeps hand-edited clusterings: ``$KIT_HOME/dashboard/edits`` (the kit's own folder)."""
    return kit.kit_home() / "dashboard" / "edits"


def edit_key(folder: str, backbone: str, c) -> str:
    """The file stem of one clustering's edits: a digest of the folder, the backbone and the clustering."""
    text = json.dumps([str(Path(folder).resolve()), backbone, c.method, c.params_json])
    return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


def _file(result) -> kit.curate.EditFile:
    return kit.curate.EditFile(edits_dir(), edit_key(str(result.images.root), result.backbone, result.clustering))


def edits(result) -> kit.curate.ClusterEdits | None:
    """The hand edits of the current clustering: from this session, else from disk (a previous visit or another
    tab), else None. Photos added to the folder since the edits were saved are noise (-1) until assigned."""
    f = _file(result)
    memo = st.session_state.setdefault("edits", {})
    if f.stem not in memo:
        loaded = f.load(result.embeddings.paths)
        if loaded is None:
            return None
        e, e.version = loaded
        e.saved_paths = f.saved_paths()
        e.from_disk = True
        memo[f.stem] = e
    return memo[f.stem]


def start_edits(result) -> kit.curate.ClusterEdits:
    f = _file(result)
    e = kit.curate.ClusterEdits(result.labels)
    e.saved_paths, e.version = set(result.embeddings.paths), f.version
    st.session_state.setdefault("edits", {})[f.stem] = e
    return e


def save_edits(result, e: kit.curate.ClusterEdits) -> Path | None:
    """Save the edits (versioned: a save made in another tab since these were loaded is never overwritten; this
    one is then kept beside it and the page says so) and append the last operation to the run log beside them."""
    f = _file(result)
    try:
        e.version = f.save(e, result.embeddings.paths, getattr(e, "version", 0))
    except kit.curate.EditConflict as conflict:
        st.session_state["edit_conflict"] = str(conflict)
        st.session_state.setdefault("edits", {}).pop(f.stem, None)  # show the edits in effect (theirs)
        return None
    e.saved_paths = set(result.embeddings.paths)
    if e.log:
        kit.export.append_run_log(edits_dir() / "runs.jsonl",
                                  {"folder": str(result.images.root), "backbone": result.backbone,
                                   "method": result.clustering.method, "params": result.clustering.params,
                                   "edit": e.log[-1]["operation"], "details": e.log[-1]["details"]})
    return f.csv


def drop_edits(result) -> None:
    """Back to the algorithm's clusters: the edits go from the session and the CSV; the log keeps them."""
    f = _file(result)
    e = st.session_state.setdefault("edits", {}).pop(f.stem, None)
    try:
        f.reset(getattr(e, "version", f.version))
    except kit.curate.EditConflict as conflict:
        st.session_state["edit_conflict"] = str(conflict)
