"""Faces on real photos (../shared/data/faces_5celeb: 93 tight 150x150 crops of 5 people): detection, the
crop-as-face option, the process pool, the cache, clustering quality, scores with photos that have no face,
and crops for galleries and exports."""
import itertools
import os
import re
import shutil

import numpy as np
import pytest
from PIL import Image

import kit
from kit import faces
from kit.metrics import bcubed_precision_recall_f, pairwise_precision_recall_f

from conftest import shared_folder


# ----------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def faces5():
    return kit.load_folder(shared_folder("faces_5celeb"))


@pytest.fixture(scope="session")
def crop_emb(faces5):
    """Descriptors with crop_as_face=True (whole crop aligned as the face)."""
    return kit.embed(faces5, backbone=faces.backbone(crop_as_face=True))


@pytest.fixture(scope="session")
def hog_emb(faces5):
    """HOG upsample 1, the default backbone, computed with two processes and no cache."""
    calls = []
    emb = kit.embed(faces5, backbone="dlib_face", use_cache=False, num_workers=2,
                    progress=lambda d, t, s: calls.append((d, t, s)))
    emb.progress_calls = calls
    return emb


@pytest.fixture
def people_and_coffee(faces5, tmp_path):
    """A labelled folder with 4 photos of each of 3 people plus skimage's coffee cup in one person's folder
    (a photo without a face)."""
    from skimage import data

    root = tmp_path / "photos"
    chosen = {}
    for path, label in zip(faces5.paths, faces5.labels):
        if label in ("ben_afflek", "madonna", "mindy_kaling") and len(chosen.setdefault(label, [])) < 4:
            chosen[label].append(path)
    for label, paths in chosen.items():
        (root / label).mkdir(parents=True)
        for p in paths:
            shutil.copy(p, root / label)
    Image.fromarray(data.coffee()).save(root / "madonna" / "coffee.jpg")
    return root


def _listing(root):
    return sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*"))


# ------------------------------------------------------------------------------------------ backbone
def test_dlib_face_is_registered_and_offline():
    table = kit.backbones.available().set_index("name")
    row = table.loc["dlib_face"]
    assert (row.source, row.feature_dim, bool(row.can_classify), bool(row.offline)) == ("dlib", 128, False, True)
    assert faces.model_dir().is_dir()
    assert kit.Embeddings(vectors=np.zeros((0, 3), np.float32), paths=[], labels=None, backbone="x",
                          preprocessing={}).faces is None  # existing callers unaffected


def test_settings_errors_name_the_parameter():
    for kwargs in [{"detector": "mtcnn"}, {"upsample": -1}, {"upsample": True}, {"keep": "biggest"},
                   {"max_side": 10}, {"jitter": 1.5}, {"crop_as_face": 1}]:
        (name, value), = kwargs.items()
        with pytest.raises(ValueError, match=rf"'{name}' parameter of FaceSettings .*got {re.escape(repr(value))}"):
            faces.backbone(**kwargs)
    X = np.random.default_rng(0).normal(size=(10, 128)).astype(np.float32)
    with pytest.raises(ValueError, match="n_clusters"):
        faces.cluster_faces(X, "kmeans")
    with pytest.raises(ValueError, match="'method' parameter of FaceClustering .*got 'spectral'"):
        faces.cluster_faces(X, "spectral")
    with pytest.raises(ValueError, match="'threshold' parameter of FaceClustering .*got -0.5"):
        faces.cluster_faces(X, "agglomerative", threshold=-0.5)
    assert faces.cluster_faces(X, "agglomerative", threshold=np.float32(0.6)).shape == (10,)


