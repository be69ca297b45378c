"""Figures from results. Every function takes results that were already computed and returns a figure
(Plotly ``go.Figure``, or Matplotlib ``Figure`` for image grids); nothing is recomputed or shown here."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ._utils.validation import _short_repr

PALETTE = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#EECA3B", "#B279A2", "#FF9DA6", "#9D755D",
           "#BAB0AC", "#1F77B4", "#2CA02C", "#D62728", "#9467BD", "#8C564B", "#E377C2", "#7F7F7F", "#BCBD22",
           "#17BECF", "#AEC7E8"]
NOISE_COLOUR = "#C8C8C8"


def _go():
    import plotly.graph_objects as go

    return go


def _sort_key(v):
    return (0, int(v)) if isinstance(v, (int, np.integer)) or (isinstance(v, str) and v.lstrip("-").isdigit()) \
        else (1, str(v))


def _colours(color) -> list:
    """(value, legend name, colour) for each distinct value, in display order; -1 is grey "noise"."""
    values = sorted(set(np.asarray(color, dtype=object).tolist()), key=_sort_key)
    return [(v, "noise", NOISE_COLOUR) if str(v) == "-1" else (v, str(v), PALETTE[i % len(PALETTE)])
            for i, v in enumerate(values)]


def image_uri(image, size: int = 80, quality: int = 80) -> str:
    """A small JPEG thumbnail as a ``data:`` URI (for tooltips): ``image`` is a path or an RGB array."""
    import base64
    import io

    from PIL import Image

    from .io import read_image

    arr = read_image(image, size=size, resize="pad") if not isinstance(image, np.ndarray) else image
    im = Image.fromarray(arr)
    if max(im.size) > size:
        im.thumbnail((size, size))
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


THUMBNAIL_POINTS_MAX = 5000


def thumbnail_scatter(coords, thumbnails, color=None, fields=None, title=None, color_title="cluster",
                      marker_size=40, height=420):
    """2-D scatter (Vega-Lite, through Altair) whose tooltip shows each point's photo.

    ``thumbnails``: one ``image_uri`` per point; ``color``: one value per point (-1 is grey noise, colours as in
    ``scatter``); ``fields``: extra tooltip rows (title -> one value per point). Plotly cannot put images in
    hover labels; Vega-Lite's tooltip shows a row titled ``image`` as a picture. Every thumbnail travels with
    the chart, so it takes at most ``THUMBNAIL_POINTS_MAX`` points; ``scatter`` (WebGL) takes any number.
    """
    import altair as alt

    coords = np.asarray(getattr(coords, "coords", coords))
    n = len(coords)
    if n > THUMBNAIL_POINTS_MAX:
        raise ValueError(f"thumbnail_scatter got {n} points; it embeds every photo and takes at most "
                         f"{THUMBNAIL_POINTS_MAX}: use scatter() (WebGL) or pass a sample")
    if len(thumbnails) != n:
        raise ValueError(f"thumbnails has {len(thumbnails)} entries for {n} points; give one per point")
    color = np.asarray(["all"] * n if color is None else color, dtype=object)
    table = _colours(color)
    names = {v: name for v, name, _ in table}
    domain, colours = [], []
    for _, name, colour in table:  # values that print alike (1 and "1") share one entry
        if name not in domain:
            domain.append(name)
            colours.append(colour)
    # internal column names: user titles may contain dots, brackets or spaces, or clash with x / y / image
    df = pd.DataFrame({"px": coords[:, 0], "py": coords[:, 1], "thumb": list(thumbnails),
                       "colour": [names[v] for v in color.tolist()]})
    tips = [alt.Tooltip("thumb:N", title="image")]
    for i, (key, values) in enumerate((fields or {}).items()):
        if len(values) != n:
            raise ValueError(f"fields[{key!r}] has {len(values)} entries for {n} points; give one per point")
        df[f"f{i}"] = [str(v) for v in values]
        tips.append(alt.Tooltip(f"f{i}:N", title=str(key)))
    tips.append(alt.Tooltip("colour:N", title=color_title))
    chart = alt.Chart(df, height=height, title=title or "").mark_circle(size=marker_size, opacity=0.85).encode(
        x=alt.X("px:Q", axis=None, scale=alt.Scale(zero=False)),
        y=alt.Y("py:Q", axis=None, scale=alt.Scale(zero=False)),
        color=alt.Color("colour:N", title=color_title, scale=alt.Scale(domain=domain, range=colours), sort=domain),
        tooltip=tips,
    )
    return chart.configure_view(strokeWidth=0)


def _highlight_mask(highlight, n) -> np.ndarray | None:
    """A boolean mask of the points to highlight (None: none asked, or an empty selection)."""
    if highlight is None:
        return None
    idx = np.asarray(list(highlight) if not isinstance(highlight, np.ndarray) else highlight)
    if idx.dtype == bool and idx.shape == (n,):  # a mask is taken as such
        idx = np.flatnonzero(idx)
    if idx.size == 0:
        return None
    if idx.ndim != 1 or idx.dtype.kind not in "iu" or idx.min() < 0 or idx.max() >= n:
        raise ValueError(f"highlight={_short_repr(highlight, 60)} must hold point indices in 0..{n - 1} (e.g. the customdata "
                         f"of a selection); got {idx.tolist()[:5]}{'...' if idx.size > 5 else ''}")
    mask = np.zeros(n, bool)
    mask[idx] = True
    return mask


HIGHLIGHT_FADE = 0.25
# Above this many 2-D points, scatter() draws a density view instead. Measured by bench/plot.py in headless
# Chromium (2 cores, no GPU): a WebGL scatter of 100,000 points drew in 1.1 s (3.3 MB of figure JSON, which a
# Streamlit page sends on every rerun), 300,000 in 2.5 s, 1,000,000 in 7.3 s; the density view of any of them in
# under 0.1 s from 1 MB.
SCATTER_MAX_POINTS = 100_000


def density(coords, color=None, bins: int = 200, title=None, color_title="cluster"):
    """A density view of a large 2-D projection: photos per cell of a ``bins x bins`` grid, on a log colour
    scale; with ``color`` (cluster or label per point), each cell's hover names its most frequent value and its
    share. The figure's size does not grow with N, so millions of points draw as fast as a thousand.
    """
    from numbers import Integral

    from ._utils.validation import Interval, validate_params

    validate_params({"bins": [Interval(Integral, 2, 2000, closed="both")]}, {"bins": bins}, "density")
    go = _go()
    coords = np.asarray(getattr(coords, "coords", coords), dtype=np.float64)
    if coords.ndim != 2 or coords.shape[1] != 2 or not len(coords):
        raise ValueError(f"coords must be a non-empty (N, 2) projection for a density view; got shape {coords.shape}")
    lo, hi = coords.min(0), coords.max(0)
    hi = np.where(hi > lo, hi, lo + 1.0)
    cell = np.minimum(((coords - lo) / (hi - lo) * bins).astype(np.int64), bins - 1)
    flat = cell[:, 1] * bins + cell[:, 0]  # row = y, column = x
    counts = np.bincount(flat, minlength=bins * bins).reshape(bins, bins)
    text = None
    if color is not None:
        codes, values = pd.factorize(np.asarray(color, dtype=object))
        if len(codes) != len(coords):
            raise ValueError(f"color has {len(codes)} values for {len(coords)} points; pass one per point")
        pairs = pd.DataFrame({"cell": flat, "value": codes}).value_counts().reset_index(name="n")
        top = pairs.sort_values("n", ascending=False, kind="stable").drop_duplicates("cell")
        words = np.full(bins * bins, "", dtype=object)
        totals = counts.ravel()[top["cell"].to_numpy()]
        words[top["cell"].to_numpy()] = [f"{color_title} {values[v]}: {n / t:.0%}"
                                        for v, n, t in zip(top["value"], top["n"], totals)]
        text = words.reshape(bins, bins)
    xs = lo[0] + (np.arange(bins) + 0.5) * (hi[0] - lo[0]) / bins
    ys = lo[1] + (np.arange(bins) + 0.5) * (hi[1] - lo[1]) / bins
    z = np.where(counts > 0, np.log10(np.maximum(counts, 1)) + 1, np.nan)  # empty cells stay blank
    fig = go.Figure(go.Heatmap(
        x=xs, y=ys, z=z, customdata=counts, text=text, colorscale="Viridis",
        colorbar=dict(title="photos", tickvals=[1, 2, 3, 4, 5, 6], ticktext=["1", "10", "100", "1k", "10k", "100k"]),
        hovertemplate="%{customdata} photos" + ("<br>%{text}" if text is not None else "") + "<extra></extra>"))
    fig.update_layout(title=title or f"{len(coords):,} photos (density: photos per cell)",
                      margin=dict(l=10, r=10, t=40, b=10), template="plotly_white", height=420,
                      xaxis=dict(showticklabels=False, title=None), yaxis=dict(showticklabels=False, title=None))
    return fig


def scatter(coords, color=None, hover=None, title=None, color_title="cluster", marker_size=6, customdata=None,
            highlight=None, max_points: int | None = SCATTER_MAX_POINTS, x_title=None, y_title=None):
    """2-D (or 3-D) WebGL scatter of a projection, one trace per colour value (noise -1 in grey).

    ``coords``: (N, 2|3) array or a ``kit.project.Projection``; ``color``: one value per point (cluster or
    label); ``hover``: one text per point; ``customdata``: one value per point that selections return (by
    default the point's index). ``highlight``: point indices (e.g. a selection, or one cluster's members) drawn
    on top, larger and outlined in black, while the other points fade (opacity 0.25); None (or empty): every
    point as usual. Each point is drawn once, so a selection returns it once.
    ``max_points``: above this many 2-D points the figure is :func:`density` instead (``SCATTER_MAX_POINTS``,
    measured by ``bench/plot.py``); None always draws every point.
    ``x_title``, ``y_title``: axis titles (e.g. ``"principal component 1"`` for PCA, whose axes mean something);
    None: no title (t-SNE and UMAP axes have no meaning). The tick labels stay hidden either way.
    """
    go = _go()
    coords = np.asarray(getattr(coords, "coords", coords))
    n = len(coords)
    if max_points is not None and n > max_points and coords.ndim == 2 and coords.shape[1] == 2:
        return density(coords, color=color, color_title=color_title,
                       title=(f"{title}: " if title else "") + f"{n:,} points, above the scatter limit of "
                                                               f"{max_points:,}: photos per cell")
    color = np.asarray(["all"] * n if color is None else color, dtype=object)
    hover = np.asarray([""] * n if hover is None else hover, dtype=object)
    custom = np.arange(n) if customdata is None else np.asarray(customdata)
    marked = _highlight_mask(highlight, n)
    fig = go.Figure()
    layers = [(None, np.ones(n, bool))] if marked is None else [("faded", ~marked), ("highlighted", marked)]
    for layer, in_layer in layers:  # the highlighted points come last: on top
        for rank, (v, name, colour) in enumerate(_colours(color)):
            m = (color == v) & in_layer
            if layer is not None and not m.any():
                continue
            is_noise = name == "noise"
            style = dict(size=marker_size, color=colour, opacity=0.5 if is_noise else 0.85)
            if layer == "faded":
                style["opacity"] = HIGHLIGHT_FADE
            elif layer == "highlighted":
                style.update(size=marker_size * 1.8, opacity=1.0, line=dict(color="black", width=2.5))
            trace = dict(mode="markers", name=name, marker=style, text=hover[m], customdata=custom[m],
                         hovertemplate="%{text}<extra>" + name + "</extra>", legendgroup=name,
                         legendrank=1000 + rank,  # the legend keeps the categories' order, whatever is highlighted
                         showlegend=layer != "highlighted" or not (color == v)[~marked].any())
            if coords.shape[1] == 3:
                fig.add_trace(go.Scatter3d(x=coords[m, 0], y=coords[m, 1], z=coords[m, 2], **trace))
            else:
                fig.add_trace(go.Scattergl(x=coords[m, 0], y=coords[m, 1], **trace))
    fig.update_layout(title=title, legend_title_text=color_title,
                      margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      xaxis=dict(showticklabels=False, title=x_title), yaxis=dict(showticklabels=False, title=y_title),
                      template="plotly_white", height=420)
    return fig


def bar(series: pd.Series, title=None, x_title=None, y_title="images"):
    """A bar chart of a Series (index -> value), e.g. counts per label or cluster sizes."""
    go = _go()
    fig = go.Figure(go.Bar(x=[str(i) for i in series.index], y=series.to_numpy(), marker_color=PALETTE[0]))
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, template="plotly_white", height=320,
                      margin=dict(l=10, r=10, t=40 if title else 10, b=10))
    return fig


def cluster_sizes(labels, title="Cluster sizes"):
    """Bar chart of cluster sizes (largest first; noise, if any, last and grey)."""
    labels = np.asarray(labels)
    counts = pd.Series(labels[labels >= 0]).value_counts()
    fig = bar(counts, title=title, x_title="cluster")
    if (labels < 0).any():
        fig.add_bar(x=["noise"], y=[int((labels < 0).sum())], marker_color=NOISE_COLOUR, showlegend=False)
    fig.update_layout(showlegend=False)
    return fig


#: What each K estimator's curve measures (the y axis of its plot), by ``KEstimate.method``.
K_SCORE_NAMES = {
    "prediction_strength": "prediction strength", "elbow": "k-means inertia", "silhouette": "mean silhouette",
    "calinski_harabasz": "Calinski-Harabasz index", "davies_bouldin": "Davies-Bouldin index",
    "gap": "gap statistic", "eigengap": "eigenvalue gap", "dendrogram_gap": "merge height gap",
    "dendrogram_ratio": "merge height ratio", "word_vectors": "merge height gap",
}


def k_score_name(method: str) -> str:
    """The name of what ``method``'s curve measures (``"score"`` for a method the kit does not know)."""
    return K_SCORE_NAMES.get(str(method), "score")


