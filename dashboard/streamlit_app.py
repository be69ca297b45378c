"""Image clustering exploration kit: the dashboard. ``streamlit run dashboard`` (Streamlit runs the
folder's ``streamlit_app.py``, this file).

One entry file: ``st.navigation`` over thin pages in ``views/``; the shared sidebar and cached ``kit``
calls live in ``state.py``. No algorithm lives here: every computation is a ``kit`` function.
"""
import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

import state  # noqa: E402

st.set_page_config(page_title="Image clustering kit", page_icon=":frame_with_picture:", layout="wide")

VIEWS = Path(__file__).resolve().parent / "views"
pages = [
    st.Page(VIEWS / "data.py", title="Data", icon=":material/photo_library:", default=True),
    st.Page(VIEWS / "backbones.py", title="Backbones", icon=":material/compare:"),
    st.Page(VIEWS / "k.py", title="How many groups?", icon=":material/account_tree:"),
    st.Page(VIEWS / "cluster.py", title="Cluster", icon=":material/bubble_chart:"),
    st.Page(VIEWS / "gallery.py", title="Gallery", icon=":material/grid_view:"),
    st.Page(VIEWS / "curate.py", title="Curate", icon=":material/edit:"),
    st.Page(VIEWS / "inspect.py", title="Inspect", icon=":material/visibility:"),
    st.Page(VIEWS / "export.py", title="Export", icon=":material/download:"),
    st.Page(VIEWS / "store.py", title="Embedding store", icon=":material/database:"),
]
page = st.navigation(pages)
state.sidebar()  # drawn here, in the entry file, so its widgets keep their values on every page
page.run()
state.sidebar_footer()
