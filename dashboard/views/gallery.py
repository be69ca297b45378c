import numpy as np
import streamlit as st

import kit

import calls
import current
import settings
import sidebar
import widgets

OVERVIEW_PHOTOS = 6


def _photos(n) -> str:
    return f"{int(n)} photo{'s' if int(n) != 1 else ''}"

st.title("Gallery")
folder = sidebar.folder()
result = current.current_result(folder)
if result is not None:
    emb, labels, bb = result.embeddings, result.labels, result.backbone
    z = float(settings.get_or("gallery_z", 3.0) or 3.0)  # its slider is drawn with the cluster's page below
    scores = calls.outlier_table(folder, result, z)
    order = kit.inspect.gallery_order(emb.vectors, labels, outliers=scores["outlier"].to_numpy())
    top = None
    if emb.labels is None and kit.backbones.get(bb).can_classify:
        if st.toggle("Name the clusters by their photos' top ImageNet label", key="gallery_imagenet_names"):
            top = calls.top1_table(folder, bb)
    names = kit.inspect.cluster_names(labels, truth=emb.labels, top=top).set_index("cluster")
    words = None
    if kit.backbones.has_text(bb):  # CLIP, SigLIP: search in words, and names from the text tower
        query = st.text_input(f"Search the photos in words ({bb})", key="gallery_query",
                              placeholder="a red dress", help="The photos whose vectors are closest to the text's "
                              "vector in the backbone's shared image-text space (kit.search.by_text).")
        if query.strip():
            hits = calls.text_search(folder, bb, query.strip())
            st.caption(f"The {len(hits)} photos that best match \"{query.strip()}\", best first (cosine score).")
            captions = [f"{score:.3f} · {p.split('/')[-1]}" for score, p in zip(hits["score"], hits["path"])]
            widgets.photo_grid(hits["path"].tolist(), size=96, captions=captions)
        if st.toggle("Also name the clusters in words (ImageNet class names, by the backbone's text tower)",
                     key="gallery_text_names"):
            with st.spinner("Embedding the 1000 ImageNet class names (once per server)..."):
                words = calls.text_names(folder, bb, labels).set_index("cluster")

    def title(c) -> str:
        row = names.loc[c]
        if c < 0:
            return f"noise ({_photos(row['size'])})"
        named = f" · {row['name']} {row['share']:.0%}" if row["source"] != "id" else ""
        if words is not None and c in words.index:
            named += f" · “{words.loc[c, 'name']}”"
        return f"cluster {c}{named} ({_photos(row['size'])})"

    st.caption(f"{result.clustering.text} on **{bb}**. "
               + ("Names: the majority true label of each cluster and its share." if emb.labels else
                  "Names: the majority top ImageNet label of each cluster and its share." if top is not None else
                  "Clusters are numbered by size (no true labels to name them).")
               + (" In quotes: the ImageNet class name closest to the cluster's mean vector in the text space."
                  if words is not None else ""))
    with st.expander(f"Overview: all {int((names.index >= 0).sum())} clusters, "
                     f"{OVERVIEW_PHOTOS} most representative photos each", expanded=True):
        cells = st.columns(2)
        for n, c in enumerate(names.index):
            first = order[order["cluster"] == c].sort_values("rank").head(OVERVIEW_PHOTOS)
            cells[n % 2].markdown(f"**{title(c)}**")
            widgets.photo_grid([emb.paths[i] for i in first["index"]], size=72, where=cells[n % 2],
                             marked=np.flatnonzero(first["outlier"].to_numpy()))

    st.subheader("One cluster")
    clusters = names.index.tolist()
    if settings.get("gallery_cluster") not in clusters:
        settings.put("gallery_cluster", clusters[0])
    chosen = st.selectbox("Cluster", clusters, format_func=title, **settings.bind("gallery_cluster"))
    members = order[order["cluster"] == chosen]
    n_out = int(members["outlier"].sum())
    sort = st.radio("Order", ["representative", "outliers"], horizontal=True,
                    **settings.bind("gallery_sort", default="representative"),
                    format_func={"representative": "Most representative first",
                                 "outliers": "Outliers first"}.get)
    st.select_slider("Outlier threshold (robust z-score)", [1.5, 2.0, 2.5, 3.0, 3.5, 4.0],
                     **settings.bind("gallery_z", value=z, default=3.0),
                     help="A photo is an outlier when its distance to its 10th neighbour, or to its cluster's "
                          "centre, is more than z robust standard deviations above the median "
                          "(kit.curate.outlier_scores). Lower flags more photos, here and in the overview.")
    if sort == "representative":
        members = members.sort_values("rank")
    else:  # flagged first, then the least typical
        members = members.sort_values(["outlier", "rank"], ascending=False, kind="stable")
    if chosen < 0:
        st.caption("Noise: photos no cluster took, the ones closest to a cluster's centre first.")
    else:
        first = ("Representative first (closest to the cluster's centre)" if sort == "representative" else
                 "Outliers first, then the least typical")
        st.caption(f"{first}. Red frame and ⚠: the {n_out} outlier{'s' if n_out != 1 else ''} at z = {z:g} (far "
                   "from their neighbours or from the centre), marked wherever they are. Hover a photo for its file.")
    per_page = st.select_slider("Photos per page", [24, 48, 96, 192], **settings.bind("gallery_limit", default=48))
    pages = max(1, -(-len(members) // per_page))
    # a new cluster, order or page size starts at page 1 (the widget's key changes with them)
    page = (st.number_input(f"Page (of {pages})", 1, pages, 1, key=f"gallery_page_{chosen}_{sort}_{per_page}")
            if pages > 1 else 1)
    shown = members.iloc[(page - 1) * per_page: page * per_page]
    # the label first: a long file name is cut at the end of the caption, never the label
    captions = [("⚠ " if o else "") + (f"{emb.labels[i]} · " if emb.labels else "") + emb.paths[i].split("/")[-1]
                for i, o in zip(shown["index"], shown["outlier"])]
    widgets.photo_grid([emb.paths[i] for i in shown["index"]], captions=captions,
                     marked=np.flatnonzero(shown["outlier"].to_numpy()))
    st.caption(f"Photos {(page - 1) * per_page + 1}-{(page - 1) * per_page + len(shown)} of {len(members)}"
               + (f"; {int(shown['outlier'].sum())} of the {n_out} outliers are on this page." if n_out else "."))
    if chosen >= 0 and kit.backbones.get(bb).can_classify:
        st.subheader("Why were these grouped?")
        if st.toggle("Explain this cluster (ImageNet labels and CAMs of the representatives)", key="explain"):
            with st.spinner("Classifying the cluster's photos and computing CAMs..."):
                exp = kit.inspect.explain_cluster(emb, labels, chosen, n_members=4)
            left, right = st.columns([1, 2])
            left.dataframe(exp.labels.head(10), hide_index=True, key="explain_labels",
                           column_config={"fraction": st.column_config.ProgressColumn(min_value=0, max_value=1)})
            right.image(exp.cams.overlays, width=170, caption=[n.split(",")[0] for n in exp.cams.class_names])
