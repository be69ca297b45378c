import numpy as np
import streamlit as st

import kit
import state

st.title("Gallery")
folder = state.folder()
if state.need_folder(folder):
    images, bb, method, params_json, emb, labels = state.current_result(folder)
    clusters = sorted(set(labels.tolist()) - {-1})
    sizes = {c: int((labels == c).sum()) for c in clusters}
    if (labels < 0).any():
        clusters.append(-1)
        sizes[-1] = int((labels < 0).sum())
    chosen = st.selectbox("Cluster", clusters, key="gallery_cluster",
                          format_func=lambda c: f"noise ({sizes[c]} photos)" if c < 0 else f"cluster {c} ({sizes[c]} photos)")
    members = np.flatnonzero(labels == chosen)
    X = emb.vectors[members]
    sim = X @ (X.mean(axis=0) / np.linalg.norm(X.mean(axis=0)))
    order = members[np.argsort(-sim)]
    outlier_cut = np.percentile(sim, 10) if len(sim) >= 10 else -np.inf
    st.caption("Representative first (closest to the cluster's centre); ⚠ marks the 10% farthest from it.")
    limit = st.slider("Photos shown", 6, 120, 36, key="gallery_limit")
    shown = order[:limit]
    captions = []
    for i in shown:
        tag = "⚠ " if sim[np.flatnonzero(members == i)[0]] <= outlier_cut else ""
        truth = f" · {emb.labels[i]}" if emb.labels else ""
        captions.append(f"{tag}{emb.paths[i].split('/')[-1][:14]}{truth}")
    st.image([state.thumbnail(emb.paths[i]) for i in shown], width=120, caption=captions)
    if chosen >= 0 and kit.backbones.get(bb).can_classify:
        st.subheader("Why were these grouped?")
        if st.toggle("Explain this cluster (ImageNet labels and CAMs of the representatives)", key="explain"):
            with st.spinner("Classifying the cluster's photos and computing CAMs..."):
                exp = kit.inspect.explain_cluster(emb, labels, chosen, n_members=4)
            left, right = st.columns([1, 2])
            left.dataframe(exp.labels.head(10), hide_index=True, key="explain_labels",
                           column_config={"fraction": st.column_config.ProgressColumn(min_value=0, max_value=1)})
            right.image(exp.cams.overlays, width=170, caption=[n.split(",")[0] for n in exp.cams.class_names])
