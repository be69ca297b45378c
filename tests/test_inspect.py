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

    from kit._utils.wordvec import weighted_average_linkage

    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 4))
    w = np.array([1, 3, 1, 2, 1, 1])
    Z = weighted_average_linkage(X, w)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    Zr = hierarchy.linkage(np.repeat(Xn, w, axis=0), method="average", metric="cosine")
    # the last merges (between distinct points) have the same heights
    np.testing.assert_allclose(Z[:, 2][-5:], Zr[:, 2][-5:], atol=1e-9)


def test_phrase_vectors_glove():
    from kit._utils.wordvec import phrase_vectors

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

    from kit._utils.wordvec import phrase_vectors

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


# ------------------------------------------------------------------ maps and the top-5 table agree
@pytest.fixture(scope="module")
def clothing_photos():
    """Ten real photos of kit.datasets.clothing(), one in fifty (every class, mostly 240x320 portraits)."""
    return sorted(str(p) for p in kit.datasets.clothing().rglob("*.jpg"))[::50]


def test_maps_explain_the_rank1_class_of_top_labels(clothing_photos):
    top = ins.top_labels(clothing_photos, k=1).table.set_index("path")["class_index"]
    rank1 = [int(top[p]) for p in clothing_photos]
    for p, expected in zip(clothing_photos, rank1):  # one path at a time, as the dashboard asks
        assert ins.cam(p).class_index[0] == expected, p
    for fn in (ins.gradcam, ins.guided_backprop):
        assert fn(clothing_photos).class_index.tolist() == rank1
    # the squashed whole photo (what the maps used before) ranks other classes first on some of these photos:
    # the agreement above is not a given
    squashed = ins.cam(clothing_photos, resize="squash").class_index.tolist()
    assert squashed != rank1
    # the same preprocessing on both sides agrees again
    top_squashed = ins.top_labels(clothing_photos, k=1, resize="squash").table
    assert top_squashed["class_index"].tolist() == squashed


def test_maps_cover_the_part_the_network_saw(clothing_photos):
    photo = kit.read_image(clothing_photos[0])
    h, w = photo.shape[:2]
    assert (h, w) == (320, 240)  # portrait: the centre crop is the square rows 40..280
    exp = ins.cam(clothing_photos[0])
    assert exp.boxes == [(0, 40, 240, 280)] and exp.heatmaps[0].shape == (320, 240)
    heat = exp.heatmaps[0]
    assert heat[:40].max() == 0 and heat[280:].max() == 0 and heat[40:280].max() > 0.9
    # outside the crop the overlay is the photo darkened; inside, the photo with the map blended in
    outside = exp.overlays[0][:40].astype(float)
    assert outside.mean() < 0.5 * photo[:40].mean()
    squashed = ins.cam(clothing_photos[0], resize="squash")
    assert squashed.boxes == [(0, 0, 240, 320)] and squashed.heatmaps[0][:40].max() > 0
    padded = ins.cam(clothing_photos[0], resize="pad")  # the photo fills the middle 168 columns of 224
    assert padded.heatmaps[0].shape == (320, 240) and padded.heatmaps[0].std() > 0.05
    assert ins._input_box((320, 240), 224, "pad") == (28, 0, 196, 224)
    assert ins._input_box((240, 320), 224, "pad") == (0, 28, 224, 196)
    with pytest.raises(ValueError, match="'resize' parameter of cam"):
        ins.cam(clothing_photos[0], resize="stretch")


def test_guided_backprop_shows_the_gradient_not_the_photo(clothing_photos):
    exp = ins.guided_backprop(clothing_photos[:4])
    assert exp.gradients is not None
    for path, grad, over, heat, box in zip(clothing_photos, exp.gradients, exp.overlays, exp.heatmaps, exp.boxes):
        photo = kit.read_image(path)
        assert grad.shape == photo.shape and grad.dtype == np.uint8
        assert np.array_equal(over, grad)  # the tile to look at is the gradient image
        left, top, right, bottom = box
        g = grad[top:bottom, left:right].astype(float).mean(axis=-1)
        p = photo[top:bottom, left:right].astype(float).mean(axis=-1)
        corr = np.corrcoef(g.ravel(), p.ravel())[0, 1]
        print(f"{path.split('/')[-2]}: correlation with the photo {corr:+.2f}, std {g.std():.1f}")
        assert abs(corr) < 0.6  # not the photo
        assert g.std() > 30 and g.max() >= 250 and np.percentile(g, 5) < 10  # stretched: black to white
        assert grad[:top].max(initial=0) == 0 and heat[:top].max(initial=0) == 0  # not seen: black
        assert 0 <= heat.min() and heat.max() == pytest.approx(1.0)


