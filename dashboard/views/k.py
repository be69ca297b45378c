import streamlit as st

import kit
import state

st.title("How many groups?")
folder = state.folder()
if state.need_folder(folder):
    images = state.load_images(folder)
    bb = state.primary_backbone()
    st.caption(f"Estimated on the **{bb}** embeddings. True number of labels: "
               f"{len(set(images.labels)) if images.labels else 'unknown'}.")
    result = state.k_result(folder, bb)
    st.metric("Consensus K", result.k if result.clear else "no clear K")
    if result.clear:
        st.caption(result.note)
    else:
        st.warning(f"This data has no clear K. {result.note}", icon=":material/warning:")
    st.dataframe(result.table.drop(columns=["bootstrap"]), hide_index=True, key="k_table")
    st.subheader("Each method's evidence")
    st.plotly_chart(kit.plot.k_curves(result), key="k_curves")
    est = result.estimates.get("dendrogram_gap")
    if est is not None:
        st.subheader("Image dendrogram (Ward)")
        st.plotly_chart(kit.plot.dendrogram(est.detail["linkage"], p=40), key="image_dendrogram")
    st.subheader("Word-vector dendrogram")
    st.caption("Each photo's top ImageNet label becomes a GloVe vector; labels are grouped by meaning.")
    if kit.backbones.get(bb).can_classify:
        wv = state.word_vector_k(folder, bb)
        st.metric("K from word vectors", wv.k)
        st.plotly_chart(kit.plot.dendrogram(wv.linkage, labels=[n.split(",")[0] for n in wv.labels], p=60,
                                            orientation="left"), key="word_dendrogram")
        with st.expander("The groups of labels"):
            for i, g in enumerate(wv.groups):
                st.markdown(f"**{i + 1}.** " + ", ".join(x.split(",")[0] for x in g[:25]))
    else:
        st.info(f"{bb} cannot classify, so the word-vector method is not available for it.")
