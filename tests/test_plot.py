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


# ------------------------------------------------------------------ axis titles, cut line, highlight
def test_k_curves_titles_every_axis():
    curve = lambda ys: pd.DataFrame({"k": [2, 3, 4], "score": ys})
    ests = {"silhouette": KEstimate("silhouette", 3, curve([0.1, 0.4, 0.2])),
            "gap": KEstimate("gap", 2, curve([0.5, 0.4, 0.3])),
            "davies_bouldin": KEstimate("davies_bouldin", 4, curve([2.0, 1.5, 1.0])),
            "my_method": KEstimate("my_method", 2, curve([1, 2, 3])),
            "hdbscan": KEstimate("hdbscan", 5)}  # no curve: no panel
    fig = kit.plot.k_curves(ests, columns=3)
    names = fig.layout.to_plotly_json()
    xs = {name: fig.layout[name].title.text for name in names if name.startswith("xaxis")}
    ys = {name: fig.layout[name].title.text for name in names if name.startswith("yaxis")}
    panels = ["", "2", "3", "4"]  # four curves: panels 1-4 of the 2 x 3 grid
    assert [xs[f"xaxis{p}"] for p in panels] == ["K"] * 4
    assert [ys[f"yaxis{p}"] for p in panels] == ["mean silhouette", "gap statistic", "Davies-Bouldin index", "score"]
    assert [a.text for a in fig.layout.annotations] == ["silhouette: k=3", "gap: k=2", "davies_bouldin: k=4",
                                                        "my_method: k=2"]
    assert kit.plot.k_curve(ests["gap"]).layout.yaxis.title.text == "gap statistic"


def test_k_curves_titles_the_axes_of_a_real_estimate():
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(120, n_features=5, centers=3, random_state=0)
    result = kit.k.estimate(X.astype(np.float32), k_range=(2, 6), n_bootstrap=0, reduce_to=None)
    fig = kit.plot.k_curves(result)
    n_panels = sum(len(e.curve) > 0 for e in result.estimates.values())
    layout = fig.layout.to_plotly_json()
    titled = [name for name, axis in layout.items() if name[1:5] == "axis" and axis.get("title", {}).get("text")]
    assert len(titled) == 2 * n_panels  # x and y of every panel


def _linkage():
    from scipy.cluster import hierarchy

    # single linkage of 0, 1, 5, 7, 20 on a line: merges at heights 1 (0-1), 2 (5-7), 4 ({0,1}-{5,7}), 13 (20)
    return hierarchy.linkage(np.array([[0.0], [1.0], [5.0], [7.0], [20.0]]), method="single")


@pytest.mark.parametrize("cut, height", [(2, (4 + 13) / 2), (3, (2 + 4) / 2), (4, (1 + 2) / 2)])
def test_dendrogram_cut_line_at_the_height_of_k_clusters(cut, height):
    from scipy.cluster import hierarchy

    Z = _linkage()
    assert Z[:, 2].tolist() == [1.0, 2.0, 4.0, 13.0]
    assert len(set(hierarchy.fcluster(Z, t=height, criterion="distance"))) == cut  # that height makes K clusters
    fig = kit.plot.dendrogram(Z, cut=cut)
    (line,) = fig.layout.shapes
    assert line.line.dash == "dash" and (line.y0, line.y1) == (height, height) and line.xref == "x domain"
    assert [a.text for a in fig.layout.annotations] == [f"K = {cut}"]
    left = kit.plot.dendrogram(Z, cut=cut, orientation="left")
    (vline,) = left.layout.shapes
    assert (vline.x0, vline.x1) == (height, height) and vline.yref == "y domain" and vline.line.dash == "dash"
    assert [a.text for a in left.layout.annotations] == [f"K = {cut}"]


def test_dendrogram_without_cut_and_bad_cuts():
    Z = _linkage()
    fig = kit.plot.dendrogram(Z)
    assert len(fig.layout.shapes) == 0 and len(fig.layout.annotations) == 0
    for bad in (1, 5, True, 2.5):
        with pytest.raises(ValueError, match=rf"cut={bad!r} must be .* from 2 to 4"):
            kit.plot.dendrogram(Z, cut=bad)


