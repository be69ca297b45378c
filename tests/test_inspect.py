"""Semantic inspection: ImageNet labels, CAM / Grad-CAM / guided backprop, cluster explanations, and K from
word vectors."""
import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import kit
from kit import backbones
from kit import inspect as ins

CUP_BOX = (170, 15, 410, 305)  # x0, y0, x1, y1 of the cup (with its handle) in skimage's 600x400 coffee photo


@pytest.fixture(scope="module")
def photos(tmp_path_factory, coffee_and_cat):
    folder = tmp_path_factory.mktemp("photos")
    Image.fromarray(coffee_and_cat[0]).save(folder / "coffee.png")
    Image.fromarray(coffee_and_cat[1]).save(folder / "chelsea.png")
    return folder


def test_class_names_and_synsets():
    assert ins.class_name(967) == "espresso" and ins.synset(967) == "n07920052"
    assert ins.class_name(0) == "tench, Tinca tinca" and ins.synset(0) == "n01440764"
    assert ins.class_name(281) == "tabby, tabby cat" and ins.synset(281) == "n02123045"


def test_top5_labels(photos):
    top = ins.top_labels([photos / "coffee.png", photos / "chelsea.png"], k=5)
    table = top.table
    assert table.attrs == {} and len(top.unreadable) == 0
    assert list(table.columns) == ["path", "rank", "class_index", "synset", "name", "probability"]
    coffee = table[table["path"].str.endswith("coffee.png")]
    cat = table[table["path"].str.endswith("chelsea.png")]
    assert "espresso" in set(coffee["name"]) and coffee.iloc[0]["name"] == "espresso"
    assert 281 <= cat.iloc[0]["class_index"] <= 285  # a cat class
    assert (coffee["probability"].diff().dropna() <= 0).all() and coffee["probability"].sum() <= 1.0001
    with pytest.raises(ValueError, match="k=0"):
        ins.top_labels([photos / "coffee.png"], k=0)


def test_top_labels_reports_unreadable_images_beside_a_plain_table(photos, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    top = ins.top_labels([photos / "coffee.png", broken], k=2)
    assert list(top.unreadable["path"]) == [str(broken)] and top.unreadable["reason"].str.len().min() > 0
    assert set(top.table["path"]) == {str(photos / "coffee.png")} and top.table.attrs == {}
    for df in (top.table, top.unreadable):
        df.astype(str)
        pd.concat([df, df])
        df.to_parquet(io.BytesIO())


def _mass_in_box(heatmap, box):
    x0, y0, x1, y1 = box
    return heatmap[y0:y1, x0:x1].sum() / heatmap.sum()


def test_cam_looks_at_the_cup(coffee_and_cat):
    exp = ins.cam([coffee_and_cat[0]])
    heat = exp.heatmaps[0]
    assert heat.shape == (400, 600) and exp.overlays[0].shape == (400, 600, 3)
    assert exp.class_names[0] == "espresso"
    assert heat.std() > 0.05  # not constant
    share = _mass_in_box(heat, CUP_BOX)
    print(f"CAM mass inside the cup box: {share:.2f} (box is {240 * 290 / 240000:.0%} of the photo)")
    assert share > 0.5


@pytest.mark.parametrize("fn", [ins.gradcam, ins.guided_backprop, ins.guided_gradcam])
def test_other_maps_have_image_shape_and_vary(fn, coffee_and_cat):
    exp = fn(list(coffee_and_cat))  # a batch of two
    assert [h.shape for h in exp.heatmaps] == [(400, 600), (300, 451)]
    assert all(h.std() > 0.01 for h in exp.heatmaps)
    if exp.gradients is not None:
        assert exp.gradients[0].shape == (400, 600, 3)
    if fn is ins.gradcam:
        assert _mass_in_box(exp.heatmaps[0], CUP_BOX) > 0.4


def test_guided_model_has_the_same_forward_pass(coffee_and_cat):
    plain = backbones.keras_model("efficientnet_lite0")
    guided = backbones.keras_model("efficientnet_lite0", guided=True)
    x = np.asarray(Image.fromarray(coffee_and_cat[0]).resize((224, 224)), np.float32)[None] / 255
    np.testing.assert_allclose(np.asarray(plain(x)[1]), np.asarray(guided(x)[1]), atol=1e-4)


def test_explain_cluster(photos, coffee_and_cat, tmp_path):
    for i in range(3):
        Image.fromarray(np.roll(coffee_and_cat[0], 20 * i, axis=1)).save(tmp_path / f"coffee{i}.png")
        Image.fromarray(np.roll(coffee_and_cat[1], 20 * i, axis=1)).save(tmp_path / f"cat{i}.png")
    emb = kit.embed(tmp_path, use_cache=False)
    labels = np.array([0 if "coffee" in p else 1 for p in emb.paths])
    exp = ins.explain_cluster(emb, labels, 0, n_members=2)
    assert exp.size == 3 and len(exp.representatives) == 2
    assert exp.labels.iloc[0]["name"] == "espresso" and exp.labels.iloc[0]["fraction"] >= 2 / 3
    assert len(exp.cams.overlays) == 2
    # each overlay maps the class the table names for that photo (its top-1 label)
    top1 = ins.top_labels(exp.representatives, k=1).table.set_index("path")["name"]
    assert exp.cams.class_names == [top1[p] for p in exp.representatives]
    with pytest.raises(ValueError, match="cluster=7"):
        ins.explain_cluster(emb, labels, 7)


def test_keras_applications_offline_message_and_local_weights(tmp_path):
    import keras

    spec = backbones.get("keras_mobilenet_v2")
    assert not backbones.is_offline_ready(spec)
    # with no weights in the Keras cache and no network, it fails fast with advice
    with pytest.raises(backbones.BackboneUnavailableError, match="cannot reach"):
        backbones.keras_model("keras_mobilenet_v2")
    # a local weights file in the Keras cache is used (MobileNetV2's file has no published hash to check)
    path = backbones.keras_weights_path("keras_mobilenet_v2")
    path.parent.mkdir(parents=True, exist_ok=True)
    import h5py
    from keras.src.legacy.saving import legacy_h5_format  # the format of Keras' published weight files

    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, keras.applications.MobileNetV2(weights=None))
    try:
        assert backbones.is_offline_ready(spec)
        exp = ins.cam([np.zeros((50, 80, 3), np.uint8) + 120], backbone="keras_mobilenet_v2")
        assert exp.heatmaps[0].shape == (50, 80)
    finally:
        path.unlink()


