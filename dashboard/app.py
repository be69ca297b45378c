"""Dashboard entry point (placeholder until the dashboard issue): lists the backbones the kit can use."""
import streamlit as st

import kit

st.set_page_config(page_title="Image clustering kit", page_icon=":frame_with_picture:", layout="wide")
st.title("Image clustering exploration kit")
st.caption(f"kit {kit.__version__} · backbones available on this machine")


@st.cache_data
def backbone_table():
    return kit.backbones.available()


table = backbone_table()
st.dataframe(table, hide_index=True, width="stretch", key="backbones")
offline = table.loc[table["offline"], "name"].tolist()
st.info(f"{len(offline)} backbones work offline right now: {', '.join(offline)}. "
        "TF-Hub backbones need internet once, then load from the TF-Hub cache.")
