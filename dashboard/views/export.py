import json
from pathlib import Path

import streamlit as st

import kit
import state

st.title("Export")
folder = state.folder()
if state.need_folder(folder):
    images, bb, method, params_json, emb, labels = state.current_result(folder)
    s = state.scores(folder, bb, method, params_json)
    st.caption(f"Current result: **{method}** on **{bb}**, {int(s['n_clusters'])} clusters.")
    default_out = str(kit.kit_home() / "exports" / "latest")
    out = Path(st.text_input("Output folder (never inside the image folder)", default_out, key="out_dir"))
    mode = st.radio("Images into cluster folders", ["copy", "link"], horizontal=True, key="folder_mode")
    c1, c2, c3, c4 = st.columns(4)
    done = []
    try:
        if c1.button("CSV", key="btn_csv"):
            done.append(kit.export.to_csv(emb.paths, labels, out / "clusters.csv", source_root=folder))
        if c2.button("Excel", key="btn_excel"):
            done.append(kit.export.to_excel(emb.paths, labels, out / "clusters.xlsx", source_root=folder))
        if c3.button("Cluster folders", key="btn_folders"):
            written = kit.export.to_folders(emb.paths, labels, out / "clusters", mode=mode, source_root=folder)
            done.append(f"{len(written)} images into {out / 'clusters'}")
        if c4.button("Append to run log", key="btn_log"):
            kit.export.check_outside(out, emb.paths, source_root=folder)
            kit.export.append_run_log(out / "runs.jsonl", {"folder": folder, "backbone": bb, "method": method,
                                                           **json.loads(params_json)}, s)
            done.append(out / "runs.jsonl")
    except ValueError as exc:
        st.error(str(exc))
    for d in done:
        st.success(f"Written: {d}")
    if (out / "runs.jsonl").exists():
        st.subheader("Run log")
        st.dataframe(kit.export.read_run_log(out / "runs.jsonl"), hide_index=True, key="run_log")
    st.download_button("Download the CSV", kit.export.assignments(emb.paths, labels).to_csv(index=False),
                       file_name="clusters.csv", key="download_csv")