#: ``k_curves``: the height of one row of panels and the gap between rows, in pixels.
K_CURVES_PANEL_PX = 230
K_CURVES_GAP_PX = 70


def k_curves(result, columns=3):
    """Small multiples of every K estimator's curve from ``kit.k.estimate(...)`` (a ``KResult``, or its
    ``estimates`` dict or a list of ``KEstimate``), the chosen k marked. Each panel's x axis is "K" and its y
    axis what the method measures (`k_score_name`)."""
    from plotly.subplots import make_subplots

    go = _go()
    ests = getattr(result, "estimates", result)
    ests = [e for e in (ests.values() if isinstance(ests, dict) else ests) if len(e.curve)]
    rows = max(1, -(-len(ests) // columns))
    # Plotly's vertical_spacing is a fraction of the plotting height: fix the gap between rows in pixels instead
    # (room for the upper panel's "K" and the lower panel's title), so more rows do not mean wider gaps
    plot_height = rows * K_CURVES_PANEL_PX + (rows - 1) * K_CURVES_GAP_PX
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=[f"{e.method}: k={e.k}" for e in ests],
                        horizontal_spacing=0.12, vertical_spacing=K_CURVES_GAP_PX / plot_height)
    for i, e in enumerate(ests):
        r, c = i // columns + 1, i % columns + 1
        fig.add_trace(go.Scatter(x=e.curve["k"], y=e.curve["score"], mode="lines+markers", marker_size=4,
                                 line_color=PALETTE[0], showlegend=False), row=r, col=c)
        if e.k is not None and (e.curve["k"] == e.k).any():
            y = float(e.curve.loc[e.curve["k"] == e.k, "score"].iloc[0])
            fig.add_trace(go.Scatter(x=[e.k], y=[y], mode="markers", marker=dict(size=10, color=PALETTE[3]),
                                     showlegend=False), row=r, col=c)
        fig.update_xaxes(title_text="K", title_standoff=2, row=r, col=c)
        fig.update_yaxes(title_text=k_score_name(e.method), title_standoff=2, row=r, col=c)
    fig.update_xaxes(title_font_size=11)
    fig.update_yaxes(title_font_size=11)
    fig.update_layout(template="plotly_white", height=plot_height + 40 + 40, margin=dict(l=60, r=10, t=40, b=40))
    return fig


def dendrogram(linkage, labels=None, p=30, title=None, color_threshold=None, orientation="bottom", cut=None):
    """Dendrogram of a scipy linkage matrix (truncated to the last ``p`` merges), drawn with Plotly.

    ``labels``: leaf names (e.g. the word-vector method's label names). With ``p`` below the number of
    leaves, only the last ``p`` merges are drawn and a leaf named ``(n)`` stands for a branch of n leaves merged
    below them (the axis title says so). ``cut``: a number of clusters K (2 up to the number of leaves - 1): a
    dashed line, annotated "K = {cut}", at the height that cuts the tree into K clusters (midway between the
    merges that leave K and K - 1 clusters: ``linkage[-K, 2]`` and ``linkage[-K + 1, 2]``). ``color_threshold``
    (default: that height) colours each cluster below it in a colour of its own, its branches and a dot under
    each of its leaves, so a cut at K shows K colours (a cluster of a single leaf has only its dot; with K above
    ``p``, clusters hide inside the leaves); the merges above it are grey. Without either, one colour.

    Examples
    --------
    >>> from scipy.cluster import hierarchy
    >>> Z = hierarchy.linkage([[0.0], [1.0], [5.0], [7.0], [20.0]], method="single")
    >>> fig = dendrogram(Z, cut=2)  # two colours: {0, 1, 5, 7} and the lone 20
    """
    from scipy.cluster import hierarchy

    go = _go()
    linkage = np.asarray(linkage, dtype=float)
    n = len(linkage) + 1
    height = None
    if cut is not None:
        if isinstance(cut, (bool, np.bool_)) or not isinstance(cut, (int, np.integer)) or not 2 <= cut <= n - 1:
            raise ValueError(f"cut={cut!r} must be a number of clusters, an int from 2 to {n - 1} (this tree has "
                             f"{n} leaves), or None for no cut line")
        height = float(linkage[-cut, 2] + linkage[-cut + 1, 2]) / 2
        if color_threshold is None:
            color_threshold = height
    kwargs = dict(no_plot=True, labels=None if labels is None else list(labels))
    truncated = bool(p) and n > p
    if truncated:
        kwargs.update(truncate_mode="lastp", p=p)
    # Nodes: leaves 0..n-1, merge i is node n + i. A merge below the threshold (and its whole subtree) belongs to
    # the cluster named by its highest such ancestor; merges above belong to none and are grey (scipy's own
    # colouring draws them in one more colour, and cycles through 9 colours only).
    below = np.full(2 * n - 1, color_threshold is not None)
    if color_threshold is not None:
        for i, (a, b, h, _) in enumerate(linkage):
            below[n + i] = h < color_threshold and below[int(a)] and below[int(b)]
    group = np.arange(2 * n - 1)
    for i in range(n - 2, -1, -1):  # top down: a parent is named before its children
        if below[n + i]:
            group[int(linkage[i, 0])] = group[int(linkage[i, 1])] = group[n + i]
    order = hierarchy.dendrogram(linkage, **kwargs)["leaves"]  # node ids of the drawn leaves, left to right
    colours = {}
    for node in order:
        if below[node]:
            colours.setdefault(int(group[node]), PALETTE[len(colours) % len(PALETTE)])
    uncut = PALETTE[0] if color_threshold is None else NOISE_COLOUR  # no threshold: one colour, nothing cut
    node_colour = {node: colours[int(group[node])] if below[node] and int(group[node]) in colours else uncut
                   for node in range(2 * n - 1)}
    d = hierarchy.dendrogram(linkage, link_color_func=node_colour.__getitem__, **kwargs)
    fig = go.Figure()
    for xs, ys, col in zip(d["icoord"], d["dcoord"], d["color_list"]):
        xy = dict(x=ys, y=xs) if orientation == "left" else dict(x=xs, y=ys)
        fig.add_trace(go.Scatter(**xy, mode="lines", line=dict(color=col, width=1.5), hoverinfo="skip",
                                 showlegend=False))
    ticks = [5 + 10 * i for i in range(len(d["ivl"]))]
    if colours:  # a dot under each leaf in its cluster's colour: every cluster shows, even a single leaf
        dots = dict(x=[0.0] * len(ticks), y=ticks) if orientation == "left" else dict(x=ticks, y=[0.0] * len(ticks))
        fig.add_trace(go.Scatter(**dots, mode="markers", marker=dict(color=[node_colour[v] for v in order], size=7),
                                 text=d["ivl"], hoverinfo="text", showlegend=False))
    axis = dict(tickmode="array", tickvals=ticks, ticktext=d["ivl"])
    if truncated:
        axis["title"] = f"the top {len(d['ivl'])} branches of {n} leaves; a leaf '(n)' is a branch of n leaves"
    if orientation == "left":
        fig.update_layout(yaxis=axis, xaxis_title="merge distance", height=max(360, 14 * len(ticks)))
    else:
        fig.update_layout(xaxis=axis, yaxis_title="merge distance", height=420)
    if height is not None:
        line = dict(line_dash="dash", line_color="black", line_width=1.5, annotation_text=f"K = {cut}")
        if orientation == "left":
            fig.add_vline(x=height, annotation_position="top right", **line)
        else:
            fig.add_hline(y=height, annotation_position="top right", **line)
    fig.update_layout(title=title, template="plotly_white", margin=dict(l=10, r=10, t=40 if title else 10, b=10))
    return fig


def k_distance(distances, eps=None, title="Sorted distance to the k-th neighbour"):
    """DBSCAN's k-distance curve with the suggested ``eps`` as a horizontal line."""
    go = _go()
    d = np.asarray(distances)
    fig = go.Figure(go.Scatter(x=np.arange(len(d)), y=d, mode="lines", line_color=PALETTE[0], name="k-distance"))
    if eps is not None:
        fig.add_hline(y=eps, line_dash="dash", line_color=PALETTE[3], annotation_text=f"eps = {eps:.3f}")
    fig.update_layout(title=title, xaxis_title="points (sorted)", yaxis_title="cosine distance",
                      template="plotly_white", height=320, margin=dict(l=10, r=10, t=40, b=10))
    return fig


#: How scores are named on axes and in titles (``kit.metrics.score``'s keys); other names are shown as they are.
SCORE_NAMES = {"nmi": "NMI", "ami": "AMI", "ari": "ARI", "pairwise_precision": "pairwise precision",
               "pairwise_recall": "pairwise recall", "pairwise_f": "pairwise F", "bcubed_precision": "BCubed precision",
               "bcubed_recall": "BCubed recall", "bcubed_f": "BCubed F", "silhouette": "silhouette",
               "purity": "purity", "accuracy": "accuracy"}


def score_name(name) -> str:
    """How a score is named on a chart: ``"nmi"`` -> ``"NMI"``, ``"bcubed_f"`` -> ``"BCubed F"``."""
    return SCORE_NAMES.get(str(name), str(name).replace("_", " "))


def scores_bar(table, metric="nmi", by="backbone", color="method", title=None, x_title=None, y_title=None):
    """Grouped bars of one score across backbones and methods (a ``kit.compare`` table).

    ``metric``: the column drawn (its height); ``by``: the column along the x axis; ``color``: the column that
    makes the groups' bars (and the legend). Titles default to the columns' names: the y axis ``score_name(metric)``,
    the x axis ``by``, the figure "{metric} by {by} and {color}"; pass ``title``, ``x_title`` or ``y_title`` to
    say more (e.g. ``y_title="score"`` for a long table whose ``metric`` column holds several scores).
    """
    import plotly.express as px

    y_title = score_name(metric) if y_title is None else y_title
    x_title = str(by).replace("_", " ") if x_title is None else x_title
    title = f"{y_title} by {x_title} and {str(color).replace('_', ' ')}" if title is None else title
    fig = px.bar(table, x=by, y=metric, color=color, barmode="group", template="plotly_white",
                 color_discrete_sequence=PALETTE, height=380)
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title,
                      legend_title_text=str(color).replace("_", " "), margin=dict(l=10, r=10, t=40, b=10))
    return fig