def test_maps_honour_class_index(clothing_photos):
    path = clothing_photos[3]
    top = ins.top_labels(path, k=2).table
    first, second = (int(c) for c in top["class_index"])
    for fn in (ins.cam, ins.gradcam, ins.guided_gradcam, ins.guided_backprop):
        a, b = fn(path, class_index=first), fn(path, class_index=second)
        assert (a.class_index[0], b.class_index[0]) == (first, second)
        assert a.class_names == [top["name"].iloc[0]] and b.class_names == [top["name"].iloc[1]]
        diff = np.abs(a.heatmaps[0] - b.heatmaps[0]).mean()
        print(f"{fn.__name__}: mean |difference| between the maps of two classes {diff:.4f}")
        # guided backprop alone hardly depends on the class (a known property of the method); it still differs
        assert diff > (1e-4 if fn is ins.guided_backprop else 0.02)


# ------------------------------------------------------------------ naming and ordering clusters
def test_cluster_names_from_truth_top_labels_or_ids():
    labels = [1, 1, 1, 0, 0, -1, 1, -1]
    truth = ["shirt", "hat", "shirt", "hat", "hat", "dress", "shirt", "hat"]
    names = ins.cluster_names(labels, truth=truth)
    assert list(names.columns) == ["cluster", "size", "name", "share", "source"]
    assert names["cluster"].tolist() == [0, 1, -1] and names["size"].tolist() == [2, 4, 2]
    assert names["name"].tolist() == ["hat", "shirt", "noise"]
    assert names["share"].tolist()[:2] == [1.0, 0.75] and np.isnan(names["share"].iloc[2])
    assert names["source"].tolist() == ["true label", "true label", "noise"]
    assert names.attrs == {}

    # rank-1 ImageNet names, shortened before the first comma; rank 2 rows are ignored
    paths = [f"/p/{i}.jpg" for i in range(len(labels))]
    first = ["jersey, T-shirt, tee shirt", "jersey, T-shirt, tee shirt", "cardigan", "cowboy hat, ten-gallon hat",
             "sombrero", "cowboy hat, ten-gallon hat", "cardigan", "sombrero"]
    rows = [(p, 1, 0, "n0", n, 0.5) for p, n in zip(paths, first)] + [(p, 2, 1, "n1", "mitten", 0.1) for p in paths]
    top = pd.DataFrame(rows, columns=["path", "rank", "class_index", "synset", "name", "probability"])
    named = ins.cluster_names(labels, top=ins.TopLabels(table=top, unreadable=pd.DataFrame()))
    # cluster 1: jersey x2, cardigan x2 -> tie, the first in sorted order; cluster 0: cowboy hat, sombrero -> tie
    assert named["name"].tolist() == ["cowboy hat", "cardigan", "noise"]
    assert named["share"].tolist()[:2] == [0.5, 0.5] and named["source"].tolist()[:2] == ["ImageNet"] * 2
    # matched by path, in any row order, with a photo top_labels could not read
    shuffled = top.sample(frac=1, random_state=0)
    shuffled = shuffled[shuffled["path"] != paths[2]]
    by_path = ins.cluster_names(labels, top=shuffled, paths=paths)
    assert by_path["name"].tolist()[:2] == ["cowboy hat", "jersey"] and by_path["share"].iloc[1] == 0.5
    with pytest.raises(ValueError, match="7 rank-1 rows for 8 labels.*paths="):
        ins.cluster_names(labels, top=shuffled)
    # truth wins over top; neither: ids
    assert ins.cluster_names(labels, truth=truth, top=top)["source"].iloc[0] == "true label"
    plain = ins.cluster_names(labels)
    assert plain["name"].tolist() == ["cluster 0", "cluster 1", "noise"]
    assert plain["source"].tolist() == ["id", "id", "noise"] and plain["share"].isna().all()
    with pytest.raises(ValueError, match="truth has 2 entries for 8 labels"):
        ins.cluster_names(labels, truth=["a", "b"])


