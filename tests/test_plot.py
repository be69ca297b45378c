"""The figures added for the tutorial notebooks: k_curve, projection_grid, cluster_panel, heatmap."""
import numpy as np
import pandas as pd
import pytest

import kit
from kit.k import KEstimate


def test_k_curve_marks_the_answer_and_draws_error_bars():
    est = KEstimate("gap", 3, pd.DataFrame({"k": [2, 3, 4], "score": [0.1, 0.5, 0.4], "sk": [0.05, 0.05, 0.05]}))
    fig = kit.plot.k_curve(est)
    assert list(fig.data[0].x) == [2, 3, 4] and list(fig.data[0].error_y.array) == [0.05] * 3
    assert list(fig.data[1].x) == [3]
    assert fig.layout.title.text == "gap: k = 3"


def test_projection_grid_shares_colours_and_one_legend():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(12, 2)), rng.normal(size=(12, 2))
    colour = [0, 1, -1] * 4
    fig = kit.plot.projection_grid({"t-SNE": a, "UMAP": b}, color=colour)
    assert len(fig.data) == 6  # 3 colour values x 2 panels
    assert sum(t.showlegend for t in fig.data) == 3
    assert {t.name for t in fig.data} == {"0", "1", "noise"}
    with pytest.raises(ValueError, match="same N rows"):
        kit.plot.projection_grid({"a": a, "b": b[:5]})


def test_cluster_panel_draws_the_chosen_precomputed_result():
    coords = {"bb": np.arange(20, dtype=float).reshape(10, 2)}
    labelings = {("bb", "kmeans", 2): np.r_[np.zeros(5), np.ones(5)].astype(int),
                 ("bb", "hdbscan", None): np.r_[np.zeros(8), -np.ones(2)].astype(int)}
    scores = {("bb", "kmeans", 2): {"nmi": 0.5, "ari": 0.25}}
    fig = kit.plot.cluster_panel("bb", 2, "kmeans", coords, labelings, scores)
    assert fig.layout.title.text == "bb · kmeans · K=2 · 2 clusters · NMI 0.50 · ARI 0.25"
    title = kit.plot.cluster_panel("bb", 7, "hdbscan", coords, labelings).layout.title.text
    assert "K not used" in title and "noise 20%" in title
    with pytest.raises(KeyError, match="no labeling"):
        kit.plot.cluster_panel("bb", 3, "kmeans", coords, labelings)


def test_cluster_panel_works_as_an_ipywidgets_interactive_target():
    widgets = pytest.importorskip("ipywidgets")
    coords = {"a": np.zeros((4, 2)), "b": np.ones((4, 2))}
    labelings = {(bb, "kmeans", k): np.arange(4) % k for bb in coords for k in (2, 3)}
    slider = widgets.IntSlider(value=2, min=2, max=3)
    panel = widgets.interactive(kit.plot.cluster_panel, backbone=widgets.Dropdown(options=["a", "b"]), k=slider,
                                method=widgets.fixed("kmeans"), coords=widgets.fixed(coords),
                                labelings=widgets.fixed(labelings), scores=widgets.fixed(None),
                                hover=widgets.fixed(None))
    assert "K=2" in panel.result.layout.title.text
    slider.value = 3
    assert "K=3 · 3 clusters" in panel.result.layout.title.text


def test_heatmap_orders_rows_and_columns():
    M = np.arange(9, dtype=float).reshape(3, 3)
    fig = kit.plot.heatmap(M, order=[2, 0, 1])
    assert np.array_equal(np.asarray(fig.data[0].z), M[np.ix_([2, 0, 1], [2, 0, 1])])
    with pytest.raises(ValueError, match="square"):
        kit.plot.heatmap(np.zeros((2, 3)))


def test_image_grid_renders_png_for_jupyter_without_pyplot(tmp_path):
    import pickle
    import subprocess
    import sys

    # a user's global MPLBACKEND=Agg must not turn figures into "<Figure ...>" text in Jupyter
    code = """
import io, pickle, sys
import numpy as np
from PIL import Image
import kit.plot
imgs = [np.full((10, 10, 3), v, np.uint8) for v in (0, 128, 255)]
fig = kit.plot.image_grid(imgs, titles=["a", "b", "c"], columns=2, marks=[False, True, False])
assert "matplotlib.pyplot" not in sys.modules
assert len(fig.axes) == 4  # 2 x 2 grid, the last one empty and hidden
png = Image.open(io.BytesIO(fig._repr_png_()))
assert png.format == "PNG" and png.size[0] > 100
assert np.asarray(png.convert("L")).std() > 10  # the tiles and the red frame are drawn
again = pickle.loads(pickle.dumps(fig))  # figures can go through st.cache_data, joblib, multiprocessing
assert type(again) is type(fig) is kit.plot.ImageFigure
print("ok")
"""
    import os
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "MPLBACKEND": "Agg"})
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]


def test_thumbnail_scatter_puts_photos_in_the_tooltip(coffee_and_cat):
    uri = kit.plot.image_uri(coffee_and_cat[0], size=48)
    assert uri.startswith("data:image/jpeg;base64,")
    import base64
    import io

    from PIL import Image
    thumb = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert max(thumb.size) == 48
    coords = np.array([[0, 0], [1, 1], [2, 0]], float)
    chart = kit.plot.thumbnail_scatter(coords, [uri] * 3, color=[0, -1, 1], fields={"file": ["a", "b", "c"]},
                                       color_title="true label")
    spec = chart.to_dict()
    assert [t["title"] for t in spec["encoding"]["tooltip"]] == ["image", "file", "true label"]
    assert spec["encoding"]["x"]["scale"]["zero"] is False  # coordinates are not squeezed towards 0
    # the same colours as the Plotly scatter, noise in grey
    plotly_colours = {t.name: t.marker.color for t in kit.plot.scatter(coords, color=[0, -1, 1]).data}
    scale = spec["encoding"]["color"]["scale"]
    assert dict(zip(scale["domain"], scale["range"])) == plotly_colours
    with pytest.raises(ValueError, match="one per point"):
        kit.plot.thumbnail_scatter(coords, [uri] * 2)
    # titles that Vega-Lite would misread or that clash with the chart's own columns are shown as given
    odd = kit.plot.thumbnail_scatter(coords, [uri] * 3, color=[1, "1", 2], fields={"x": [7, 8, 9]},
                                     color_title="label.v2").to_dict()
    data = next(iter(odd["datasets"].values()))
    assert [row["px"] for row in data] == [0.0, 1.0, 2.0] and [row["f0"] for row in data] == ["7", "8", "9"]
    assert odd["encoding"]["color"]["scale"]["domain"] == ["1", "2"]
    with pytest.raises(ValueError, match="at most"):
        kit.plot.thumbnail_scatter(np.zeros((kit.plot.THUMBNAIL_POINTS_MAX + 1, 2)), [uri])
