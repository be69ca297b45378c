"""The one registry of clustering methods: name, label, estimator, whether it takes K, and the settings a person
can change (with their ranges). ``make()``, ``kit.compare``, ``auto``, the command line and the dashboard all read
it, so adding a method is one entry here plus its estimator.

Only the standard library and numpy are imported here: the dashboard reads the registry on its first page without
loading scikit-learn. Estimators are looked up by class name in this package's modules when a method is built.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from .._utils.validation import StrOptions, validate_params

#: ``kit.cluster.auto`` splits the rows into halves and clusters each: below this many rows it refuses.
AUTO_MIN_ROWS = 20


@dataclass(frozen=True)
class Setting:
    """One parameter of a method that people set (a dashboard widget, a URL parameter, ``--param`` on the CLI).

    ``key`` names the setting in the dashboard and its URL (unique across methods), ``param`` the estimator's
    parameter. ``kind`` is ``"int"``, ``"float"`` or ``"choice"``; ``low``/``high``/``step`` bound numbers,
    ``options`` list choices; ``rows_bound``: the value cannot exceed the number of rows. ``auto``: the value
    passed when the person leaves the setting automatic (a checkbox labelled ``auto_label``), ``None`` when
    there is no automatic value; ``manual``: the value offered when they untick it. ``implies``: further
    parameters a choice brings along (``{"average": {"metric": "cosine"}}``)."""
    key: str
    param: str
    label: str
    kind: str
    default: object
    low: float | None = None
    high: float | None = None
    step: float | None = None
    options: tuple = ()
    rows_bound: bool = False
    auto: object = None
    auto_label: str = "Automatic"
    manual: object = None
    implies: dict = field(default_factory=dict)
    help: str = ""

    def clamp(self, value, n_rows: int | None = None):
        """``value`` within ``low``/``high`` (and the number of rows when ``rows_bound``)."""
        if value is None or self.kind == "choice":
            return value
        high = self.high if not (self.rows_bound and n_rows) else min(self.high, max(self.low, n_rows))
        value = min(max(value, self.low), high)
        return int(value) if self.kind == "int" else float(value)

    def params(self, value) -> dict:
        """The estimator parameters for the setting's ``value`` (``None``: automatic)."""
        if value is None:
            return {} if self.auto is None else {self.param: self.auto}
        value = int(value) if self.kind == "int" else float(value) if self.kind == "float" else value
        return {self.param: value, **self.implies.get(value, {})}


@dataclass(frozen=True)
class Method:
    """A clustering method: ``make(name)`` builds ``estimator`` from ``module`` of this package."""
    name: str
    label: str
    estimator: str
    needs_k: bool
    settings: tuple = ()
    description: str = ""
    module: str = "_estimators"
    dashboard: bool = True  # offered on the dashboard's Cluster page
    auto_candidate: bool = False  # compared by ``auto`` (at each candidate K: the method must take K, or be Leiden)

    def params(self, values: dict, k: int | None = None, n_rows: int | None = None) -> dict:
        """Estimator parameters from setting values (by ``Setting.key``; missing keys take the default), clamped
        to their ranges (and to ``n_rows``), and K."""
        out = {"n_clusters": int(k)} if self.needs_k and k is not None else {}
        for s in self.settings:
            out.update(s.params(s.clamp(values.get(s.key, s.default), n_rows)))
        return out

    def load(self):
        """The estimator class (imports scikit-learn and the rest on first use)."""
        return getattr(importlib.import_module(f"{__package__}.{self.module}"), self.estimator)


_LINKAGES = ("ward", "average", "complete", "single")

