"""The dashboard's settings: one plain dict, ``st.session_state["settings"]``, the single source of truth, mirrored
in the URL's query parameters so that a reload keeps them and a view can be shared.

Streamlit forgets the state of widgets that a page does not draw, so a widget never owns a setting: it is bound to
one with :func:`bind` (its value is restored from the setting before it is drawn, and written back by its
callback). The clustering methods and their settings come from ``kit.cluster.METHODS``, the kit's one registry.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from kit.cluster import AUTO_MIN_ROWS, NEEDS_K  # noqa: F401  (the registry, without scikit-learn)
from kit.cluster import METHODS as REGISTRY

SOURCES = {"clothing": "Clothing photos (built in, 500 photos)", "demo": "Quick demo (scikit-image photos)",
           "folder": "A folder on this machine", "upload": "Upload a zip"}
#: The kit's recommended pipeline (``kit.cluster_photos``: three backbones, K estimated, Leiden), the default
#: clustering.
#: It clusters photos, not one backbone's vectors, so it is the dashboard's own entry beside the registry's methods.
RECOMMENDED = "recommended"
#: The clusterings whose method and K are chosen from the photos (``kit.cluster.AutoResult`` behind them).
AUTOMATIC = (RECOMMENDED, "auto")
#: The methods offered on the Cluster page, with their labels (the recommended one, then the registry's order).
METHODS = {RECOMMENDED: "Recommended (label-free: three backbones, K chosen, Leiden)",
           **{name: m.label for name, m in REGISTRY.items() if m.dashboard}}
DESCRIPTIONS = {RECOMMENDED: "The kit's recommended clustering (kit.cluster_photos): the photos are embedded with "
                             "EfficientNet-Lite0, 1 and 2, the three are joined (each centred on the photos' mean), K is "
                             "estimated from the photos alone (kit.k.estimate, which says whether it is clear) and "
                             "Leiden groups the photos' nearest-neighbour graph into K clusters. Measured on four "
                             "labelled sets of different photos, it beat k-means on one backbone told the true K on "
                             "each. The same clustering is shown whatever the backbone."}
#: Every method setting by its key (unique across methods).
METHOD_SETTINGS = {s.key: s for m in REGISTRY.values() for s in m.settings}
DEFAULT_BACKBONE = "efficientnet_lite0"
MAX_UPLOAD_MB = 200
MIN_PHOTOS = 2

# Every setting and its default; the method settings come from the registry.
DEFAULTS = {"source": "clothing", "folder": "", "upload": "", "backbones": [DEFAULT_BACKBONE], "method": RECOMMENDED,
            "k": None, **{key: s.default for key, s in METHOD_SETTINGS.items()}}
# The view: what each page shows, kept in the URL too so that a reload shows the same view. Name -> (default,
# the values it can take, or its type).
VIEW = {
    "projection": ("tsne", ("tsne", "umap", "pca")),
    "colour_by": ("cluster", ("cluster", "true label")),
    "hover_photos": (False, (False, True)),
    "gallery_cluster": (None, int),
    "gallery_sort": ("representative", ("representative", "outliers")),
    "gallery_z": (3.0, (1.5, 2.0, 2.5, 3.0, 3.5, 4.0)),
    "gallery_limit": (48, (24, 48, 96, 192)),
    "thumbs_per_label": (6, tuple(range(1, 13))),
    "inspect_image": (None, int),
    "inspect_rank": (1, tuple(range(1, 6))),
}
_SELECTED_SEP = "|"  # the lasso selection in the URL: paths relative to the folder, joined

# Settings that belong to one data source: reset when the data changes (K=5 for one folder must not score
# another; the photo chosen on Inspect does not exist in the next folder).
PER_DATA = ("k", "eps", "min_cluster_size", "selected", "gallery_cluster", "inspect_image", "inspect_rank")


def settings() -> dict:
    """The settings dict (created with the defaults, then the URL's query parameters, on a session's first run)."""
    ss = st.session_state
    if "settings" not in ss:
        ss["settings"] = {**{k: (list(v) if isinstance(v, list) else v) for k, v in DEFAULTS.items()},
                          "selected": [], "gallery_cluster": None, "inspect_image": None, "inspect_rank": 1}
        ss["url_problems"] = _read_url(ss["settings"])
    return ss["settings"]


def get(name):
    return settings()[name]


def get_or(name, default):
    return settings().get(name, default)


def put(name, value) -> None:
    settings()[name] = value


def _store(name: str, widget_key: str) -> None:
    settings()[name] = st.session_state[widget_key]


def bind(name: str, value=None, key: str | None = None, default=None) -> dict:
    """Keyword arguments that tie a widget to the setting ``name``: ``st.slider(..., **settings.bind("k"))``.

    ``value``: what the widget shows when it differs from the stored setting (a resolved default, or the
    setting clamped to the widget's range). ``default``: the first value of a view setting that is not in
    ``DEFAULTS`` (a page's own choice, such as the projection). The widget is not given a ``value=``/``index=``
    of its own."""
    key = key or f"w_{name}"
    if name not in settings():
        settings()[name] = default
    shown = settings()[name] if value is None else value
    if st.session_state.get(key, object()) != shown:
        st.session_state[key] = shown
    return {"key": key, "on_change": _store, "args": (name, key)}


def _store_auto(name: str, widget_key: str, fallback) -> None:
    settings()[name] = None if st.session_state[widget_key] else fallback


def bind_auto(name: str, fallback) -> dict:
    """Keyword arguments for a checkbox "automatic" of the setting ``name`` (None means automatic); unticking
    it sets the setting to ``fallback``."""
    key = f"w_{name}_auto"
    shown = settings()[name] is None
    if st.session_state.get(key, object()) != shown:
        st.session_state[key] = shown
    return {"key": key, "on_change": _store_auto, "args": (name, key, fallback)}


def _parse(name: str, raw: str):
    """A URL value as the setting's type; ValueError when it is not one of its values."""
    if name in VIEW:
        default, values = VIEW[name]
        if values is int:
            return int(raw)
        kind = type(values[0])
        value = (raw.lower() in ("1", "true")) if kind is bool else kind(raw)
        if value not in values:
            raise ValueError(raw)
        return value
    if name == "selected":
        return [p for p in raw.split(_SELECTED_SEP) if p]  # relative; made absolute once the folder is known
    if name == "backbones":
        return [b for b in raw.split(",") if b]
    if name == "k":
        return int(raw)
    if name == "source" and raw not in SOURCES or name == "method" and raw not in METHODS:
        raise ValueError(raw)
    s = METHOD_SETTINGS.get(name)
    if s is None:
        return raw
    if s.kind == "choice":
        value = type(s.options[0])(raw)
        if value not in s.options:
            raise ValueError(raw)
        return value
    return int(raw) if s.kind == "int" else float(raw)


def _read_url(s: dict) -> list:
    """Apply the query parameters to the settings; return the ones that could not be used."""
    q = st.query_params
    problems = []
    for name in (*DEFAULTS, *VIEW, "selected"):
        if name not in q:
            continue
        try:
            s["selected_in_url" if name == "selected" else name] = _parse(name, q[name])
        except ValueError:
            problems.append(f"{name}={q[name]}")
    return problems


def restore_selection(folder: str | None) -> None:
    """The lasso selection read from the URL (relative paths) made absolute in ``folder``, once it is known."""
    s = settings()
    relative = s.pop("selected_in_url", None)
    if relative and folder:
        s["selected"] = [str(Path(folder) / p) for p in relative]


def write_url(s: dict) -> None:
    """Mirror the settings that differ from the defaults (and matter for the current source and method)."""
    wanted = {"source": s["source"], "backbones": ",".join(s["backbones"]), "method": s["method"]}
    if s["source"] == "folder" and s["folder"]:
        wanted["folder"] = s["folder"]
    if s["source"] == "upload" and s["upload"]:
        wanted["upload"] = s["upload"]
    for name in method_settings(s["method"]):
        if s[name] is not None:
            wanted[name] = str(s[name])
    for name, (default, _) in VIEW.items():
        value = s.get(name)
        if value is not None and value != default:
            wanted[name] = str(int(value)) if isinstance(value, bool) else str(value)
    folder = st.session_state.get("folder_in_use")
    if s.get("selected") and folder:
        root = Path(folder)
        inside = [str(Path(p).relative_to(root)) for p in s["selected"] if Path(p).is_relative_to(root)]
        if inside:
            wanted["selected"] = _SELECTED_SEP.join(inside)
    if dict(st.query_params) != wanted:
        st.query_params.from_dict(wanted)


def entry(method: str):
    """The registry entry behind ``method`` (the recommended clustering has Automatic's: no K, no settings)."""
    return REGISTRY["auto" if method == RECOMMENDED else method]


def description(method: str) -> str:
    return DESCRIPTIONS.get(method) or entry(method).description


def method_settings(method: str) -> tuple:
    """The setting keys of ``method``: ``"k"`` when it takes K, then its own settings (from the registry)."""
    m = entry(method) if method in METHODS else None
    if m is None:
        return ()
    return (("k",) if m.needs_k else ()) + tuple(s.key for s in m.settings)


def params_text(params: dict) -> str:
    shown = {k: v for k, v in params.items() if v is not None}
    return ", ".join(f"{k}={v}" for k, v in shown.items())


def primary_backbone() -> str:
    chosen = get("backbones") or [DEFAULT_BACKBONE]
    return chosen[0]