# ------------------------------------------------------------------ K from word vectors
def test_weighted_linkage_equals_repeated_points():
    from scipy.cluster import hierarchy

    from kit._wordvec import weighted_average_linkage

    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 4))
    w = np.array([1, 3, 1, 2, 1, 1])
    Z = weighted_average_linkage(X, w)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    Zr = hierarchy.linkage(np.repeat(Xn, w, axis=0), method="average", metric="cosine")
    # the last merges (between distinct points) have the same heights
    np.testing.assert_allclose(Z[:, 2][-5:], Zr[:, 2][-5:], atol=1e-9)


def test_phrase_vectors_glove():
    from kit._wordvec import phrase_vectors

    cat, dog, car, none = phrase_vectors(["tabby, tabby cat", "dog", "sports car", "qqzzxxq"])
    cos = lambda a, b: float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert cos(cat, dog) > cos(cat, car) and none is None


def test_word_vectors_k_on_clothing10(clothing10):
    wv = kit.k.word_vectors(kit.load_folder(clothing10))
    print(f"word-vector K = {wv.k} from {len(wv.labels)} distinct labels; groups: {wv.groups[:4]}")
    assert 4 <= wv.k <= 20
    assert len(wv.groups) == wv.k and wv.linkage.shape == (len(wv.labels) - 1, 4)
    all_names = {ins.class_name(i) for i in range(1000)}
    assert all(name in all_names for g in wv.groups for name in g)
    assert 0.9 * 1485 <= wv.counts.sum() <= 1485  # one top-1 label per photo, bar labels with no vector


def test_phrase_vectors_from_word2vec_file_and_hub_text_model(tmp_path):
    import tensorflow as tf

    from kit._wordvec import phrase_vectors

    (tmp_path / "tiny.txt").write_text("3 2\ncat 1 0\ntabby 0.8 0.2\ncar 0 1\n")
    cat, car = phrase_vectors(["tabby cat", "car"], vectors=str(tmp_path / "tiny.txt"))
    np.testing.assert_allclose(cat, [0.9, 0.1], atol=1e-6)
    np.testing.assert_allclose(car, [0, 1], atol=1e-6)

    module = tf.Module()

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def embed(texts):
        return tf.one_hot(tf.strings.to_hash_bucket_fast(texts, 16), 16)

    module.__call__ = embed
    tf.saved_model.save(module, str(tmp_path / "text_model"))
    a, b, a2 = phrase_vectors(["espresso", "jersey", "espresso"], vectors=str(tmp_path / "text_model"))
    assert a.shape == (16,) and np.array_equal(a, a2) and a.sum() == 1
