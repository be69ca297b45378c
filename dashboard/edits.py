"""Hand edits of a clustering (Curate page, ``kit.curate.ClusterEdits``): kept in the session, saved as a labels
CSV under the kit's own folder (``$KIT_HOME/dashboard/edits``), each operation appended to a run log beside it."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import streamlit as st

import kit


def edits_dir() -> Path:
    """Where the dashboard keeps hand-edited clusterings: ``$KIT_HOME/dashboard/edits`` (the kit's own folder)."""
    return kit.kit_home() / "dashboard" / "edits"


def edit_key(folder: str, backbone: str, c) -> str:
    """The file stem of one clustering's edits: a digest of the folder, the backbone and the clustering."""
    text = json.dumps([str(Path(folder).resolve()), backbone, c.method, c.params_json])
    return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


def edits(result) -> kit.curate.ClusterEdits | None:
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


def start_edits(result) -> kit.curate.ClusterEdits:
    memo = st.session_state.setdefault("edits", {})
    key = edit_key(str(result.images.root), result.backbone, result.clustering)
    memo[key] = kit.curate.ClusterEdits(result.labels)
    memo[key].saved_paths = set(result.embeddings.paths)
    return memo[key]


def save_edits(result, e: kit.curate.ClusterEdits) -> Path:
    """Write the labels CSV (atomically) and append the last operation to the run log beside it."""
    key = edit_key(str(result.images.root), result.backbone, result.clustering)
    path = edits_dir() / f"{key}.csv"
    e.save(path, result.embeddings.paths)
    e.saved_paths = set(result.embeddings.paths)
    if e.log:
        kit.export.append_run_log(edits_dir() / "runs.jsonl",
                                  {"folder": str(result.images.root), "backbone": result.backbone,
                                   "method": result.clustering.method, "params": result.clustering.params,
                                   "edit": e.log[-1]["operation"], "details": e.log[-1]["details"]})
    return path


def drop_edits(result) -> None:
    """Forget the edits of the current clustering (in the session and the kit's own CSV of them)."""
    key = edit_key(str(result.images.root), result.backbone, result.clustering)
    st.session_state.setdefault("edits", {}).pop(key, None)
    (edits_dir() / f"{key}.csv").unlink(missing_ok=True)
