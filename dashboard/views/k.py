import pandas as pd
import streamlit as st

import kit

import calls
import current
import settings
import sidebar


def _apply(k: int, source: str) -> None:
    """Button callback: make K the clustering's K (switching to k-means when the method has no K)."""
    s = settings.settings()
    if s["method"] not in settings.NEEDS_K:
        s["method"] = "kmeans"
    s["k"] = int(k)
    st.session_state["k_applied"] = f"K = {int(k)} ({source}) is now the clustering's K: see Cluster, Gallery, Backbones."


st.title("How many groups?")
folder = sidebar.folder()
images = current.images_or_explain(folder, need=3, why=" (K is estimated between 2 and N - 1)")
if images is not None:
    bb = settings.primary_backbone()
    shown = current.clustering(images)
    st.caption(f"Estimated on the **{bb}** embeddings. True number of labels: "
               f"{len(set(images.labels)) if images.labels else 'unknown'}. Current clustering: {shown.text}.")
    if shown.method in settings.AUTOMATIC:  # the estimate the automatic clustering used: one answer on both pages
        result = calls.auto_result(folder, bb, shown.method, shown.params_json).estimate
    else:
        result = calls.k_result(folder, bb)
    lo, hi = current.k_range(images)
    left, right = st.columns([1, 2])
    left.metric("Consensus K", result.k if result.clear else "no clear K")
    if result.clear:
        st.caption(result.note)
    else:
        st.warning(f"This data has no clear K. {result.note}", icon=":material/warning:")
    choices = {}
    if result.clear and result.k is not None:
        choices[f"consensus: K = {int(result.k)}"] = (int(result.k), "consensus")
    for row in result.table.itertuples():
        if pd.notna(row.k) and lo <= int(row.k) <= hi:
            choices[f"{row.method}: K = {int(row.k)}"] = (int(row.k), row.method)
    with right:
        if choices:
            pick = st.selectbox("Use this estimate for the clustering", list(choices), key="k_pick")
            st.button(f"Cluster with K = {choices[pick][0]}", key="apply_k", type="primary", on_click=_apply,
                      args=choices[pick], help="Sets K on the Cluster page (k-means if the method has no K).")
        else:
            st.caption(f"No method gave a K between {lo} and {hi}.")
    if "k_applied" in st.session_state:
        st.success(st.session_state.pop("k_applied"), icon=":material/check:")
    st.dataframe(result.table.drop(columns=["bootstrap"]), hide_index=True, key="k_table")
    st.subheader("Each method's evidence")
    st.plotly_chart(kit.plot.k_curves(result), key="k_curves")
    est = result.estimates.get("dendrogram_gap")
    if est is not None:
        st.subheader("Image dendrogram (Ward)")
        shown_result = current.current_result(folder)
        k_now = (int(len(set(shown_result.labels.tolist()) - {-1})) if shown_result is not None
                 else current.current_k(images))
        k_now = max(2, min(k_now, len(images) - 1))
        st.caption(f"The dashed line cuts the tree into K = {k_now} groups, the number of clusters of the current "
                   f"clustering ({shown.text}).")
        st.plotly_chart(kit.plot.dendrogram(est.detail["linkage"], p=40, cut=k_now), key="image_dendrogram")
    st.subheader("Word-vector dendrogram")
    st.caption("Each photo's top ImageNet label becomes a GloVe vector; labels are grouped by meaning.")
    if kit.backbones.get(bb).can_classify:
        wv = calls.word_vector_k(folder, bb)
        st.metric("K from word vectors", wv.k)
        if lo <= int(wv.k) <= hi:
            st.button(f"Cluster with K = {int(wv.k)} (word vectors)", key="apply_wv_k", on_click=_apply,
                      args=(int(wv.k), "word vectors"))
        st.plotly_chart(kit.plot.dendrogram(wv.linkage, labels=[n.split(",")[0] for n in wv.labels], p=60,
                                            orientation="left", cut=int(wv.k)), key="word_dendrogram")
        with st.expander("The groups of labels"):
            for i, g in enumerate(wv.groups):
                st.markdown(f"**{i + 1}.** " + ", ".join(x.split(",")[0] for x in g[:25]))
    else:
        st.info(f"{bb} cannot classify, so the word-vector method is not available for it.")