# ----------------------------------------------------------------------------------------- detection
def test_hog_detection_finds_at_least_85_of_93(faces5, hog_emb):
    n = len(faces5)
    assert n == 93
    print(f"HOG upsample 1: {len(hog_emb)} faces in {n} photos, {hog_emb.stats}")
    assert len(hog_emb) >= 85
    assert hog_emb.stats["processes"] == 2 and hog_emb.stats["faces"] == len(hog_emb)
    done = [d for d, _, _ in hog_emb.progress_calls]
    assert hog_emb.progress_calls[-1] == (n, n, "faces") and done == sorted(done) and len(set(done)) > 10
    assert hog_emb.vectors.shape == (len(hog_emb), 128) and hog_emb.vectors.dtype == np.float32
    # every photo is accounted for: a face row, or "no face found"
    assert set(hog_emb.paths) | set(hog_emb.unreadable["path"]) == set(faces5.paths)
    assert (hog_emb.unreadable["reason"] == faces.NO_FACE).all()
    assert len(hog_emb.unreadable) == hog_emb.stats["no_face"] == n - len(hog_emb)
    assert f"{n - len(hog_emb)} unreadable" in repr(hog_emb)
    # one face per photo ("largest"), boxes inside the 150x150 photos, labels are the photos' folders
    table = hog_emb.faces
    assert list(table["path"]) == hog_emb.paths and (table["face"] == 0).all()
    assert (table["left"] >= 0).all() and (table["right"] <= 149).all() and (table["left"] < table["right"]).all()
    assert ((table["right"] - table["left"]) > 60).all()  # the face fills much of a tight crop
    label_of = dict(zip(faces5.paths, faces5.labels))
    assert hog_emb.labels == [label_of[p] for p in hog_emb.paths]
    # raw dlib descriptors, not normalised (the 0.6 Euclidean threshold keeps its meaning)
    norms = np.linalg.norm(hog_emb.vectors, axis=1)
    assert norms.min() > 1.1 and norms.max() < 2.0


def test_cnn_detector_finds_the_same_faces(hog_emb):
    paths = hog_emb.paths[::30]  # 3 photos of different people
    cnn = kit.embed(paths, backbone=faces.backbone(detector="cnn"), use_cache=False)
    assert cnn.paths == paths and cnn.preprocessing["detector"] == "cnn"
    assert (cnn.faces["score"] > 0.5).all()  # mmod confidences
    dist = np.linalg.norm(cnn.vectors - hog_emb.vectors[::30], axis=1)
    print("CNN vs HOG descriptors of the same photos:", dist)
    assert (dist < 0.35).all()


def test_process_pool_gives_the_same_descriptors(faces5, hog_emb):
    one = kit.embed(faces5, backbone="dlib_face", use_cache=False, num_workers=1)
    assert one.stats["processes"] == 1
    # by default a pool starts only when it pays for its start-up; an explicit num_workers is obeyed
    assert faces.processes_for(93, faces.FaceSettings()) == 1
    assert faces.processes_for(500, faces.FaceSettings()) == os.cpu_count()
    assert faces.processes_for(93, faces.FaceSettings(), 2) == 2
    assert one.paths == hog_emb.paths
    np.testing.assert_array_equal(one.vectors, hog_emb.vectors)
    assert one.faces.equals(hog_emb.faces)


def test_keep_all_faces_and_large_photos(faces5, tmp_path):
    """Two people side by side in one photo, and one face in a 1800x1200 photo (detected on a copy)."""
    by_label = {}
    for p, lab in zip(faces5.paths, faces5.labels):
        by_label.setdefault(lab, []).append(p)
    ben, elton = kit.read_image(by_label["ben_afflek"][0]), kit.read_image(by_label["elton_john"][0])
    folder = tmp_path / "group"
    folder.mkdir()
    pair = np.full((190, 340, 3), 255, np.uint8)
    pair[20:170, 10:160], pair[20:170, 180:330] = ben, elton
    Image.fromarray(pair).save(folder / "pair.png")
    big = Image.new("RGB", (1800, 1200), (90, 120, 90))
    big.paste(Image.fromarray(ben).resize((450, 450), Image.Resampling.LANCZOS), (900, 300))
    big.save(folder / "big.png")
    singles = kit.embed([by_label["ben_afflek"][0], by_label["elton_john"][0]], backbone="dlib_face")

    every = kit.embed(folder, backbone=faces.backbone(keep="all"))
    rows = every.faces[every.faces["path"].str.endswith("pair.png")]
    assert len(rows) == 2 and list(rows["face"]) == [0, 1] and (rows["faces_in_photo"] == 2).all()
    got = every.vectors[rows.index]
    order = np.argsort(rows["left"].to_numpy())  # left face is Ben, right face is Elton
    dist = np.linalg.norm(got[order] - singles.vectors, axis=1)
    print("pair vs single-photo descriptors:", dist)
    assert (dist < 0.45).all()

    largest = kit.embed(folder, backbone="dlib_face")
    assert sorted(largest.faces["faces_in_photo"]) == [1, 2] and len(largest) == 2
    big_row = largest.faces[largest.faces["path"].str.endswith("big.png")].iloc[0]
    # the box is in the full photo's coordinates although detection ran on a 1024-px copy
    assert 880 <= big_row.left <= 1000 and 280 <= big_row.top <= 400 and 1250 <= big_row.right <= 1370
    d_big = np.linalg.norm(largest.vectors[big_row.name] - singles.vectors[0])
    print("1800x1200 photo vs the crop:", d_big)
    assert d_big < 0.45