def _dendrogram_colours(fig):
    """(colours of the branches, colours of the leaf dots) of a kit.plot.dendrogram figure."""
    lines = [t.line.color for t in fig.data if t.mode == "lines"]
    dots = [list(t.marker.color) for t in fig.data if t.mode == "markers"]
    return lines, (dots[0] if dots else [])


@pytest.mark.parametrize("cut", [2, 3, 4])
def test_dendrogram_cut_at_k_shows_k_colours_and_grey_above(cut):
    """Issue 31: a tree cut at K is coloured in K groups (scipy's own colouring adds one more for the merges
    above the cut); a cluster of one leaf (20 here, for every cut) shows as its dot."""
    from kit.plot import NOISE_COLOUR

    lines, dots = _dendrogram_colours(kit.plot.dendrogram(_linkage(), cut=cut))
    assert len(set(dots)) == cut and NOISE_COLOUR not in dots
    assert lines.count(NOISE_COLOUR) == cut - 1  # the K - 1 merges above the cut
    assert set(lines) - {NOISE_COLOUR} <= set(dots)


def test_dendrogram_truncated_leaves_are_explained_and_coloured_by_cluster():
    from scipy.cluster import hierarchy
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(120, n_features=4, centers=3, random_state=0)
    Z = hierarchy.linkage(X, method="ward")
    fig = kit.plot.dendrogram(Z, p=12, cut=3)
    _, dots = _dendrogram_colours(fig)
    assert len(dots) == 12 and len(set(dots)) == 3
    assert "'(n)' is a branch of n leaves" in fig.layout.xaxis.title.text
    assert any(t.startswith("(") for t in fig.layout.xaxis.ticktext)
    left = kit.plot.dendrogram(Z, p=12, cut=3, orientation="left")
    assert "'(n)'" in left.layout.yaxis.title.text and len(set(_dendrogram_colours(left)[1])) == 3
    whole = kit.plot.dendrogram(Z, p=None)
    assert not whole.layout.xaxis.title.text and len(whole.layout.xaxis.ticktext) == 120
    lines, dots = _dendrogram_colours(whole)  # no cut, no threshold: one colour, no cluster dots
    assert len(set(lines)) == 1 and dots == []


def _points_by_index(fig):
    """customdata -> (trace number, marker) for every drawn point."""
    found = {}
    for t, trace in enumerate(fig.data):
        for c in trace.customdata:
            assert int(c) not in found, f"point {c} drawn twice"
            found[int(c)] = (t, trace.marker)
    return found


def test_scatter_highlight_draws_the_chosen_points_on_top():
    coords = np.arange(16, dtype=float).reshape(8, 2)
    colour = [0, 0, 1, 1, -1, 0, 1, -1]
    plain = kit.plot.scatter(coords, color=colour)
    assert sorted(_points_by_index(plain)) == list(range(8))
    assert all(t.marker.line.width is None for t in plain.data)

    fig = kit.plot.scatter(coords, color=colour, highlight=[1, 2, 4])
    points = _points_by_index(fig)
    assert sorted(points) == list(range(8))  # each point once, customdata = its index
    last_faded = max(t for t, trace in enumerate(fig.data) if trace.marker.opacity == pytest.approx(0.25))
    for i in range(8):
        t, marker = points[i]
        if i in (1, 2, 4):
            assert marker.line.color == "black" and marker.line.width >= 2 and marker.size > 6
            assert marker.opacity == 1.0
            assert t > last_faded  # drawn after every faded trace: on top
        else:
            assert marker.opacity == pytest.approx(0.25) and marker.size == 6 and marker.line.width is None
    # the same colours as without highlight, and one legend entry per colour value
    colours = {t.name: t.marker.color for t in plain.data}
    assert all(t.marker.color == colours[t.name] for t in fig.data)
    assert sorted(t.name for t in fig.data if t.showlegend is not False) == ["0", "1", "noise"]
    # a lasso that takes every photo of one value leaves the legend in the values' order (issue 27.15)
    everything_of_1 = kit.plot.scatter(coords, color=colour, highlight=[2, 3, 6])
    shown = sorted((t.legendrank, t.name) for t in everything_of_1.data if t.showlegend is not False)
    assert [name for _, name in shown] == [t.name for t in plain.data if t.showlegend is not False]
    assert sorted(name for _, name in shown) == ["0", "1", "noise"]
    # x, y stay with their point
    for trace in fig.data:
        np.testing.assert_array_equal(np.asarray(trace.x), coords[np.asarray(trace.customdata), 0])
    # a mask, an empty selection, 3-D, and a bad index
    masked = kit.plot.scatter(coords, color=colour, highlight=np.arange(8) < 2)  # points 0 and 1, both cluster 0
    assert list(masked.data[-1].customdata) == [0, 1] and masked.data[-1].marker.line.color == "black"
    assert len(masked.data) == 4  # three faded colours, one highlighted
    assert len(kit.plot.scatter(coords, color=colour, highlight=[]).data) == len(plain.data)
    fig3 = kit.plot.scatter(np.c_[coords, coords[:, :1]], highlight=[0])
    assert [t.type for t in fig3.data] == ["scatter3d", "scatter3d"] and fig3.data[1].marker.line.color == "black"
    with pytest.raises(ValueError, match=r"highlight=\[3, 8\] must hold point indices in 0..7"):
        kit.plot.scatter(coords, highlight=[3, 8])