METHODS: dict[str, Method] = {m.name: m for m in (
    Method("auto", "Automatic (label-free)", "Auto", needs_k=False, module="_auto",
           description="Chooses the method (k-means, Ward, spectral, Leiden) and K from the photos alone: K from "
                       "the K estimators, then each method clustered on two random halves and scored by how well "
                       "the halves agree and by silhouette on the half it did not see. True labels are never used."),
    Method("kmeans", "k-means", "KMeans", needs_k=True, auto_candidate=True),
    Method("minibatch_kmeans", "Mini-batch k-means", "MiniBatchKMeans", needs_k=True, dashboard=False),
    Method("agglomerative", "Agglomerative", "Agglomerative", needs_k=True, auto_candidate=True, settings=(
        Setting("linkage", "linkage", "Linkage", "choice", "ward", options=_LINKAGES,
                implies={m: {"metric": "cosine"} for m in _LINKAGES if m != "ward"},
                help="Ward on Euclidean distances; the others on cosine distances."),)),
    Method("spectral", "Spectral", "Spectral", needs_k=True, auto_candidate=True),
    Method("hdbscan", "HDBSCAN", "HDBSCAN", needs_k=False, settings=(
        Setting("min_cluster_size", "min_cluster_size", "Minimum cluster size", "int", 15, low=2, high=100,
                rows_bound=True),
        Setting("reduce_to", "reduce_to", "PCA dimensions first", "choice", 5, options=(2, 3, 5, 10, 20, 50)))),
    Method("dbscan", "DBSCAN", "DBSCAN", needs_k=False, settings=(
        Setting("min_samples", "min_samples", "min_samples", "int", 5, low=2, high=30),
        Setting("eps", "eps", "eps (cosine distance)", "float", None, low=0.01, high=1.0, step=0.005, auto="auto",
                auto_label="eps at the knee of the k-distance curve", manual=0.3))),
    Method("chinese_whispers", "Chinese Whispers", "ChineseWhispers", needs_k=False, settings=(
        Setting("cw_threshold", "threshold", "Similarity threshold", "float", None, low=0.0, high=1.0, step=0.01,
                auto="auto", auto_label="Automatic threshold", manual=0.6),
        Setting("cw_k", "k", "Neighbours in the graph", "int", 20, low=5, high=50))),
    Method("leiden", "Leiden", "Leiden", needs_k=False, auto_candidate=True, settings=(
        Setting("resolution", "resolution", "Resolution", "float", 1.0, low=0.1, high=3.0, step=0.1),)),
    Method("infomap", "Infomap", "Infomap", needs_k=False),
    Method("hard_clusters", "Hard clusters (density, transition distance)", "HardClusters", needs_k=False,
           module="_hard", settings=(
               Setting("hc_k", "k", "Neighbours per photo", "int", 80, low=5, high=200, rows_bound=True),
               Setting("hc_tau", "tau", "Largest link distance", "float", 0.7, low=0.05, high=1.0, step=0.05),
               Setting("hc_distance", "distance", "Distance", "choice", "tpdi", options=("tpdi", "cosine"))),
           description="Each photo links to its nearest neighbour of higher density (density: the transition "
                       "probability flowing into it from its neighbours) when their neighbourhoods overlap enough "
                       "(transition-probability distance below the largest link distance); the connected groups "
                       "are the clusters. For large and sparse identities (Chen et al., ECCV 2022)."),
    Method("scan", "SCAN head", "SCAN", needs_k=True, module="_scan", auto_candidate=True,
           description="A small head trained on the frozen embeddings so that each photo's nearest neighbours share "
                       "its cluster, with clusters kept balanced (SCAN, Van Gansbeke et al. 2020); 5 heads, the one "
                       "with the lowest loss kept."),
)}

#: Methods that take the number of clusters K.
NEEDS_K = frozenset(name for name, m in METHODS.items() if m.needs_k)


def make(name: str, **params):
    """Build a clustering estimator by name (a key of ``METHODS``); ``random_state`` and ``n_clusters`` are
    dropped for methods that do not take them, any other parameter a method does not take raises.

    >>> make("kmeans", n_clusters=3, random_state=0).fit(X).labels_     # doctest: +SKIP
    """
    validate_params({"name": [StrOptions(set(METHODS))]}, {"name": name}, "make")
    cls = METHODS[name].load()
    accepted = cls._get_param_names()
    for soft in ("random_state", "n_clusters"):
        if soft in params and soft not in accepted:
            params.pop(soft)
    unknown = set(params) - set(accepted)
    if unknown:
        raise ValueError(f"{name} does not take {sorted(unknown)}; it takes {accepted}")
    return cls(**params)
