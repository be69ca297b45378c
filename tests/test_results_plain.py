"""Every DataFrame the kit returns is plain (issue 11): nothing in ``.attrs``, and it survives ``astype(str)``,
``pd.concat`` and ``to_parquet``. Richer results are small objects holding such tables (``KResult``, ``TopLabels``)."""
import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.datasets import make_blobs

import kit
import kit.backbones
import kit.embedding
import kit.export
import kit.metrics
from kit import k as K


def _assert_plain(df, name):
    assert isinstance(df, pd.DataFrame), name
    assert df.attrs == {}, f"{name} carries .attrs: {list(df.attrs)}"
    df.astype(str)
    both = pd.concat([df, df], ignore_index=True)
    assert len(both) == 2 * len(df)
    buffer = io.BytesIO()
    df.to_parquet(buffer)
    assert len(pd.read_parquet(io.BytesIO(buffer.getvalue()))) == len(df), name


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(240, n_features=8, centers=4, cluster_std=0.6, random_state=0)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def folder(tmp_path_factory, coffee_and_cat):
    root = tmp_path_factory.mktemp("plain")
    for label, img in zip(("coffee", "cat"), coffee_and_cat):
        (root / label).mkdir()
        Image.fromarray(img).save(root / label / f"{label}.png")
        Image.fromarray(img).save(root / label / f"{label}_copy.png")  # a duplicate
    (root / "cat" / "broken.jpg").write_bytes(b"not a jpeg")
    return root


@pytest.mark.parametrize("n_bootstrap", [0, 1])
def test_k_estimate_table_and_curves_are_plain(blobs, n_bootstrap):
    result = K.estimate(blobs[0], k_range=(2, 8), n_bootstrap=n_bootstrap, reduce_to=None)
    assert isinstance(result, K.KResult) and result.k == 4 and result.clear
    _assert_plain(result.table, "kit.k.estimate(...).table")
    for name, est in result.estimates.items():
        if len(est.curve):
            _assert_plain(est.curve, f"estimates[{name!r}].curve")


def test_top_labels_and_load_folder_tables_are_plain(folder):
    images = kit.load_folder(folder)
    assert len(images.unreadable) == 1
    _assert_plain(images.unreadable, "load_folder(...).unreadable")
    if getattr(images, "duplicates", None) is not None:
        _assert_plain(images.duplicates, "load_folder(...).duplicates")
    top = kit.inspect.top_labels(images, k=3)
    _assert_plain(top.table, "top_labels(...).table")
    _assert_plain(top.unreadable, "top_labels(...).unreadable")


def test_library_tables_are_plain(blobs, tmp_path):
    X, y = blobs
    _assert_plain(kit.backbones.available(), "kit.backbones.available()")
    _assert_plain(kit.embedding.cache_info(tmp_path / "cache"), "kit.embedding.cache_info()")
    paths = [f"/photos/{i}.jpg" for i in range(len(y))]
    _assert_plain(kit.export.assignments(paths, y), "kit.export.assignments")
    _assert_plain(kit.export.assignments(paths, y, truth=[f"class {v}" for v in y], backbone="efficientnet_lite0",
                                         params={"n_clusters": 4}), "kit.export.assignments with truth and meta")
    scores = kit.metrics.score(y, y, X=X)
    assert isinstance(scores, dict) and not any(isinstance(v, pd.DataFrame) for v in scores.values())
    _assert_plain(pd.DataFrame([scores]), "a table of kit.metrics.score")
    sizes = kit.metrics.cluster_sizes(y)
    assert not isinstance(sizes, pd.DataFrame) or sizes.attrs == {}
    from kit import faces

    _assert_plain(faces.pair_distances(X, y), "kit.faces.pair_distances")


def test_pipeline_tables_are_plain(folder, tmp_path):
    """compare, embeddings, exports, the run log and the dataset tables (small inputs, the built-in backbone)."""
    images = kit.load_folder(folder)
    table = kit.compare(images, backbones=["efficientnet_lite0"], methods=["kmeans", "agglomerative"], k=2,
                        cache_dir=tmp_path / "cache")
    assert len(table) == 2
    _assert_plain(table, "kit.compare")
    emb = kit.embed(images, backbone="efficientnet_lite0", cache_dir=tmp_path / "cache")
    _assert_plain(emb.unreadable, "Embeddings.unreadable")
    labels = np.arange(len(emb.paths)) % 2
    written = kit.export.to_folders(emb.paths, labels, tmp_path / "out")
    assert isinstance(written, kit.export.FolderExport) and written.folder.is_absolute()
    _assert_plain(written.table, "kit.export.to_folders(...).table")
    log = tmp_path / "log" / "runs.jsonl"
    kit.export.append_run_log(log, {"method": "kmeans", "k": 2}, {"nmi": 1.0})
    _assert_plain(kit.export.read_run_log(log), "kit.export.read_run_log")
    _assert_plain(kit.datasets.sample_info(), "kit.datasets.sample_info")


def test_curation_tables_are_plain(blobs):
    from kit import curate

    X, y = blobs
    emb = kit.Embeddings(vectors=X, paths=[f"p{i}.jpg" for i in range(len(X))], labels=None, backbone="blobs",
                         preprocessing={})
    _assert_plain(curate.near_duplicates(emb, threshold=0.999), "kit.curate.near_duplicates")
    _assert_plain(curate.outlier_scores(X, y), "kit.curate.outlier_scores")
    _assert_plain(curate.ClusterEdits(y).rename(0, "zero").table(emb.paths), "kit.curate.ClusterEdits.table")
    _assert_plain(curate.assign(X[:5], X, y).table(emb.paths[:5]), "kit.curate.Assignment.table")


def test_binned_scores_are_plain(blobs):
    X, y = blobs
    _assert_plain(kit.metrics.binned_f(y, y % 3, n_bins=4), "kit.metrics.binned_f(by='size')")
    _assert_plain(kit.metrics.binned_f(y, y, by="sparsity", X=X, n_bins=4), "kit.metrics.binned_f(by='sparsity')")
    _assert_plain(kit.metrics.identity_sparsity(X, [f"person {v}" for v in y]), "kit.metrics.identity_sparsity")
