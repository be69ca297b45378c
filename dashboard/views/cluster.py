import json

import numpy as np
import streamlit as st

import kit
import state

st.title("Cluster")
folder = state.folder()
METHODS = {"kmeans": "k-means", "agglomerative": "Agglomerative", "spectral": "Spectral", "hdbscan": "HDBSCAN",
           "dbscan": "DBSCAN", "chinese_whispers": "Chinese Whispers", "leiden": "Leiden", "infomap": "Infomap"}
if state.need_folder(folder):
    images = state.load_images(folder)
    bb = state.primary_backbone()
    current = st.session_state["cluster"]
    method = st.selectbox("Algorithm", list(METHODS), format_func=METHODS.get, key="algo",
                          index=list(METHODS).index(current["method"]))
    default_k = len(set(images.labels)) if images.labels else 8
    params = {}
    if method in kit.cluster.NEEDS_K:
        params["n_clusters"] = st.slider("Number of clusters K", 2, 40, default_k, key="k_slider")
    if method == "agglomerative":
        params["linkage"] = st.selectbox("Linkage", ["ward", "average", "complete", "single"], key="linkage")
        if params["linkage"] != "ward":
            params["metric"] = "cosine"
    if method == "hdbscan":
        params["min_cluster_size"] = st.slider("Minimum cluster size", 2, 100, 15, key="mcs")
        params["reduce_to"] = st.select_slider("PCA dimensions first", [2, 3, 5, 10, 20, 50], 5, key="reduce_to")
    if method == "dbscan":
        emb = state.embeddings(folder, bb)
        ms = st.slider("min_samples", 2, 30, 5, key="min_samples")
        d, eps_auto = kit.cluster.k_distance(emb.vectors, ms)
        params["min_samples"] = ms
        params["eps"] = st.slider("eps (cosine distance)", 0.01, 1.0, float(round(eps_auto, 3)), 0.005, key="eps")
        st.plotly_chart(kit.plot.k_distance(d, params["eps"]), key="k_distance")
    if method == "chinese_whispers":
        auto = st.checkbox("Automatic threshold", True, key="cw_auto")
        params["threshold"] = "auto" if auto else st.slider("Similarity threshold", 0.0, 1.0, 0.6, 0.01, key="cw_thr")
        params["k"] = st.slider("Neighbours in the graph", 5, 50, 20, key="cw_k")
    if method == "leiden":
        params["resolution"] = st.slider("Resolution", 0.1, 3.0, 1.0, 0.1, key="resolution")
    st.session_state["cluster"] = {"method": method, "params": params}
    params_json = json.dumps(params, sort_keys=True)
    state.embeddings(folder, bb)
    labels = state.cluster_labels(folder, bb, method, params_json)
    s = state.scores(folder, bb, method, params_json)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Clusters", int(s["n_clusters"]))
    c2.metric("Noise", f"{int((labels < 0).sum())} ({s['noise_fraction']:.0%})")
    c3.metric("NMI", f"{s['nmi']:.3f}" if "nmi" in s else "-")
    c4.metric("Silhouette", f"{s['silhouette']:.3f}" if np.isfinite(s.get("silhouette", np.nan)) else "-")
    st.plotly_chart(kit.plot.cluster_sizes(labels), key="sizes")
    st.dataframe({k: [v] for k, v in s.items()}, key="cluster_scores")
