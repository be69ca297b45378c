"""Image clustering exploration kit: the dashboard. ``streamlit run dashboard`` (Streamlit runs the
folder's ``streamlit_app.py``, this file).

One entry file: ``st.navigation`` over thin pages in ``views/``; beside it, a few modules by concern:
``settings`` (the settings and the URL), ``sidebar``, ``calls`` (cached ``kit`` calls keyed by the kit's own
fingerprints), ``current`` (the one clustering every page shows), ``edits`` (hand edits) and ``widgets``. No
algorithm lives here: every computation is a ``kit`` function.
"""
import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sidebar  # noqa: E402

st.set_page_config(page_title="Image clustering kit", page_icon=":frame_with_picture:", layout="wide")

PAGES = Path(__file__).resolve().parent / "views"
pages = [
    st.Page(PAGES / "data.py", title="Data", icon=":material/photo_library:", default=True),
    st.Page(PAGES / "backbones.py", title="Backbones", icon=":material/compare:"),
    st.Page(PAGES / "k.py", title="How many groups?", icon=":material/account_tree:"),
    st.Page(PAGES / "cluster.py", title="Cluster", icon=":material/bubble_chart:"),
    st.Page(PAGES / "gallery.py", title="Gallery", icon=":material/grid_view:"),
    st.Page(PAGES / "curate.py", title="Curate", icon=":material/edit:"),
    st.Page(PAGES / "inspect.py", title="Inspect", icon=":material/visibility:"),
    st.Page(PAGES / "export.py", title="Export", icon=":material/download:"),
    st.Page(PAGES / "store.py", title="Embedding store", icon=":material/database:"),
]
page = st.navigation(pages)
sidebar.sidebar()  # drawn here, in the entry file, so its widgets keep their values on every page
page.run()
sidebar.sidebar_footer()
