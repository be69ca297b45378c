import io
import json
from pathlib import Path

import streamlit as st

import kit

import current
import settings
import sidebar

st.title("Export")
folder = sidebar.folder()
result = current.current_result(folder)
if result is not None:
    bb, c, emb, labels = result.backbone, result.clustering, result.embeddings, result.labels
    s = result.scores  # of the labels exported: hand edits included
    meta = {"backbone": bb, "method": c.method, "params": c.params}
    st.caption(f"Current result: **{c.text}** on **{bb}**, {int(s['n_clusters'])} clusters, {len(emb.paths)} photos.")

    st.subheader("Download")
    d1, d2, d3, d4 = st.columns(4)
    d1.download_button("CSV", kit.export.assignments(emb.paths, labels, truth=emb.labels, **meta).to_csv(index=False),
                       file_name="clusters.csv", mime="text/csv", key="download_csv", icon=":material/download:",
                       on_click="ignore", help="path, cluster, true label (when known), backbone, method, parameters")
    d2.download_button("Excel", lambda: kit.export.to_excel(emb.paths, labels, io.BytesIO(), truth=emb.labels,
                                                            meta=meta).getvalue(),
                       file_name="clusters.xlsx", key="download_excel", icon=":material/download:", on_click="ignore",
                       mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                       help="A summary sheet and one sheet per cluster")
    d3.download_button("Cluster folders (zip)", lambda: kit.export.to_zip(emb.paths, labels, truth=emb.labels,
                                                                          meta=meta),
                       file_name="clusters.zip", mime="application/zip", key="download_zip",
                       icon=":material/download:", on_click="ignore",
                       help="clusters/cluster_XXX/<photo>: every photo once, and clusters.csv")
    run = {"folder": folder, "backbone": bb, "method": c.method, **c.params, "hand_edits": result.n_edits}
    log_line = json.dumps({"params": run, "scores": s}, default=str) + "\n"
    d4.download_button("Run log line (JSON)", log_line, file_name="run.jsonl", key="download_log",
                       icon=":material/download:", on_click="ignore",
                       help="This run's parameters and scores, one JSON line")

    st.download_button("Outlier scores (CSV)",
                       lambda: kit.curate.outlier_scores(emb.vectors, labels).assign(path=emb.paths)
                       .to_csv(index=False), file_name="outliers.csv", mime="text/csv", key="download_outliers",
                       icon=":material/download:", on_click="ignore",
                       help="Per photo: cosine distance to its 10th neighbour and to its cluster's centre, its rank "
                            "in the cluster (0 = most typical) and whether it is an odd one out (kit.curate)")
    if result.edited:
        st.caption("These downloads hold your hand edits (Curate page).")

    st.subheader("Write on this machine")
    default_out = str(kit.kit_home() / "exports" / "latest")
    out = Path(st.text_input("Output folder (never inside the image folder)",
                             **settings.bind("out_dir", default=default_out, key="out_dir"))).expanduser()
    mode = st.radio("Photos into cluster folders", ["copy", "link"], horizontal=True,
                    **settings.bind("folder_mode", default="copy"))
    c1, c2, c3, c4 = st.columns(4)
    clicked = {"csv": c1.button("CSV", key="btn_csv"), "excel": c2.button("Excel", key="btn_excel"),
               "folders": c3.button("Cluster folders", key="btn_folders"),
               "log": c4.button("Append to run log", key="btn_log")}
    done = []
    try:
        if clicked["csv"]:
            done.append(f"`{kit.export.to_csv(emb.paths, labels, out / 'clusters.csv', source_root=folder, truth=emb.labels, meta=meta)}`")
        if clicked["excel"]:
            done.append(f"`{kit.export.to_excel(emb.paths, labels, out / 'clusters.xlsx', source_root=folder, truth=emb.labels, meta=meta)}`")
        if clicked["folders"]:
            written = kit.export.to_folders(emb.paths, labels, out / "clusters", mode=mode, source_root=folder)
            again = f" (replacing the {written.removed} files of the previous export there)" if written.removed else ""
            done.append(f"{len(written.table)} photos into `{written.folder}`, one folder per cluster{again}")
        if clicked["log"]:
            kit.export.check_outside(out, emb.paths, source_root=folder)
            kit.export.append_run_log(out / "runs.jsonl", run, s)
            done.append(f"`{out / 'runs.jsonl'}`")
    except ValueError as exc:
        st.error(str(exc), icon=":material/block:")
    except OSError as exc:
        st.error(f"Could not write to `{out}`: {exc.strerror or exc}. Choose a folder you can write to "
                 f"(for example `{default_out}`).", icon=":material/block:")
    for d in done:
        st.success(f"Written: {d}")
    log = out / "runs.jsonl"
    try:
        has_log = log.is_file()
    except OSError:
        has_log = False
    if has_log:
        st.subheader("Run log")
        st.dataframe(kit.export.read_run_log(log), hide_index=True, key="run_log")
        st.download_button("Download the run log", log.read_bytes(), file_name="runs.jsonl", key="download_runs",
                           icon=":material/download:", on_click="ignore")
