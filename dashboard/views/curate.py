import numpy as np
import pandas as pd
import streamlit as st

import kit

import calls
import current
import edits
import settings
import sidebar
import widgets

st.title("Curate")
st.caption("Fix the groups by hand: move photos, merge, split or rename clusters, undo. The scores follow every "
           "edit; the edits are saved (a labels CSV and the run log in the kit's home) and come back on the next "
           "visit, and the Gallery and Export pages use them.")
folder = sidebar.folder()
if "edit_conflict" in st.session_state:
    st.warning(f"Not saved: {st.session_state.pop('edit_conflict')}. This page now shows the edits in effect.",
               icon=":material/sync_problem:")
result = current.current_result(folder)
if result is not None:
    emb, paths = result.embeddings, result.embeddings.paths
    e = edits.edits(result)
    if e is None:
        e = edits.start_edits(result)
    labels = e.labels
    names = {int(c): e.names.get(int(c), "") for c in np.unique(labels)}
    described = kit.inspect.cluster_names(labels, truth=emb.labels).set_index("cluster")

    def label_of(c):
        """Cluster id, then the name given by hand or the majority true label, then its size."""
        c = int(c)
        if c < 0:
            return f"noise ({int((labels < 0).sum())} photos)"
        row = described.loc[c] if c in described.index else None
        size = int((labels == c).sum())
        if names.get(c):
            what = f" · {names[c]}"
        elif row is not None and row["source"] != "id":
            what = f" · {row['name']} {row['share']:.0%}"
        else:
            what = ""
        return f"{c}{what} ({size} photo{'s' if size != 1 else ''})"

    # ---- scores, before and after the edits
    s_now = calls.label_scores(folder, result.backbone, labels)
    s_alg = result.algorithm_scores
    cols = st.columns(4)
    cols[0].metric("Clusters", int(len(set(labels.tolist()) - {-1})))
    keys = [k for k in ("nmi", "ari", "silhouette") if k in s_now and s_now[k] is not None]
    for col, k in zip(cols[1:], keys):
        now, before = s_now[k], s_alg.get(k)
        changed = before is not None and np.isfinite(before) and np.isfinite(now) and round(now - before, 3) != 0
        delta = f"{now - before:+.3f} vs the algorithm" if changed else None  # no green "+0.000" for no change
        col.metric(k.upper() if k != "silhouette" else "Silhouette", "undefined" if np.isnan(now) else f"{now:.3f}",
                   delta)
    in_effect = len(e.history)  # an undo takes an edit back: it is not one more
    st.caption(f"{result.backbone}, {result.clustering.text}. {in_effect} edit{'s' if in_effect != 1 else ''} in "
               "effect" + (" (and the edits saved on an earlier visit)" if getattr(e, "from_disk", False) else "")
               + ".")

    # ---- new photos since the edits were saved
    new = [i for i, p in enumerate(paths) if p not in getattr(e, "saved_paths", set(paths))]
    if new:
        st.subheader("New photos")
        st.write(f"**{len(new)}** photos were added to the folder since these edits were saved.")
        if st.button(f"Assign the {len(new)} new photos to the existing clusters", key="btn_assign"):
            known = np.setdiff1d(np.arange(len(paths)), new)
            a = kit.curate.assign(emb.vectors[new], emb.vectors[known], labels[known])
            by_cluster = {}
            for i, c in zip(new, a.labels):
                by_cluster.setdefault(int(c), []).append(i)
            for c, rows in by_cluster.items():
                e.move(rows, c)
            edits.save_edits(result, e)
            far = [paths[i] for i, f in zip(new, a.far) if f]
            st.session_state["far_new"] = far
            st.rerun()
    far = st.session_state.get("far_new") or []
    if far:
        st.warning(f"{len(far)} of the new photos are far from every cluster: candidates for a new one.")
        widgets.photo_grid(far[:30], size=90)

    # ---- the edit operations
    st.subheader("Edit")
    ids = sorted(set(labels.tolist()))
    clusters = [c for c in ids if c >= 0]
    t_move, t_merge, t_split, t_rename = st.tabs(["Move photos", "Merge", "Split", "Rename"])
    with t_move:
        selected = [p for p in settings.get("selected") if p in set(paths)]
        source = st.radio("Photos", ["from a cluster", f"the {len(selected)} selected on the Backbones page"],
                          horizontal=True, key="move_source", disabled=False)
        if source == "from a cluster":
            c_from = st.selectbox("Cluster", ids, format_func=label_of, key="move_from")
            members = [paths[i] for i in np.flatnonzero(labels == c_from)]
            widgets.photo_grid(members[:60], size=72,
                               captions=[(f"{emb.labels[paths.index(p)]} · " if emb.labels else "") + p.split("/")[-1]
                                         for p in members[:60]])
            picked = st.multiselect("Photos to move", members, key="move_pick",
                                    format_func=lambda p: (f"{emb.labels[paths.index(p)]} · " if emb.labels else "")
                                    + p.split("/")[-1])
        else:
            picked = selected
        targets = [*clusters, int(max(ids) + 1), -1]
        to = st.selectbox("To", targets, key="move_to",
                          format_func=lambda c: "a new cluster" if c == max(ids) + 1 else label_of(c))
        if st.button(f"Move {len(picked)} photos", key="btn_move", disabled=not picked):
            index = {p: i for i, p in enumerate(paths)}
            e.move([index[p] for p in picked], int(to))
            edits.save_edits(result, e)
            st.rerun()
    with t_merge:
        a = st.selectbox("Keep cluster", clusters, format_func=label_of, key="merge_a")
        b = st.selectbox("Merge into it", [c for c in clusters if c != a], format_func=label_of, key="merge_b")
        if st.button("Merge", key="btn_merge", disabled=b is None):
            e.merge(int(a), int(b))
            edits.save_edits(result, e)
            st.rerun()
    with t_split:
        c_split = st.selectbox("Cluster", clusters, format_func=label_of, key="split_c")
        n = st.number_input("Into", min_value=2, max_value=6, value=2, key="split_n")
        if st.button("Split (k-means inside the cluster)", key="btn_split"):
            try:
                e.split(emb.vectors, int(c_split), int(n), random_state=0)
            except ValueError as exc:
                st.error(str(exc))
            else:
                edits.save_edits(result, e)
                st.rerun()
    with t_rename:
        c_name = st.selectbox("Cluster", clusters, format_func=label_of, key="rename_c")
        new_name = st.text_input("Name", value=names.get(int(c_name), "") if c_name is not None else "",
                                 key=f"rename_text_{c_name}")
        if st.button("Rename", key="btn_rename", disabled=not new_name.strip()):
            e.rename(int(c_name), new_name.strip())
            edits.save_edits(result, e)
            st.rerun()
    u1, u2, u3 = st.columns(3)
    if u1.button("Undo", key="btn_undo", disabled=not e.history):
        e.undo()
        edits.save_edits(result, e)
        for key in [k for k in st.session_state if str(k).startswith("rename_text_")]:
            del st.session_state[key]  # the Name boxes show the names in effect, not an undone one
        st.rerun()
    if u2.button("Back to the algorithm's clusters", key="btn_reset", disabled=not e.log):
        edits.drop_edits(result)
        st.session_state.pop("far_new", None)
        st.rerun()
    u3.download_button("Labels CSV", e.table(paths).to_csv(index=False), file_name="labels.csv",
                       key="download_labels", on_click="ignore")

    # ---- clusters and their odd ones out
    st.subheader("Clusters")
    scores = kit.curate.outlier_scores(emb.vectors, labels)
    summary = (pd.DataFrame({"cluster": labels, "outlier": scores.outlier})
               .groupby("cluster").agg(photos=("outlier", "size"), outliers=("outlier", "sum")).reset_index())
    summary.insert(1, "name", [names.get(int(c), "") if c >= 0 else "noise" for c in summary.cluster])
    st.dataframe(summary, hide_index=True, key="curate_clusters")
    odd = scores[scores.outlier].sort_values("knn_distance", ascending=False)
    if len(odd):
        st.write(f"**{len(odd)}** odd ones out (far from their neighbours or from their cluster's centre):")
        widgets.photo_grid([paths[i] for i in odd.index[:30]],
                         captions=[label_of(labels[i]) for i in odd.index[:30]], size=90)
    if e.log:
        with st.expander(f"Edit log ({len(e.log)})"):
            st.dataframe(pd.DataFrame(e.log), hide_index=True, key="edit_log")