def test_explanation_grid_shows_the_guided_gradient_once():
    from kit.inspect import Explanation

    grad = [np.full((8, 8, 3), 200, np.uint8), np.zeros((8, 8, 3), np.uint8)]
    guided = Explanation("guided_backprop", [None, None], [np.zeros((8, 8))] * 2, grad, np.array([1, 2]),
                         ["a, b", "c"], gradients=grad)
    fig = kit.plot.explanation_grid(guided, columns=2)
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["guided_backprop: a", "guided_backprop: c"]
    other = Explanation("cam", [None], [np.zeros((8, 8))], [grad[0]], np.array([1]), ["a"], gradients=[grad[1]])
    assert [ax.get_title() for ax in kit.plot.explanation_grid(other, columns=2).axes] == ["cam: a", "gradient"]


def test_density_counts_every_point_and_names_each_cell_by_its_majority():
    """Issue 14: a projection of 100k+ photos draws as photos per cell; counts and hover by hand on a 2 x 2 grid."""
    X = np.array([[0, 0], [0.1, 0.1], [0.2, 0], [1, 1], [0.9, 0.95], [0, 1]], float)
    labels = [3, 3, 7, 5, 5, 3]
    fig = kit.plot.density(X, color=labels, bins=2)
    heat = fig.data[0]
    counts = np.asarray(heat.customdata)
    assert counts.tolist() == [[3, 0], [1, 2]]  # rows are y: (low x, low y) 3 photos, (low x, high y) 1, high/high 2
    assert heat.text[0][0] == "cluster 3: 67%" and heat.text[1][1] == "cluster 5: 100%" and heat.text[0][1] == ""
    assert np.isnan(np.asarray(heat.z, float)[0, 1])  # empty cells stay blank
    assert counts.sum() == len(X)
    with pytest.raises(ValueError, match="'bins' parameter of density"):
        kit.plot.density(X, bins=1)
    with pytest.raises(ValueError, match=r"non-empty \(N, 2\)"):
        kit.plot.density(np.zeros((4, 3)))


def test_scatter_switches_to_density_above_the_measured_limit():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(kit.plot.SCATTER_MAX_POINTS + 1, 2))
    big = kit.plot.scatter(X, color=rng.integers(0, 3, len(X)))
    assert [type(t).__name__ for t in big.data] == ["Heatmap"]
    assert np.asarray(big.data[0].customdata).sum() == len(X)
    assert f"{kit.plot.SCATTER_MAX_POINTS:,}" in big.layout.title.text  # the figure says why it is a density view
    every = kit.plot.scatter(X[:5000], color=np.zeros(5000, int))
    assert {type(t).__name__ for t in every.data} == {"Scattergl"} and sum(len(t.x) for t in every.data) == 5000
    forced = kit.plot.scatter(X[:3000], max_points=None)
    assert sum(len(t.x) for t in forced.data) == 3000
    small_limit = kit.plot.scatter(X[:3000], max_points=1000)
    assert type(small_limit.data[0]).__name__ == "Heatmap"