_IMAGE_FIGURE = None


def _image_figure_class():
    """``ImageFigure``: a Matplotlib ``Figure`` that renders itself as PNG in Jupyter whatever the backend
    (``MPLBACKEND=Agg`` included), used without pyplot (no global figure registry, safe in Streamlit's threads).
    Made on first use, so importing ``kit.plot`` does not import Matplotlib; ``kit.plot.ImageFigure`` names it
    (figures pickle)."""
    global _IMAGE_FIGURE
    if _IMAGE_FIGURE is None:
        from matplotlib.figure import Figure

        class ImageFigure(Figure):
            def _repr_png_(self):
                import io

                buf = io.BytesIO()
                self.savefig(buf, format="png", dpi=80)
                return buf.getvalue()

        ImageFigure.__module__, ImageFigure.__qualname__ = __name__, "ImageFigure"
        _IMAGE_FIGURE = ImageFigure
    return _IMAGE_FIGURE


def __getattr__(name):
    if name == "ImageFigure":
        return _image_figure_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def image_grid(images, titles=None, columns=6, size=2.0, marks=None):
    """A Matplotlib grid of images (RGB arrays or file paths); ``marks`` (bools) draws a red frame."""
    from .io import read_image

    n = len(images)
    rows = max(1, -(-n // columns))
    fig = _image_figure_class()(figsize=(size * columns, size * rows))
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, img in enumerate(images):
        ax = axes.ravel()[i]
        arr = img if isinstance(img, np.ndarray) else read_image(img, size=160)
        ax.imshow(arr)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8)
        if marks is not None and marks[i]:
            for side in ax.spines.values():
                side.set_visible(True)
                side.set_edgecolor("red")
                side.set_linewidth(3)
            ax.axis("on")
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    return fig


def _short_name(path, limit=24) -> str:
    name = Path(path).name
    return name if len(name) <= limit else f"{name[:limit - 11]}…{name[-10:]}"


def explanation_grid(explanation, columns=4, size=2.6, names=None):
    """The map overlays of a ``kit.inspect.Explanation``, each titled with the photo and the class it explains
    (and its gradient image beside it, when that is not already the overlay, as it is for guided backprop).

    ``names``: one text per photo naming it in the titles (e.g. ``"photo 1 (dress)"``, as in a table beside
    the grid); None: each photo's file name (shortened), or no name for photos given as arrays.
    """
    if names is None:
        names = [None if p is None else _short_name(p) for p in (explanation.paths or [None] * len(explanation.overlays))]
    elif len(names) != len(explanation.overlays):
        raise ValueError(f"names has {len(names)} texts for {len(explanation.overlays)} photos; give one per photo")
    images, titles = [], []
    for i, ov in enumerate(explanation.overlays):
        images.append(ov)
        what = f"{explanation.kind}: {explanation.class_names[i].split(',')[0]}"
        titles.append(what if names[i] is None else f"{names[i]}\n{what}")
        if explanation.gradients is not None and explanation.gradients[i] is not ov:
            images.append(explanation.gradients[i])
            titles.append("gradient")
    return image_grid(images, titles=titles, columns=columns, size=size)


def k_curve(estimate, title=None, y_title=None):
    """One K estimator's curve (a ``kit.k.KEstimate``: ``curve`` columns ``k``, ``score``) with its k marked.

    The gap statistic's ``sk`` column, when present, is drawn as error bars. ``y_title``: by default what the
    method measures (`k_score_name`).
    """
    go = _go()
    curve = estimate.curve
    error = dict(type="data", array=curve["sk"].to_numpy(float), visible=True) if "sk" in curve else None
    fig = go.Figure(go.Scatter(x=curve["k"], y=curve["score"], mode="lines+markers", marker_size=5,
                               line_color=PALETTE[0], error_y=error, name=estimate.method))
    if estimate.k is not None and (curve["k"] == estimate.k).any():
        y = float(curve.loc[curve["k"] == estimate.k, "score"].iloc[0])
        fig.add_trace(go.Scatter(x=[estimate.k], y=[y], mode="markers", marker=dict(size=12, color=PALETTE[3]),
                                 name=f"k = {estimate.k}"))
    fig.update_layout(title=title or f"{estimate.method}: k = {estimate.k}", xaxis_title="K",
                      yaxis_title=k_score_name(estimate.method) if y_title is None else y_title,
                      template="plotly_white", height=320, showlegend=False, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def projection_grid(projections, color=None, hover=None, columns=2, marker_size=5, color_title="label", height=420,
                    title=None):
    """Several 2-D projections of the same points side by side, coloured alike, with one shared legend.

    ``projections``: dict of panel title -> (N, 2) array or ``kit.project.Projection`` (e.g.
    ``{"t-SNE": tsne, "UMAP": umap}``); ``color`` and ``hover``: one value per point, as in `scatter`;
    ``title``: the figure's title above the panels (e.g. which vectors were projected).
    """
    from plotly.subplots import make_subplots

    go = _go()
    names = list(projections)
    if not names:
        raise ValueError("projections is empty; pass a dict such as {'t-SNE': coords, 'UMAP': coords}")
    coords = {name: np.asarray(getattr(p, "coords", p)) for name, p in projections.items()}
    n = len(coords[names[0]])
    if any(len(c) != n or c.ndim != 2 or c.shape[1] < 2 for c in coords.values()):
        raise ValueError(f"every projection needs the same N rows and 2 columns; got shapes "
                         f"{[c.shape for c in coords.values()]}")
    color = np.asarray(["all"] * n if color is None else color, dtype=object)
    hover = np.asarray([""] * n if hover is None else hover, dtype=object)
    cols = max(1, min(int(columns), len(names)))
    rows = -(-len(names) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=names, horizontal_spacing=0.04, vertical_spacing=0.08)
    values = sorted(set(color.tolist()), key=_sort_key)
    for j, name in enumerate(names):
        c = coords[name]
        for i, v in enumerate(values):
            m = color == v
            is_noise = str(v) == "-1"
            label = "noise" if is_noise else str(v)
            fig.add_trace(go.Scattergl(
                x=c[m, 0], y=c[m, 1], mode="markers", name=label, legendgroup=label, showlegend=j == 0,
                marker=dict(size=marker_size, color=NOISE_COLOUR if is_noise else PALETTE[i % len(PALETTE)],
                            opacity=0.5 if is_noise else 0.85),
                text=hover[m], hovertemplate="%{text}<extra>" + label + "</extra>"),
                row=j // cols + 1, col=j % cols + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    fig.update_layout(title=title, legend_title_text=color_title, template="plotly_white",
                      height=height * rows + (40 if title else 0), margin=dict(l=10, r=10, t=80 if title else 40, b=10))
    return fig


def cluster_panel(backbone, k, method, coords, labelings, scores=None, hover=None):
    """The figure of an interactive panel: one precomputed clustering drawn on one precomputed projection.

    Made for ``ipywidgets.interactive`` / ``interact`` with widgets for ``backbone``, ``k`` and ``method``
    and ``ipywidgets.fixed`` for the data, so a notebook needs no callback of its own. Nothing is computed
    here: the widgets only choose which results to draw. (ipywidgets makes a widget of every parameter it
    is not given, so pass ``scores`` and ``hover`` too, as ``fixed(...)``, even ``fixed(None)``.)

    Parameters
    ----------
    backbone, k, method
        The keys chosen by the widgets.
    coords : dict
        backbone -> (N, 2) array or ``Projection``.
    labelings : dict
        ``(backbone, method, k)`` -> labels; methods that do not take a K (HDBSCAN, graph methods) may be
        stored under ``(backbone, method, None)``.
    scores : dict, optional
        Same keys -> dict of scores (e.g. ``kit.metrics.score``); its ``nmi`` and ``ari`` go in the title.
    hover : list of str, optional
        One text per point.
    """
    key = (backbone, method, k)
    if key not in labelings:
        key = (backbone, method, None)
    if key not in labelings:
        have = sorted({(b, m) for b, m, _ in labelings})
        raise KeyError(f"no labeling for backbone={backbone!r}, method={method!r}, k={k!r}; computed: {have}")
    labels = np.asarray(labelings[key])
    n_clusters = len(set(labels.tolist()) - {-1})
    parts = [str(backbone), str(method), f"K={k}" if key[2] is not None else "K not used",
             f"{n_clusters} clusters"]
    if (labels < 0).any():
        parts.append(f"noise {float(np.mean(labels < 0)):.0%}")
    found = (scores or {}).get(key, {})
    parts += [f"{name.upper()} {found[name]:.2f}" for name in ("nmi", "ari") if name in found]
    return scatter(coords[backbone], color=labels, hover=hover, title=" · ".join(parts))


def heatmap(matrix, order=None, title=None, colorbar_title=None, height=460):
    """A square matrix (e.g. ``kit.cluster.co_association``) as a heatmap; ``order`` permutes its rows
    and columns (e.g. ``np.argsort(true_labels)`` to show blocks)."""
    go = _go()
    M = np.asarray(matrix)
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise ValueError(f"matrix must be square; got shape {M.shape}")
    if order is not None:
        order = np.asarray(order)
        M = M[np.ix_(order, order)]
    fig = go.Figure(go.Heatmap(z=M, colorscale="Viridis", colorbar=dict(title=colorbar_title)))
    fig.update_layout(title=title, template="plotly_white", height=height, xaxis=dict(showticklabels=False),
                      yaxis=dict(showticklabels=False, autorange="reversed", scaleanchor="x"),
                      margin=dict(l=10, r=10, t=40 if title else 10, b=10))
    return fig