def test_gallery_order_ranks_by_similarity_and_marks_outliers():
    # cluster 0: nine vectors along (1, 0) with small tilts and one at 90 degrees -> the outlier
    angles = np.r_[np.linspace(-0.1, 0.1, 9), np.pi / 2]
    X0 = np.c_[np.cos(angles), np.sin(angles), np.zeros(10)]
    # cluster 1: three vectors (0, 0, 1), (0, 0, 2) (same direction) and (0, 1, 1)
    X1 = np.array([[0, 0, 1], [0, 0, 2], [0, 1, 1]], float)
    noise = np.array([[0, 0.1, 1], [1, 0.2, 0]], float)  # near cluster 1's centre, nearer cluster 0's
    X = np.vstack([noise[:1], X0, X1, noise[1:]])
    labels = np.r_[-1, np.zeros(10, int), np.ones(3, int), -1]
    order = ins.gallery_order(X, labels)
    assert list(order.columns) == ["index", "cluster", "similarity", "rank", "outlier"]
    assert order["cluster"].tolist() == [0] * 10 + [1] * 3 + [-1, -1]
    assert order.attrs == {} and order["outlier"].dtype == bool
    c0 = order[order["cluster"] == 0]
    assert c0["rank"].tolist() == list(range(10)) and c0["similarity"].is_monotonic_decreasing
    # the centre points at atan2(sum of sines = 1, sum of cosines ~ 8.985) ~ 0.111 rad: the largest tilt (0.1 rad,
    # row 9) is the most representative, then decreasing tilts, and the vector at 90 degrees is last
    centre = np.arctan2(np.sin(angles).sum(), np.cos(angles).sum())
    assert 0.1 < centre < 0.12
    assert c0["index"].tolist() == [9, 8, 7, 6, 5, 4, 3, 2, 1, 10]
    np.testing.assert_allclose(c0["similarity"], np.cos(centre - angles[[8, 7, 6, 5, 4, 3, 2, 1, 0, 9]]))
    assert c0["outlier"].tolist() == [False] * 9 + [True]  # 10% of 10
    # cluster 1 by hand: unit vectors a = b = (0, 0, 1), c = (0, 1, 1)/sqrt2; mean (0, 1/(3 sqrt2), (2 + 1/sqrt2)/3)
    u = np.array([0, 1 / (3 * np.sqrt(2)), (2 + 1 / np.sqrt(2)) / 3])
    u /= np.linalg.norm(u)
    c1 = order[order["cluster"] == 1]
    assert c1["index"].tolist() == [11, 12, 13] and not c1["outlier"].any()  # under 10 members: no outliers
    np.testing.assert_allclose(c1["similarity"], [u[2], u[2], (u[1] + u[2]) / np.sqrt(2)])
    # noise: no similarity, never outliers, nearest a centre first (row 14 is nearly on cluster 0's centre)
    n = order[order["cluster"] == -1]
    assert n["index"].tolist() == [14, 0] and n["rank"].tolist() == [0, 1]
    assert n["similarity"].isna().all() and not n["outlier"].any()
    assert ins.gallery_order(X, labels, outlier_fraction=0.2)["outlier"].sum() == 2
    assert ins.gallery_order(X, labels, outlier_fraction=0)["outlier"].sum() == 0
    with pytest.raises(ValueError, match="'outlier_fraction' parameter of gallery_order"):
        ins.gallery_order(X, labels, outlier_fraction=1.5)
    with pytest.raises(ValueError, match="labels has 3 entries for 15 vectors"):
        ins.gallery_order(X, [0, 0, 1])
    # flags from elsewhere (kit.curate.outlier_scores) replace the fraction rule, noise included, in input order
    flags = np.zeros(15, bool)
    flags[[0, 12]] = True
    given = ins.gallery_order(X, labels, outliers=flags)
    assert sorted(given.loc[given["outlier"], "index"]) == [0, 12]
    assert given["index"].tolist() == order["index"].tolist()  # the order itself does not change
    with pytest.raises(ValueError, match="outliers must hold one bool per photo"):
        ins.gallery_order(X, labels, outliers=[True, False])


def test_gallery_order_on_real_embeddings():
    """On real photos (120 of kit.datasets.clothing(), 12 per class, grouped by true class) the outliers of each
    group are its least similar members, and the representatives are typical of the group."""
    paths = sorted(str(p) for p in kit.datasets.clothing().rglob("*.jpg"))
    paths = [p for i, p in enumerate(paths) if i % 50 < 12]
    emb = kit.embed(paths, use_cache=False)
    codes = pd.factorize(np.array([p.split("/")[-2] for p in emb.paths]))[0]
    order = ins.gallery_order(emb.vectors, codes)
    assert len(order) == len(codes) == 120 and sorted(order["index"]) == list(range(120))
    for c, g in order.groupby("cluster"):
        assert g["outlier"].sum() == 1  # 10% of 12, rounded down
        assert g.loc[g["outlier"], "similarity"].max() <= g.loc[~g["outlier"], "similarity"].min()
    # the most representative photo of a group is nearer the other members than its outlier is, on average
    X = emb.vectors / np.linalg.norm(emb.vectors, axis=1, keepdims=True)
    better = 0
    for c, g in order.groupby("cluster"):
        members = g["index"].to_numpy()
        mean_sim = lambda i: float(np.mean([X[i] @ X[j] for j in members if j != i]))
        better += mean_sim(g["index"].iloc[0]) > mean_sim(g.loc[g["outlier"], "index"].iloc[0])
    assert better == 10