# ------------------------------------------------------------------ titles and layout (issue 31, item 8)
def test_scores_bar_titles_its_axes_and_itself():
    table = pd.DataFrame({"backbone": ["a", "a", "b", "b"], "method": ["kmeans", "hdbscan"] * 2,
                          "nmi": [0.5, 0.4, 0.6, 0.3]})
    fig = kit.plot.scores_bar(table)
    assert fig.layout.xaxis.title.text == "backbone" and fig.layout.yaxis.title.text == "NMI"
    assert fig.layout.title.text == "NMI by backbone and method"
    assert fig.layout.legend.title.text == "method"
    long = table.melt(id_vars=["backbone", "method"], value_vars=["nmi"], var_name="score", value_name="value")
    fig = kit.plot.scores_bar(long, metric="value", by="method", color="score", y_title="score (1 = the folders)",
                              title="Scores of every method")
    assert fig.layout.yaxis.title.text == "score (1 = the folders)" and fig.layout.xaxis.title.text == "method"
    assert fig.layout.title.text == "Scores of every method"
    assert kit.plot.score_name("bcubed_f") == "BCubed F" and kit.plot.score_name("my_score") == "my score"


def test_scatter_titles_its_axes_when_asked():
    coords = np.arange(12, dtype=float).reshape(6, 2)
    fig = kit.plot.scatter(coords, x_title="principal component 1", y_title="principal component 2")
    assert fig.layout.xaxis.title.text == "principal component 1"
    assert fig.layout.yaxis.title.text == "principal component 2"
    assert fig.layout.xaxis.showticklabels is False
    assert kit.plot.scatter(coords).layout.xaxis.title.text is None  # t-SNE/UMAP axes mean nothing: no title


def test_projection_grid_can_say_what_was_projected():
    rng = np.random.default_rng(0)
    fig = kit.plot.projection_grid({"t-SNE": rng.normal(size=(6, 2)), "UMAP": rng.normal(size=(6, 2))},
                                   title="efficientnet_lite1: t-SNE and UMAP")
    assert fig.layout.title.text == "efficientnet_lite1: t-SNE and UMAP"
    assert fig.layout.margin.t >= 70  # room for the title above the panel titles
    assert kit.plot.projection_grid({"a": np.zeros((3, 2))}).layout.title.text is None


@pytest.mark.parametrize("n_curves", [3, 6, 9, 12])
def test_k_curves_rows_are_close_together_whatever_their_number(n_curves):
    """Issue 31: the gap between rows was a fixed share of the height (0.2 of 900 px for 3 rows: 180 px)."""
    curve = pd.DataFrame({"k": [2, 3, 4], "score": [0.1, 0.4, 0.2]})
    fig = kit.plot.k_curves([KEstimate("silhouette", 3, curve)] * n_curves, columns=3)
    rows = -(-n_curves // 3)
    plot_height = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    tops = sorted({tuple(fig.layout[f"yaxis{'' if i == 0 else i + 1}"].domain) for i in range(n_curves)},
                  reverse=True)
    assert len(tops) == rows
    panels = [(hi - lo) * plot_height for lo, hi in tops]
    gaps = [(tops[i][0] - tops[i + 1][1]) * plot_height for i in range(rows - 1)]
    assert all(200 <= p <= 260 for p in panels), panels  # every row the same height, in pixels
    assert all(50 <= g <= 90 for g in gaps), gaps  # room for "K" and the next title, no more


def test_explanation_grid_names_the_photo_in_every_title(tmp_path):
    from kit.inspect import Explanation

    img = np.zeros((8, 8, 3), np.uint8)
    cams = Explanation("cam", [str(tmp_path / "short.jpg"), str(tmp_path / ("x" * 40 + ".jpg"))],
                       [np.zeros((8, 8))] * 2, [img, img], np.array([1, 2]), ["jersey, T-shirt", "jean"])
    titles = [ax.get_title() for ax in kit.plot.explanation_grid(cams, columns=2).axes]
    assert titles[0] == "short.jpg\ncam: jersey"
    assert titles[1].endswith("\ncam: jean") and "…" in titles[1] and len(titles[1].split("\n")[0]) <= 24
    named = kit.plot.explanation_grid(cams, columns=2, names=["photo 1 (dress)", "photo 2 (pants)"])
    assert [ax.get_title() for ax in named.axes] == ["photo 1 (dress)\ncam: jersey", "photo 2 (pants)\ncam: jean"]
    with pytest.raises(ValueError, match="one per photo"):
        kit.plot.explanation_grid(cams, names=["only one"])
