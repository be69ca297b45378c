"""An embedding store of any size (kit.scale): a map fitted on a sample with every row placed on
it, k-means trained on a sample and assigned partition by partition, photos shown only for what is selected."""
import streamlit as st

import kit

import calls
import settings
import widgets

SHOWN_MAX = 48

st.title("Embedding store")
st.caption("A store made by `python -m kit embed DIR --store OUT` (or `kit.embed(..., store=OUT)`) can hold millions "
           "of photos. Its vectors are never all in memory here: the map and k-means are fitted on a sample and "
           "every row is placed partition by partition.")
path = st.text_input("Store folder or URL", placeholder="/path/to/photos.store or s3://bucket/photos.store",
                     **settings.bind("store_path", default=""))
if not path:
    st.info("Give the folder of an embedding store to explore it.", icon=":material/database:")
    st.stop()
spaces = calls.store_backbones(path)
if spaces is None:
    st.warning(f"`{path}` is not an embedding store the kit made (no `.kit-store` marker, or no such folder). "
               "Make one with `python -m kit embed DIR --store OUT`.", icon=":material/error:")
    st.stop()
if spaces.empty:
    st.info(f"`{path}` is an embedding store with no rows yet.")
    st.stop()
st.dataframe(spaces[["backbone", "dim", "dtype", "partitions", "rows"]], hide_index=True, key="store_spaces")
backbones = spaces["backbone"].tolist()
if settings.get_or("store_backbone", None) not in backbones:
    settings.put("store_backbone", backbones[0])
bb = st.selectbox("Backbone", backbones, **settings.bind("store_backbone"))
n_rows = int(spaces.loc[spaces["backbone"] == bb, "rows"].iloc[0])

left, mid, right = st.columns(3)
method = left.radio("Map", ["pca", "umap"], horizontal=True, format_func={"pca": "PCA", "umap": "UMAP"}.get,
                    **settings.bind("store_map", default="pca"),
                    help="Fitted on the sample below, then every row is placed on it (UMAP is slower per row).")
sample_size = mid.select_slider("Sample", [2_000, 5_000, 10_000, 20_000, 50_000],
                                **settings.bind("store_sample", default=10_000),
                                help="Rows the map and k-means are fitted on.")
k_max = max(2, min(200, n_rows))
k_shown = min(max(2, settings.get_or("store_k", 10) or 10), k_max)
k = right.slider("k-means K", 2, k_max, **settings.bind("store_k", value=k_shown, default=10))
if n_rows < 2:
    st.warning("The store needs at least 2 rows to cluster.")
    st.stop()

table = calls.store_view(path, bb, method, int(sample_size), int(k))
sampled = min(int(sample_size), n_rows)
st.caption(f"{n_rows:,} photos; map ({method.upper()}) and k-means fitted on a sample of {sampled:,}, "
           f"every photo placed on them. Above {kit.plot.SCATTER_MAX_POINTS:,} points the map shows photos per "
           "cell instead of points.")
coords = table[["x", "y"]].to_numpy()
colour = table["cluster"].to_numpy()
hover = [p.split("/")[-1] for p in table["path"]]
fig = kit.plot.scatter(coords, color=colour, hover=hover, title=bb, color_title="cluster")
density = fig.data and type(fig.data[0]).__name__ == "Heatmap"


def _selected(key):
    points = st.session_state[key].selection.get("points", [])
    settings.put("store_selected", sorted({int(p["customdata"]) for p in points if "customdata" in p}))


if density:
    st.plotly_chart(fig, key="store_density")
else:
    st.plotly_chart(fig, key="store_scatter", on_select=lambda: _selected("store_scatter"),
                    selection_mode=("points", "lasso"))

sizes = table.groupby("cluster").size().rename("photos").reset_index()
if table["label"].notna().all():
    scores = kit.metrics.score(table["label"].tolist(), table["cluster"].to_numpy())
    st.write(f"Against the store's labels, on every row: NMI **{scores['nmi']:.3f}**, ARI **{scores['ari']:.3f}**.")
    sizes = sizes.merge(table.groupby("cluster")["label"].agg(lambda s: s.value_counts().index[0])
                        .rename("majority label").reset_index(), on="cluster")
st.subheader("Photos")
chosen = settings.get_or("store_selected", []) if not density else []
if chosen:
    rows = table.iloc[chosen[:SHOWN_MAX]]
    st.caption(f"{len(chosen)} selected on the map" + (f"; the first {SHOWN_MAX} shown." if len(chosen) > SHOWN_MAX
                                                        else "."))
else:
    c = st.selectbox("Cluster", sizes["cluster"].tolist(), key="store_cluster",
                     format_func=lambda c: f"cluster {c} ({int(sizes.loc[sizes.cluster == c, 'photos'].iloc[0]):,} "
                                           "photos)")
    members = table[table["cluster"] == c]
    rows = members.nsmallest(SHOWN_MAX, "distance")
    st.caption(f"The {len(rows)} photos of cluster {c} nearest its centre"
               + ("" if density else "; or lasso points on the map.") + " Only these thumbnails are loaded.")
widgets.photo_grid(rows["path"].tolist(), captions=[p.split("/")[-1] for p in rows["path"]], size=96)
with st.expander("Cluster sizes"):
    st.dataframe(sizes, hide_index=True, key="store_sizes")
