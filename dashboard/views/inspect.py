import streamlit as st

import kit
import state

st.title("Inspect an image")
folder = state.folder()
if state.need_folder(folder):
    images = state.load_images(folder)
    bb = state.primary_backbone()
    if not kit.backbones.get(bb).can_classify:
        st.warning(f"{bb} has no classifier; choose a backbone that can classify as the first one in the sidebar.")
        st.stop()
    names = [p.split("/")[-1] for p in images.paths]
    idx = st.selectbox("Image", range(len(images.paths)), format_func=lambda i: names[i], key="inspect_image")
    path = images.paths[idx]
    left, right = st.columns([1, 1])
    left.image(kit.read_image(path), caption=names[idx], width=420)
    table = state.top5(path, bb)
    right.subheader("Top-5 ImageNet labels")
    right.dataframe(table[["rank", "name", "probability", "synset"]], hide_index=True, key="top5",
                    column_config={"probability": st.column_config.ProgressColumn(min_value=0, max_value=1)})
    kinds = st.multiselect("Maps", ["CAM", "Grad-CAM", "Guided backprop", "Guided Grad-CAM"],
                           ["CAM", "Guided backprop"], key="maps")
    funcs = {"CAM": kit.inspect.cam, "Grad-CAM": kit.inspect.gradcam,
             "Guided backprop": kit.inspect.guided_backprop, "Guided Grad-CAM": kit.inspect.guided_gradcam}
    cols = st.columns(max(1, len(kinds)))
    for col, kind in zip(cols, kinds):
        with st.spinner(f"{kind}..."):
            exp = funcs[kind]([path], backbone=bb)
        col.image(exp.overlays[0], caption=f"{kind}: {exp.class_names[0].split(',')[0]}", width="stretch")
        if exp.gradients is not None:
            col.image(exp.gradients[0], caption="gradient", width="stretch")
