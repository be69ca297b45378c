import streamlit as st

import kit

import calls
import current
import settings
import sidebar

st.title("Inspect an image")
folder = sidebar.folder()
images = current.images_or_explain(folder, need=1)
if images is not None:
    bb = settings.primary_backbone()
    if not kit.backbones.get(bb).can_classify:
        st.warning(f"{bb} has no classifier; choose a backbone that can classify as the first one in the sidebar.")
        st.stop()
    names = [p.split("/")[-1] for p in images.paths]
    if settings.get("inspect_image") not in range(len(images.paths)):
        settings.put("inspect_image", 0)
    idx = st.selectbox("Image", range(len(images.paths)), format_func=lambda i: names[i],
                       **settings.bind("inspect_image"))
    path = images.paths[idx]
    left, right = st.columns([1, 1])
    try:
        left.image(kit.read_image(path), caption=names[idx], width=420)
    except ValueError as exc:  # changed or damaged since the folder was read: say why, never a traceback
        st.error(f"{names[idx]} cannot be read: {exc}. Choose another photo.", icon=":material/broken_image:")
        st.stop()
    table = calls.top5(path, bb)
    right.subheader("Top-5 ImageNet labels")
    right.dataframe(table[["rank", "name", "probability", "synset"]], hide_index=True, key="top5",
                    column_config={"probability": st.column_config.ProgressColumn(min_value=0, max_value=1)})
    ranks = table["rank"].astype(int).tolist()
    label_of = dict(zip(ranks, table["name"].str.split(",").str[0]))
    if settings.get("inspect_rank") not in ranks:
        settings.put("inspect_rank", ranks[0])
    rank = right.radio("The maps explain", ranks, horizontal=True, **settings.bind("inspect_rank"),
                       format_func=lambda r: f"{r}. {label_of[r]}")
    class_index = int(table.loc[table["rank"] == rank, "class_index"].iloc[0])
    kinds = st.multiselect("Maps", ["CAM", "Grad-CAM", "Guided backprop", "Guided Grad-CAM"],
                           **settings.bind("maps", default=["CAM", "Guided backprop"]))
    funcs = {"CAM": kit.inspect.cam, "Grad-CAM": kit.inspect.gradcam,
             "Guided backprop": kit.inspect.guided_backprop, "Guided Grad-CAM": kit.inspect.guided_gradcam}
    st.caption(f"Every map explains **{label_of[rank]}** (rank {rank}, ImageNet class {class_index}). Heat maps: "
               "where the evidence is; guided backprop: which pixels' edges push the class up.")
    cols = st.columns(max(1, len(kinds)))
    for col, kind in zip(cols, kinds):
        with st.spinner(f"{kind} for {label_of[rank]}..."):
            exp = funcs[kind]([path], backbone=bb, class_index=class_index)
        shown = exp.gradients[0] if exp.gradients is not None else exp.overlays[0]
        col.image(shown, caption=f"{kind}: {exp.class_names[0].split(',')[0]}", width="stretch")
