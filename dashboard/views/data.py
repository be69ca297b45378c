import streamlit as st

import kit
import state

st.title("Data")
folder = state.folder()
if state.need_folder(folder):
    images = state.load_images(folder)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Images", len(images))
    c2.metric("Labels", len(set(images.labels)) if images.labels else "none")
    c3.metric("Unreadable", len(images.unreadable))
    c4.metric("Duplicates", len(images.duplicates))
    st.caption(f"Folder: `{folder}`")
    if images.labels:
        st.plotly_chart(kit.plot.bar(images.label_counts(), title="Images per label", x_title="label"),
                        key="label_counts")
    st.subheader("Thumbnails")
    per_label = st.slider("Thumbnails per label", 1, 12, 6, key="thumbs_per_label")
    groups = {}
    for i, p in enumerate(images.paths):
        groups.setdefault(images.labels[i] if images.labels else "all", []).append(p)
    for label, paths in sorted(groups.items()):
        st.markdown(f"**{label}** ({len(paths)})")
        st.image([state.thumbnail(p) for p in paths[:per_label]], width=110)
    st.subheader("Unreadable files")
    if len(images.unreadable):
        st.dataframe(images.unreadable, hide_index=True, key="unreadable")
    else:
        st.success("Every image could be read.")
    if len(images.duplicates):
        st.subheader("Byte-identical duplicates")
        st.dataframe(images.duplicates, hide_index=True, key="duplicates")