# ------------------------------------------------------------------------------------------ quality
def test_crop_as_face_default_method_bcubed(crop_emb):
    assert len(crop_emb) == 93 and len(crop_emb.unreadable) == 0
    assert crop_emb.preprocessing["crop_as_face"] is True and "detector" not in crop_emb.preprocessing
    model = faces.FaceClustering().fit(crop_emb)
    s = faces.score(crop_emb, model.labels_)
    print(f"crop_as_face, auto = {model.method_} {model.threshold_}: {s}")
    assert s["bcubed_f"] >= 0.95
    assert 5 <= s["n_clusters"] <= 7


@pytest.mark.parametrize("method, threshold, minimum", [
    ("agglomerative", None, 0.95), ("dlib_chinese_whispers", None, 0.95), ("dlib_chinese_whispers", 0.5, 0.75),
    ("dbscan", None, 0.93), ("chinese_whispers", None, 0.95), ("leiden", None, 0.95), ("infomap", None, 0.93),
    ("kmeans", None, 0.95), ("hard_clusters", None, 0.95),
])
def test_every_method_on_crops(crop_emb, method, threshold, minimum):
    labels = faces.cluster_faces(crop_emb, method, threshold=threshold, n_clusters=5 if method == "kmeans" else None)
    f = faces.score(crop_emb, labels)["bcubed_f"]
    print(f"{method} {threshold}: BCubed F {f:.3f}, {len(set(labels.tolist()) - {-1})} clusters")
    assert f >= minimum
    if threshold == 0.5:  # dlib's usual 0.5 over-splits these faces
        assert f < 0.9


def test_detected_faces_cluster_well_and_repeatably(hog_emb):
    labels = faces.cluster_faces(hog_emb)
    assert faces.score(hog_emb, labels)["bcubed_f"] >= 0.95
    a = faces.cluster_faces(hog_emb, "dlib_chinese_whispers", random_state=3)
    b = faces.cluster_faces(hog_emb, "dlib_chinese_whispers", random_state=3)
    np.testing.assert_array_equal(a, b)


