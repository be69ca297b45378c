"""Widgets the pages share: the settings of a clustering method (drawn from the kit's method registry) and a grid
of photos."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

import kit

import settings


def scores_table(scores: dict):
    """One row of scores for display: rounded to 3 decimals (a score of -2e-15 shows as 0.0), counts as ints."""
    import pandas as pd

    counts = {"n_clusters", "min_size", "median_size", "max_size", "singletons"}
    row = {k: (int(v) if k in counts and v == v else round(float(v), 3) + 0.0 if v is not None else None)
           for k, v in scores.items()}
    return pd.DataFrame([row])


def method_controls(method: str, n_rows: int, fallbacks: dict | None = None) -> None:
    """Widgets for every setting of ``method`` (``kit.cluster.METHODS[method].settings``), each bound to its
    setting: numbers as sliders, choices as a select box (or a select slider when they are numbers), and a
    checkbox for a setting that can be left automatic. ``fallbacks``: the value offered when a person unticks
    "automatic" (a data-driven one such as DBSCAN's knee), instead of the registry's ``manual``."""
    s = settings.settings()
    for spec in settings.entry(method).settings:
        key = spec.key
        if spec.auto is not None:
            fallback = (fallbacks or {}).get(key, spec.manual)
            if st.checkbox(spec.auto_label, **settings.bind_auto(key, spec.clamp(fallback, n_rows))):
                continue
        if spec.kind == "choice":
            if isinstance(spec.options[0], str):
                st.selectbox(spec.label, spec.options, help=spec.help or None, **settings.bind(key))
            else:
                st.select_slider(spec.label, spec.options, help=spec.help or None, **settings.bind(key))
            continue
        high = spec.clamp(spec.high, n_rows) if spec.rows_bound else spec.high
        if spec.kind == "int":
            low, high = int(spec.low), max(int(spec.low) + 1, int(high))
            st.slider(spec.label, low, high, help=spec.help or None,
                      **settings.bind(key, value=int(np.clip(s[key], low, high))))
        else:
            value = s[key] if s[key] is not None else (fallbacks or {}).get(key, spec.manual)
            st.slider(spec.label, float(spec.low), float(high), step=spec.step, help=spec.help or None,
                      **settings.bind(key, value=float(np.clip(round(value, 3), spec.low, high))))


@st.cache_data(show_spinner=False, max_entries=8192)
def tile_uri(path: str, size: int = 120) -> str:
    try:
        return kit.plot.image_uri(path, size=size)
    except ValueError:  # moved or damaged since it was embedded
        return kit.plot.image_uri(np.full((size, size, 3), 200, np.uint8))


def photo_grid(paths, captions=None, marked=(), size: int = 120, where=None) -> None:
    """Photos in a wrapping grid; the full path shows on hover; ``marked`` (indices) get a red frame."""
    import html

    marked = set(marked)
    tiles = []
    for i, p in enumerate(paths):
        caption = html.escape(captions[i]) if captions else ""
        frame = "3px solid #d62728" if i in marked else "1px solid #ddd"
        tiles.append(f'<figure title="{html.escape(str(p))}" style="margin:0;width:{size}px">'
                     f'<img src="{tile_uri(str(p), size)}" style="width:{size}px;height:{size}px;object-fit:contain;'
                     f'border:{frame};border-radius:4px" alt="{html.escape(Path(p).name)}"/>'
                     f'<figcaption style="font-size:0.72rem;line-height:1.1;overflow:hidden;text-overflow:ellipsis;'
                     f'white-space:nowrap">{caption}</figcaption></figure>')
    (where or st).markdown('<div class="kit-grid" style="display:flex;flex-wrap:wrap;gap:8px">' + "".join(tiles)
                           + "</div>", unsafe_allow_html=True)
