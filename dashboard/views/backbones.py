from functools import partial

import pandas as pd
import streamlit as st

import kit

import calls
import current
import settings
import sidebar

SHOWN_MAX = 60


def _selected(key: str, paths: list) -> None:
    """Plot callback: the points picked in one backbone's plot become the selection every plot highlights."""
    event = st.session_state.get(key)
    points = event.selection.points if event is not None and event.selection else []
    settings.put("selected", [paths[int(pt["customdata"])] for pt in points if "customdata" in pt])


def _table(slot, rows: list) -> None:
    table = pd.DataFrame(rows)
    cols = [k for k in ["backbone", "n_clusters", "nmi", "ari", "bcubed_f", "pairwise_f", "silhouette",
                        "calinski_harabasz", "davies_bouldin"] if k in table.columns]
    formats = {k: st.column_config.NumberColumn(format="%.3f") for k in cols[2:]}
    formats["n_clusters"] = st.column_config.NumberColumn("clusters", format="%d")
    slot.dataframe(table[cols], hide_index=True, column_config=formats)


st.title("Compare backbones")
folder = sidebar.folder()
images = current.images_or_explain(folder)
chosen = settings.get("backbones")
if images is not None and not chosen:
    st.info("Choose at least one backbone in the sidebar.")
elif images is not None:
    c = current.clustering(images)
    left, middle, right = st.columns([2, 2, 1.4])
    proj = left.radio("Projection", ["tsne", "umap", "pca"], horizontal=True,
                      **settings.bind("projection", default="tsne"),
                      format_func={"tsne": "t-SNE", "umap": "UMAP", "pca": "PCA"}.get)
    colour_options = ["cluster", "true label"] if images.labels else ["cluster"]
    colour_by = middle.radio("Colour by", colour_options, horizontal=True, **settings.bind(
        "colour_by", default="cluster", value=None if settings.get_or("colour_by", "cluster") in colour_options
        else "cluster"))
    too_many = len(images.paths) > kit.plot.THUMBNAIL_POINTS_MAX
    hover_photos = right.toggle("Photos on hover", **settings.bind("hover_photos", default=False), disabled=too_many,
                                help=f"Not above {kit.plot.THUMBNAIL_POINTS_MAX} photos: the chart carries every "
                                     "thumbnail." if too_many else
                                "Show each point's photo when the pointer rests on it (Vega-Lite chart). "
                                "Off: a WebGL chart where clicked or lassoed points show their photos.")
    # the recommended clustering is one clustering of three backbones together: every plot is coloured by it (the
    # clustering every page shows), while the table scores Automatic on each backbone alone, so that it still
    # compares backbones, with the recommended clustering's own scores in its first row
    recommended = c.method == settings.RECOMMENDED
    per_backbone = "auto" if recommended else c.method
    st.subheader(f"Scores ({settings.METHODS['auto'] + ' on each backbone' if recommended else c.text})")
    table_slot = st.empty()
    note_slot = st.empty()
    if recommended:
        st.caption("The plots are coloured by the recommended clustering (EfficientNet-Lite0, 1 and 2 together, the "
                   "one every page shows); the table scores Automatic on each backbone's own embeddings, so that "
                   "the backbones can be compared, and the recommended clustering in its first row.")
    text_backbones = [b for b in chosen if kit.backbones.has_text(b)]
    if text_backbones:  # CLIP, SigLIP: a query in words selects the photos that match it best
        query = st.text_input(f"Find photos in words ({text_backbones[0]}): the 20 best matches are selected and "
                              f"highlighted in every plot", key="backbones_query", placeholder="a red dress").strip()
        if query and query != st.session_state.get("backbones_query_done"):
            hits = calls.text_search(folder, text_backbones[0], query, k=20)
            settings.put("selected", hits["path"].tolist())
            st.session_state["backbones_query_done"] = query
    selected = set(settings.get("selected"))
    rows, undefined = [], None
    plots = st.columns(len(chosen))
    primary = settings.primary_backbone()
    for col, bb in zip(plots, chosen):  # each plot appears as soon as its backbone's embeddings exist
        emb = calls.embeddings(folder, bb, where=col)
        if len(emb.vectors) < settings.MIN_PHOTOS:
            col.warning(f"{bb}: fewer than {settings.MIN_PHOTOS} photos could be embedded.")
            continue
        mappable = len(emb.vectors) >= 3
        coords = calls.projection(folder, bb, proj, where=col) if mappable else None
        chart_slot = col.empty()
        if mappable and not (hover_photos and not too_many) and not calls.is_clustered(folder, bb, c.method,
                                                                                      c.params_json):
            # the map first, coloured by the true labels (when known), while the clustering is computed
            chart_slot.plotly_chart(kit.plot.scatter(coords, color=emb.labels, title=f"{bb} (clustering...)",
                                                     color_title="true label" if emb.labels else None),
                                    key=f"first_scatter_{bb}")
        labels = calls.cluster_labels(folder, bb, c.method, c.params_json)
        bb_scores = calls.scores(folder, bb, per_backbone, c.params_json)
        if bb == primary and not recommended:  # hand edits (Curate page) are of the primary backbone's clustering
            result = current.current_result(folder)
            if result is not None and result.edited:
                labels, bb_scores = result.labels, result.scores
        rows.append({"backbone": bb, **bb_scores})
        undefined = undefined or calls.undefined_reason(folder, bb, per_backbone, c.params_json)
        _table(table_slot, rows)
        colour = labels if colour_by == "cluster" else emb.labels
        if not mappable:
            col.info(f"{bb}: a map needs at least 3 photos; the scores above are computed.")
            continue
        if hover_photos and not too_many:
            other = {"cluster": ("true label", emb.labels), "true label": ("cluster", labels)}[colour_by]
            fields = {"file": [p.split("/")[-1] for p in emb.paths]}
            if other[1] is not None:
                fields[other[0]] = other[1]
            chart = kit.plot.thumbnail_scatter(coords, calls.thumbnail_uris(tuple(emb.paths)), color=colour,
                                               fields=fields, title=bb, color_title=colour_by)
            chart_slot.altair_chart(chart, key=f"thumbs_{bb}", width="stretch")
            col.caption("Rest the pointer on a point to see its photo.")
            continue
        hover = [f"{p.split('/')[-1]}<br>label: {emb.labels[i] if emb.labels else '-'}<br>cluster: {labels[i]}"
                 for i, p in enumerate(emb.paths)]
        highlight = [i for i, p in enumerate(emb.paths) if p in selected] if selected else None
        fig = kit.plot.scatter(coords, color=colour, hover=hover, title=bb, color_title=colour_by,
                               highlight=highlight)
        chart_slot.plotly_chart(fig, key=f"scatter_{bb}", on_select=partial(_selected, f"scatter_{bb}", emb.paths),
                                selection_mode=("points", "lasso"))
    if recommended and rows:  # after the plots, so that the first map never waits for three backbones
        result = current.current_result(folder)
        if result is not None:
            name = "recommended (" + "+".join(b.replace("efficientnet_", "") for b in kit.RECOMMENDED_BACKBONES) + ")"
            rows.insert(0, {"backbone": name, **result.scores})
            _table(table_slot, rows)
    if undefined:
        note_slot.warning(f"External scores (NMI, ARI, BCubed...) are undefined here: {undefined}",
                          icon=":material/help:")
    elif images.labels is None:
        note_slot.caption("No true labels: only internal scores (silhouette, Calinski-Harabasz, Davies-Bouldin).")
    if not hover_photos or too_many:
        picked = [p for p in images.paths if p in selected]
        if picked:
            st.subheader(f"Selected: {len(picked)} photo{'s' if len(picked) != 1 else ''}")
            st.caption(("Highlighted in every plot. " if len(chosen) > 1 else "") +
                       (f"Showing the first {SHOWN_MAX} of {len(picked)}." if len(picked) > SHOWN_MAX else
                        f"All {len(picked)} shown."))
            shown = picked[:SHOWN_MAX]
            st.image([calls.thumbnail(p) for p in shown], width=80, caption=[p.split("/")[-1] for p in shown])
            st.button("Clear the selection", key="clear_selection", on_click=settings.put, args=("selected", []))
        else:
            st.caption("Click or lasso points in any plot: the same photos are highlighted in every plot and shown "
                       "here.")
