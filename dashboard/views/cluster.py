import numpy as np
import streamlit as st

import kit
import state

st.title("Cluster")
folder = state.folder()
images = state.images_or_explain(folder)
if images is not None:
    s = state.settings()
    bb = state.primary_backbone()
    method = st.selectbox("Algorithm", list(state.METHODS), format_func=state.METHODS.get, **state.bind("method"))
    if method in kit.cluster.NEEDS_K:
        lo, hi = state.k_range(images)
        if hi > lo:
            st.slider("Number of clusters K", lo, hi, **state.bind("k", value=state.current_k(images)),
                      help="Starts at the number of true labels (8 without labels). The 'How many groups?' page "
                           "can set it from an estimate.")
        else:
            st.caption(f"K = {lo}: with {len(images)} photos no other K is possible.")
    if method == "agglomerative":
        st.selectbox("Linkage", state.LINKAGES, **state.bind("linkage"))
    if method == "hdbscan":
        hi = max(3, min(100, len(images)))
        st.slider("Minimum cluster size", 2, hi, **state.bind("min_cluster_size",
                                                               value=int(np.clip(s["min_cluster_size"], 2, hi))))
        st.select_slider("PCA dimensions first", state.REDUCE_TO, **state.bind("reduce_to"))
    if method == "dbscan":
        emb = state.embeddings(folder, bb)
        st.slider("min_samples", 2, 30, **state.bind("min_samples"))
        d, eps_auto = kit.cluster.k_distance(emb.vectors, s["min_samples"])
        if not st.checkbox("eps at the knee of the k-distance curve",
                           **state.bind_auto("eps", float(np.clip(round(eps_auto, 3), 0.01, 1.0)))):
            st.slider("eps (cosine distance)", 0.01, 1.0, step=0.005,
                      **state.bind("eps", value=float(np.clip(round(s["eps"] or eps_auto, 3), 0.01, 1.0))))
        st.plotly_chart(kit.plot.k_distance(d, s["eps"] or eps_auto), key="k_distance")
    if method == "chinese_whispers":
        if not st.checkbox("Automatic threshold", **state.bind_auto("cw_threshold", 0.6)):
            st.slider("Similarity threshold", 0.0, 1.0, step=0.01,
                      **state.bind("cw_threshold", value=s["cw_threshold"] or 0.6))
        st.slider("Neighbours in the graph", 5, 50, **state.bind("cw_k"))
    if method == "leiden":
        st.slider("Resolution", 0.1, 3.0, step=0.1, **state.bind("resolution"))
    if method == "scan":
        st.caption("A small head trained on the frozen embeddings so that each photo's nearest neighbours share its "
                   "cluster, with clusters kept balanced (SCAN, Van Gansbeke et al. 2020); 5 heads, the one with "
                   "the lowest loss kept.")
    if method == "auto":
        st.caption("Chooses the method (k-means, Ward, spectral, Leiden) and K from the photos alone: K from the "
                   "K estimators, then each method clustered on two random halves and scored by how well the "
                   "halves agree and by silhouette on the half it did not see. True labels are never used.")
    result = state.current_result(folder)
    if result is not None and method == "auto" and result.clustering.method != "auto":
        st.info(f"Only {len(result.labels)} photos: the automatic choice needs at least {state.AUTO_MIN_ROWS} to "
                f"compare methods on two halves, so this is k-means at K = {result.clustering.params['n_clusters']}.",
                icon=":material/info:")
    if result is not None:
        c, labels = result.clustering, result.labels
        s_ = state.scores(folder, bb, c.method, c.params_json)
        undefined = state.undefined_reason(folder, bb, c.method, c.params_json)
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("Clusters", int(s_["n_clusters"]))
        c2.metric("Noise", f"{int((labels < 0).sum())} ({s_['noise_fraction']:.0%})")
        c3.metric("NMI", f"{s_['nmi']:.3f}" if np.isfinite(s_.get("nmi", np.nan)) else "undefined"
                  if undefined else "-", help=undefined or ("Agreement with the true labels" if "nmi" in s_
                                                             else "No true labels in this folder"))
        c4.metric("Silhouette", f"{s_['silhouette']:.3f}" if np.isfinite(s_.get("silhouette", np.nan)) else "-")
        if undefined:
            st.warning(f"External scores (NMI, ARI, BCubed...) are undefined here: {undefined}",
                       icon=":material/help:")
        if c.method == "auto":
            chosen = state.auto_result(folder, bb, c.params_json)
            st.info(chosen.reason, icon=":material/auto_awesome:")
            with st.expander("Every candidate it scored"):
                st.dataframe(chosen.table, hide_index=True, key="auto_table")
        st.plotly_chart(kit.plot.cluster_sizes(labels), key="sizes")
        st.dataframe({k: [v] for k, v in s_.items()}, key="cluster_scores")
