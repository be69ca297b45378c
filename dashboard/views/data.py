import streamlit as st

import kit

import calls
import current
import settings
import sidebar
import widgets

st.title("Data")
folder = sidebar.folder()
if folder is None:
    st.info("Choose images in the sidebar: the built-in photos, a folder, or a zip.")
else:
    images = calls.load_images(folder)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Images", len(images))
    c2.metric("Labels", len(set(images.labels)) if images.labels else "none")
    c3.metric("Unreadable", len(images.unreadable))
    c4.metric("Duplicates", len(images.duplicates))
    st.caption(f"Folder: `{folder}`")
    if len(images) < settings.MIN_PHOTOS:
        what = ("no photo could be read" if len(images.unreadable) else
                "no image files were found" if not len(images) else "only one photo could be read")
        st.error(f"Nothing to analyse: {what}. {current.found_text(images)} The analysis pages need at least "
                 f"{settings.MIN_PHOTOS} readable photos (JPEG, PNG, WebP, TIFF, BMP or GIF; sub-folders become "
                 "labels). Choose another folder in the sidebar or add photos to this one.",
                 icon=":material/folder_off:")
    if images.labels:
        st.plotly_chart(kit.plot.bar(images.label_counts(), title="Images per label", x_title="label"),
                        key="label_counts")
    if len(images):
        st.subheader("Thumbnails")
        per_label = st.slider("Thumbnails per label", 1, 12, **settings.bind("thumbs_per_label", default=6))
        groups = {}
        for i, p in enumerate(images.paths):
            groups.setdefault(images.labels[i] if images.labels else "all", []).append(p)
        for label, paths in sorted(groups.items()):
            st.markdown(f"**{label}** ({len(paths)})")
            st.image([calls.thumbnail(p) for p in paths[:per_label]], width=110)
    st.subheader("Unreadable files")
    if len(images.unreadable):
        st.caption("Files with an image extension that could not be decoded; they are left out of every analysis.")
        st.dataframe(images.unreadable, hide_index=True, key="unreadable")
    elif len(images):
        st.success("The image file could be read." if len(images) == 1 else
                   f"Every one of the {len(images)} image files could be read.")
    else:
        st.caption("No image files were found, so none could be read.")
    if images.ignored:
        with st.expander(f"{len(images.ignored)} other files ignored (not an image extension)"):
            st.dataframe({"path": images.ignored}, hide_index=True, key="ignored")
    if len(images.duplicates):
        st.subheader("Byte-identical duplicates")
        st.dataframe(images.duplicates, hide_index=True, key="duplicates")
    if len(images) >= settings.MIN_PHOTOS:
        st.subheader("Near-duplicates")
        backbone = (settings.get("backbones") or [kit.backbones.DEFAULT_BACKBONE])[0]
        st.caption(f"Different files that look almost the same: cosine similarity of their **{backbone}** "
                   "embeddings at or above the threshold. In each group the photo to keep (most pixels, then the "
                   "sharpest) comes first. Byte-identical copies are the exact list above.")
        if st.toggle("Find near-duplicates", **settings.bind("near_duplicates", default=False)):
            threshold = st.slider("Similarity threshold", 0.70, 1.0, step=0.01, format="%.2f",
                                  **settings.bind("near_dup_threshold", default=kit.curate.NEAR_DUPLICATE_THRESHOLD))
            emb = calls.embeddings(folder, backbone)
            table = kit.curate.near_duplicates(emb, threshold=threshold)
            if table.empty:
                st.success(f"No near-duplicates at similarity {threshold:.2f}.")
            else:
                n_groups = table.group.nunique()
                st.write(f"**{n_groups}** groups, **{len(table) - n_groups}** photos you could drop.")
                for g, rows in list(table.groupby("group"))[:12]:
                    captions = [("keep" if k else f"{s:.3f}") for k, s in zip(rows.keep, rows.similarity)]
                    widgets.photo_grid(rows.path.tolist(), captions=captions, size=110)
                if n_groups > 12:
                    st.caption(f"The first 12 of {n_groups} groups are shown; the table has them all.")
                st.dataframe(table, hide_index=True, key="near_duplicates_table")