def test_hard_clusters_threshold_is_dlib_euclidean():
    """threshold=0.6 in dlib's units becomes tau = 0.6**2 / (2 r**2) on the cosine distance: exact for rows of one
    norm r (the pairs closer than 0.6 are exactly those of 1 - cos below tau)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 128))
    X = 1.5 * X / np.linalg.norm(X, axis=1, keepdims=True)
    tau = faces.cosine_distance_of(0.6, X)
    assert tau == pytest.approx(0.36 / (2 * 2.25))
    from scipy.spatial.distance import pdist

    np.testing.assert_array_equal(pdist(X) < 0.6, pdist(X, "cosine") < tau)
    model = faces.FaceClustering("hard_clusters", k=5).fit(X.astype(np.float32))
    assert (model.method_, model.threshold_) == ("hard_clusters", 0.6)
    assert model.estimator_.distance == "cosine" and model.estimator_.tau == pytest.approx(tau)
    assert model.estimator_.k == 5
    assert faces.cosine_distance_of(10.0, X) == 2.0  # capped: the largest cosine distance
    with pytest.raises(ValueError, match="all zero"):
        faces.cosine_distance_of(0.6, np.zeros((3, 4)))


def test_hard_clusters_on_few_photos_per_person(hog_emb):
    """3 photos per person (10 draws): dlib's 0.6 as a cosine distance holds up; the paper's TPDi (relative to
    the neighbourhood) links most people together, which is why faces use the cosine distance."""
    from kit.cluster import HardClusters
    from kit.metrics import bcubed_f

    X, y = hog_emb.vectors, np.asarray(hog_emb.labels)
    cosine, tpdi = [], []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        idx = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:3] for c in np.unique(y)])
        cosine.append(bcubed_f(y[idx], faces.cluster_faces(X[idx], "hard_clusters")))
        tpdi.append(bcubed_f(y[idx], HardClusters(k=10, tau=0.7).fit(X[idx]).labels_))
    print(f"3 photos per person: hard_clusters 0.6 {np.mean(cosine):.3f}, TPDi 0.7 {np.mean(tpdi):.3f}")
    assert np.mean(cosine) >= 0.9 and np.mean(tpdi) < 0.6


def test_distances_same_vs_different_people(hog_emb):
    d = faces.pair_distances(hog_emb, hog_emb.labels)
    same, diff = d.distance[d.same], d.distance[~d.same]
    print(f"median distance same {same.median():.3f}, different {diff.median():.3f}")
    assert same.median() < 0.55 < 0.75 < diff.median()
    assert (diff < 0.6).mean() < 0.002 and (same < 0.6).mean() > 0.8


# -------------------------------------------------------------------------------------------- scores
def _brute_force(true, pred):
    """Pairwise and BCubed F straight from their definitions (loops over pairs and samples)."""
    n = len(true)
    tp = fp = fn = 0
    for i, j in itertools.combinations(range(n), 2):
        same_t, same_p = true[i] == true[j], pred[i] == pred[j]
        tp += same_t and same_p
        fp += same_p and not same_t
        fn += same_t and not same_p
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    pairwise = 2 * p * r / (p + r) if p + r else 0.0
    bp = np.mean([sum(pred[j] == pred[i] and true[j] == true[i] for j in range(n)) /
                  sum(pred[j] == pred[i] for j in range(n)) for i in range(n)])
    br = np.mean([sum(pred[j] == pred[i] and true[j] == true[i] for j in range(n)) /
                  sum(true[j] == true[i] for j in range(n)) for i in range(n)])
    return pairwise, 2 * bp * br / (bp + br)


def test_scores_match_kit_metrics_and_the_definitions(hog_emb, faces5):
    labels = faces.cluster_faces(hog_emb, "dlib_chinese_whispers", threshold=0.5)  # imperfect on purpose
    s = faces.score(hog_emb, labels)
    true = list(hog_emb.labels)
    assert s["pairwise_f"] == pairwise_precision_recall_f(true, labels)[2]
    assert s["bcubed_f"] == bcubed_precision_recall_f(true, labels)[2]
    pw, bc = _brute_force(true, labels.tolist())
    assert s["pairwise_f"] == pytest.approx(pw, abs=1e-12) and s["bcubed_f"] == pytest.approx(bc, abs=1e-12)
    assert 0.5 < s["bcubed_f"] < 0.95

    # photos without a face as singletons: the definitions on the extended labelling
    single = faces.score(hog_emb, labels, truth=faces5, no_face="singletons")
    missing = list(hog_emb.unreadable["path"])
    label_of = dict(zip(faces5.paths, faces5.labels))
    pw, bc = _brute_force(true + [label_of[p] for p in missing],
                          labels.tolist() + [1000 + k for k in range(len(missing))])
    assert single["n_no_face"] == len(missing) > 0 and single["n_faces"] == len(hog_emb)
    assert single["pairwise_f"] == pytest.approx(pw, abs=1e-12) and single["bcubed_f"] == pytest.approx(bc, abs=1e-12)


def test_no_face_photo_is_reported_and_scored_both_ways(people_and_coffee):
    before = _listing(people_and_coffee)
    images = kit.load_folder(people_and_coffee)
    calls = []
    emb = kit.embed(images, backbone="dlib_face", progress=lambda d, t, s: calls.append((d, t, s)))
    coffee = str(people_and_coffee / "madonna" / "coffee.jpg")
    assert coffee not in emb.paths
    reasons = dict(zip(emb.unreadable["path"], emb.unreadable["reason"]))
    assert reasons[coffee] == "no face found"
    assert emb.stats["no_face"] == len(reasons) >= 1 and len(emb) + len(reasons) == 13
    assert calls[-1] == (13, 13, "faces") and all(d <= t for d, t, _ in calls)

    labels = faces.cluster_faces(emb)
    excluded = faces.score(emb, labels)
    assert excluded == faces.score(emb, labels, truth=images, no_face="exclude")
    singles = faces.score(emb, labels, truth=images, no_face="singletons")
    print("excluded:", excluded, "\nsingletons:", singles)
    assert excluded["n_no_face"] == 0 and singles["n_no_face"] == len(reasons)
    assert excluded["bcubed_f"] >= 0.95
    assert singles["bcubed_recall"] < excluded["bcubed_recall"]  # madonna's photos are now split
    assert singles["bcubed_f"] < excluded["bcubed_f"]
    with pytest.raises(ValueError, match="truth="):
        faces.score(emb, labels, no_face="singletons")

    # crops for a gallery come from the photos; nothing is written into the folder
    crops = faces.face_crops(emb, size=64)
    assert len(crops) == len(emb) and all(c.size == (64, 64) for c in crops)
    assert _listing(people_and_coffee) == before


def test_cache_key_holds_the_detector_settings(people_and_coffee, tmp_path):
    cache_dir = tmp_path / "cache"
    images = kit.load_folder(people_and_coffee)
    first = kit.embed(images, backbone="dlib_face", cache_dir=cache_dir)
    again = kit.embed(images, backbone="dlib_face", cache_dir=cache_dir)
    assert first.stats["computed"] == 13 and again.stats["cached"] == 13 and again.stats["computed"] == 0
    np.testing.assert_array_equal(first.vectors, again.vectors)
    assert again.faces.equals(first.faces)
    assert again.unreadable.equals(first.unreadable)  # "no face found" is remembered too
    other = kit.embed(images, backbone=faces.backbone(upsample=0), cache_dir=cache_dir)
    crops = kit.embed(images, backbone=faces.backbone(crop_as_face=True), cache_dir=cache_dir)
    assert other.stats["cached"] == 0 and crops.stats["cached"] == 0
    assert len(crops) == 13  # crop_as_face never looks for a face, so the coffee cup gets a descriptor too
    info = kit.embedding.cache_info(cache_dir)
    assert len(info) == 3 and info["preprocessing"].str.contains('"upsample": 0').sum() == 1


# --------------------------------------------------------------------------------- crops and exports
def test_crops_are_the_faces(hog_emb):
    idx = [0, 30, 60]
    crops = faces.face_crops(hog_emb, index=idx, size=150, margin=0.0)
    again = faces.crop_features(np.stack([np.asarray(c) for c in crops]))
    dist = np.linalg.norm(again - hog_emb.vectors[idx], axis=1)
    print("box crop re-described vs the detected face:", dist)
    assert (dist < 0.4).all()
    chip = faces.face_chip(hog_emb, 0)
    assert chip.size == (150, 150)
    np.testing.assert_allclose(faces.describe([np.asarray(chip)])[0], hog_emb.vectors[0], atol=1e-5)


def test_crops_by_cluster_and_names(hog_emb):
    labels = faces.cluster_faces(hog_emb)
    groups = faces.crops_by_cluster(hog_emb, labels, size=48)
    assert sorted(groups) == sorted(set(labels.tolist()))
    assert sum(len(v) for v in groups.values()) == len(hog_emb)
    names = [name for v in groups.values() for name, _ in v]
    assert len(set(names)) == len(names) and all(n.endswith("_face0.jpg") for n in names)
    assert all(img.size == (48, 48) for v in groups.values() for _, img in v)
    with pytest.raises(ValueError, match="no face table"):
        faces.face_crops(kit.Embeddings(vectors=np.zeros((1, 2), np.float32), paths=["x"], labels=None,
                                        backbone="efficientnet_lite0", preprocessing={}))


def test_backbone_features_treat_images_as_face_crops(faces5, crop_emb):
    model = kit.backbones.load("dlib_face")
    x = np.stack([kit.read_image(p) for p in faces5.paths[:4]]).astype(np.float32) / 255.0
    np.testing.assert_allclose(model.features(x), crop_emb.vectors[:4], atol=1e-6)
    with pytest.raises(ValueError, match="no classification head"):
        model.logits(x)
