import json

import pandas as pd
import streamlit as st

import kit
import state

st.title("Compare backbones")
folder = state.folder()
if state.need_folder(folder):
    images = state.load_images(folder)
    chosen = st.session_state["backbones"]
    method, params_json = state.cluster_choice(images)
    left, middle, right = st.columns([2, 2, 1.4])
    proj = left.radio("Projection", ["tsne", "umap", "pca"], horizontal=True, key="projection",
                      format_func={"tsne": "t-SNE", "umap": "UMAP", "pca": "PCA"}.get)
    colour_by = middle.radio("Colour by", ["cluster", "true label"] if images.labels else ["cluster"],
                             horizontal=True, key="colour_by")
    too_many = len(images.paths) > kit.plot.THUMBNAIL_POINTS_MAX
    hover_photos = right.toggle("Photos on hover", key="hover_photos", disabled=too_many,
                                help=f"Not above {kit.plot.THUMBNAIL_POINTS_MAX} photos: the chart carries every "
                                     "thumbnail." if too_many else
                                "Show each point's photo when the pointer rests on it (Vega-Lite chart). "
                                "Off: a WebGL chart where clicked or lassoed points show their photos.")
    rows = []
    embs = {}
    for bb in chosen:
        embs[bb] = state.embeddings(folder, bb)
        s = state.scores(folder, bb, method, params_json)
        rows.append({"backbone": bb, **s})
    if rows:
        table = pd.DataFrame(rows)
        cols = ["backbone", "n_clusters", "nmi", "ari", "bcubed_f", "pairwise_f", "silhouette",
                "calinski_harabasz", "davies_bouldin"]
        cols = [c for c in cols if c in table.columns]
        st.subheader(f"Scores ({method}, {state.params_text(json.loads(params_json))})")
        formats = {c: st.column_config.NumberColumn(format="%.3f") for c in cols[2:]}
        formats["n_clusters"] = st.column_config.NumberColumn("clusters", format="%d")
        st.dataframe(table[cols], hide_index=True, key="scores", column_config=formats)
        if images.labels is None:
            st.caption("No true labels: only internal scores (silhouette, Calinski-Harabasz, Davies-Bouldin).")
        plots = st.columns(len(chosen))
        for col, bb in zip(plots, chosen):
            emb = embs[bb]
            labels = state.cluster_labels(folder, bb, method, params_json)
            colour = labels if colour_by == "cluster" else emb.labels
            coords = state.projection(folder, bb, proj)
            if hover_photos and not too_many:
                other = {"cluster": ("true label", emb.labels), "true label": ("cluster", labels)}[colour_by]
                fields = {"file": [p.split("/")[-1] for p in emb.paths]}
                if other[1] is not None:
                    fields[other[0]] = other[1]
                chart = kit.plot.thumbnail_scatter(coords, state.thumbnail_uris(tuple(emb.paths)), color=colour,
                                                   fields=fields, title=bb, color_title=colour_by)
                col.altair_chart(chart, key=f"thumbs_{bb}", width="stretch")
                col.caption("Rest the pointer on a point to see its photo.")
                continue
            hover = [f"{p.split('/')[-1]}<br>label: {emb.labels[i] if emb.labels else '-'}<br>cluster: {labels[i]}"
                     for i, p in enumerate(emb.paths)]
            fig = kit.plot.scatter(coords, color=colour, hover=hover, title=bb, color_title=colour_by)
            event = col.plotly_chart(fig, key=f"scatter_{bb}", on_select="rerun", selection_mode=("points", "lasso"))
            picked = [pt["customdata"] for pt in (event.selection.points if event and event.selection else [])
                      if "customdata" in pt]
            if picked:
                col.caption(f"{len(picked)} selected")
                col.image([state.thumbnail(emb.paths[int(i)]) for i in picked[:24]], width=80)
            else:
                col.caption("Click or lasso points to see their photos.")
