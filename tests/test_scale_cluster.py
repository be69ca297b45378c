"""Clustering a store at scale (issue 14): k-means trained on a sample and assigned partition by partition, labels
written only into the kit's own folder, kNN graphs on approximate indexes with their recall, samples and
projections fitted on a sample. Generated blobs written straight into a store keep it fast and offline."""
import json
import os
import time
import tracemalloc

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs

import kit.metrics
from kit.scale import _cluster as sc
from kit.scale import _graph as sg
from kit._utils.validation import InvalidParameterError
from kit.cluster import KMeans
from kit.scale import EmbeddingStore

N, D, K, PART = 6000, 64, 6, 1000


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(N, n_features=D, centers=K, cluster_std=1.0, center_box=(-10, 10), random_state=0)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def store(blobs, tmp_path_factory):
    X, y = blobs
    return sc.write_vectors(tmp_path_factory.mktemp("scale") / "store", X, labels=y, partition_rows=PART)


def _faiss_labels(centroids, X):
    import faiss

    index = faiss.IndexFlatL2(centroids.shape[1])
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    return index.search(np.ascontiguousarray(X), 1)[1].ravel()


def test_the_store_holds_the_vectors_in_partitions(store, blobs):
    assert len(store.partitions()) == N // PART
    back = store.read()
    np.testing.assert_array_equal(back.vectors, blobs[0])
    assert back.labels[:3] == [str(v) for v in blobs[1][:3]]


def test_kmeans_on_the_store_is_kmeans_on_its_sample_assigned_to_every_row(store, blobs):
    X, y = blobs
    km = sc.kmeans(store, K, sample_size=2000, random_state=0)
    assert (km.k, km.sample_size, km.n_rows, km.partitions) == (K, 2000, N, N // PART)
    assert set(km.timings) == {"sample", "train", "assign"} and km.seconds > 0
    # the same sample and the same faiss k-means in memory give the same centroids and the same labels
    s = sc.sample(store, 2000, random_state=0)
    model = KMeans(K, backend="faiss", n_init=3, max_iter=25, max_points_per_centroid=None, random_state=0)
    model.fit(s.vectors)
    np.testing.assert_allclose(km.centroids, model.cluster_centers_, rtol=0, atol=1e-5)
    labels = km.read_labels()
    assert labels["path"].tolist() == [f"row-{i:09d}" for i in range(N)]  # the store's order
    np.testing.assert_array_equal(labels["cluster"].to_numpy(), _faiss_labels(model.cluster_centers_, X))
    np.testing.assert_array_equal(km.predict(X), labels["cluster"].to_numpy())
    assert km.inertia == pytest.approx(float(labels["distance"].astype(np.float64).sum()), rel=1e-6)
    # and agree with k-means on all the vectors (well-separated blobs)
    full = KMeans(K, random_state=0).fit(X).labels_
    assert kit.metrics.nmi(full, labels["cluster"]) > 0.99 and kit.metrics.nmi(y, labels["cluster"]) > 0.99
    kept = sc.kmeans(store, K, sample_size=2000, random_state=0, write=False)
    assert kept.labels_path is None and kept.labels["cluster"].tolist() == labels["cluster"].tolist()
    assert sc.kmeans(store, K, sample_size=10 ** 9).sample_size == N  # capped by N, and said


def test_assignment_reads_one_partition_at_a_time(store, blobs, monkeypatch):
    centroids = sc.kmeans(store, K, sample_size=1000, write=False).centroids
    reads = []
    original = sc._read_partition

    def counting(path, columns):
        table = original(path, columns)
        reads.append(table.num_rows)
        return table

    monkeypatch.setattr(sc, "_read_partition", counting)
    tracemalloc.start()
    try:
        result = sc.assign(store, centroids, name="bounded")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reads == [PART] * (N // PART) and result.n_rows == N
    assert peak < blobs[0].nbytes / 3  # never all vectors at once (one partition is a sixth of them)
    reads.clear()
    s = sc.sample(store, 500, random_state=1)
    assert len(s) == 500 and max(reads) == PART and len(reads) <= N // PART


def test_labels_go_only_into_the_kits_own_folder_and_replace_only_its_files(store, blobs, tmp_path):
    km = sc.kmeans(store, K, sample_size=1000, name="mine")
    folder = km.labels_path
    assert folder == store.root / "_labels" / store.namespace().name / "mine"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["_centroids.npy", "_kit_labels.json"] + [f"part-{i:06d}.parquet" for i in range(N // PART)])
    assert json.loads((folder / "_kit_labels.json").read_text())["sample_size"] == 1000
    assert pd.read_parquet(store.root).shape == (N, 7)  # readers of the store do not see the labels
    assert len(pd.read_parquet(folder)) == N

    # a run stopped halfway leaves the previous labels as they were and no work folder
    def stop(done, total, stage):
        if stage == "assign" and done >= 2 * PART:
            raise KeyboardInterrupt("stop")

    before = km.read_labels()
    with pytest.raises(KeyboardInterrupt):
        sc.kmeans(store, K, sample_size=1500, name="mine", progress=stop)
    pd.testing.assert_frame_equal(sc.read_labels(folder), before)
    assert not [p.name for p in folder.parent.iterdir() if p.name.startswith(".")]
    again = sc.kmeans(store, K, sample_size=1500, name="mine")  # replaces it
    assert json.loads((folder / "_kit_labels.json").read_text())["sample_size"] == 1500 and again.sample_size == 1500
    assert not [p.name for p in folder.parent.iterdir() if p.name.startswith(".")]

    # a file the kit did not write: refused before any work, nothing deleted
    (folder / "notes.txt").write_text("mine")
    stages = []
    with pytest.raises(ValueError, match="notes.txt"):
        sc.kmeans(store, K, sample_size=1000, name="mine", progress=lambda d, t, s: stages.append(s))
    assert stages == []  # before sampling or training
    assert (folder / "notes.txt").read_text() == "mine" and len(list(folder.glob("part-*.parquet"))) == N // PART
    # a hidden work folder of a run that died long ago is removed, a recent one (a live run's) kept
    old, new = folder.parent / (".tmp-" + "a" * 32), folder.parent / (".tmp-" + "b" * 32)
    for f in (old, new):
        f.mkdir()
        (f / "part-000000.parquet").write_bytes(b"PAR1 half")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    sc.kmeans(store, K, sample_size=1000, name="other")
    assert not old.exists() and new.exists()

    album = tmp_path / "album"
    album.mkdir()
    (album / "cat.jpg").write_bytes(b"a photo")
    with pytest.raises(ValueError, match="not a kit embedding store"):
        sc.kmeans(album, K)
    assert [p.name for p in album.iterdir()] == ["cat.jpg"]
    with pytest.raises(FileNotFoundError, match="write to it first"):
        sc.kmeans(tmp_path / "nothing", K)
    assert not (tmp_path / "nothing").exists()


def test_bad_parameters_are_refused_naming_them(store, blobs):
    for call, name in [(lambda: sc.kmeans(store, 0), "n_clusters"),
                       (lambda: sc.kmeans(store, 2.5), "n_clusters"),
                       (lambda: sc.kmeans(store, K, sample_size=0), "sample_size"),
                       (lambda: sc.kmeans(store, K, write="yes"), "write"),
                       (lambda: sc.sample(store, 0), "'n'"),
                       (lambda: sg.knn_graph(blobs[0], 5, method="lsh"), "method"),
                       (lambda: sg.knn_graph(blobs[0], 0), "'k'"),
                       (lambda: sg.knn_graph(blobs[0], 5, recall_sample=-1), "recall_sample"),
                       (lambda: sc.project_store(store, "mds"), "method"),
                       (lambda: sc.project_store(store, "pca", sample_size=0), "sample_size")]:
        with pytest.raises(InvalidParameterError, match=name):
            call()
    with pytest.raises(ValueError, match="sample_size=3 is below n_clusters=6"):
        sc.kmeans(store, K, sample_size=3)
    with pytest.raises(ValueError, match="n_clusters=7000"):
        sc.kmeans(store, 7000)
    with pytest.raises(ValueError, match="name='../up'"):
        sc.kmeans(store, K, name="../up")
    with pytest.raises(ValueError, match="centroids has shape"):
        sc.assign(store, np.zeros((3, D + 1)))
    with pytest.raises(ValueError, match="k=6000"):
        sg.knn_graph(blobs[0], N)


@pytest.mark.parametrize("method", ["ivf", "hnsw"])
def test_approximate_knn_graph_recall_against_exact(blobs, method):
    X = blobs[0][:3000]
    g = sg.knn_graph(X, 10, method=method, recall_sample=300)
    assert g.method == method and g.recall_sample == 300 and g.recall >= 0.9
    assert g.indices.shape == (3000, 10) and (g.indices != np.arange(3000)[:, None]).all()
    assert (g.graph != g.graph.T).nnz == 0 and g.graph.shape == (3000, 3000)
    auto = sg.knn_graph(X, 10, exact_max=1000, recall_sample=100)
    assert auto.method == "ivf" and auto.recall >= 0.9


def test_exact_knn_graph_below_the_size_is_the_kits_graph(blobs):
    from kit._utils.neighbors import knn_graph

    X = blobs[0][:800]
    g = sg.knn_graph(X, 8)
    assert (g.method, g.recall, g.recall_sample) == ("exact", 1.0, 0)
    ref = knn_graph(X, 8)
    assert ((g.graph > 0) != (ref > 0)).nnz == 0 and abs(g.graph - ref).max() < 1e-5  # X normalised once more


def test_sample_is_uniform_seeded_and_keeps_labels(store, blobs):
    a, b = sc.sample(store, 600, random_state=3), sc.sample(store, 600, random_state=3)
    assert a.paths == b.paths and a.stats["sampled"] == 600 and a.stats["rows"] == N
    rows = np.array([int(p.split("-")[1]) for p in a.paths])
    assert (np.diff(rows) > 0).all()  # the store's order
    np.testing.assert_array_equal(a.vectors, blobs[0][rows])
    assert a.labels == [str(v) for v in blobs[1][rows]]
    per_partition = np.bincount(rows // PART, minlength=N // PART)
    assert per_partition.min() > 60  # about 100 from each
    assert sc.sample(store, 600, random_state=4).paths != a.paths
    assert len(sc.sample(store, 10 ** 6)) == N


def test_projection_fitted_on_a_sample_places_every_row(store, blobs):
    p = sc.project_store(store, "pca", sample_size=1000, random_state=0)
    assert (p.sample_size, p.n_rows, len(p.table)) == (1000, N, N) and list(p.table.columns) == ["path", "hash",
                                                                                                   "x", "y"]
    np.testing.assert_allclose(p.coords, p.projection.transform(blobs[0]), rtol=0, atol=1e-4)
    assert len(p.projection) == 1000
    p.table.astype(str)
    pd.concat([p.table, p.table])


def test_assignment_on_dask_gives_the_same_labels(store):
    pytest.importorskip("distributed")
    import logging

    from distributed import Client, LocalCluster

    plain = sc.kmeans(store, K, sample_size=1000, write=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        calls = []
        on_dask = sc.assign(store, plain.centroids, name="dask", client=client,
                            progress=lambda d, t, s: calls.append(d))
    assert on_dask.read_labels()["cluster"].tolist() == plain.labels["cluster"].tolist()
    assert on_dask.inertia == pytest.approx(plain.inertia, rel=1e-6)
    assert calls[0] == 0 and calls[-1] == N and calls == sorted(calls)


def test_vectors_written_chunk_by_chunk_read_back_partition_by_partition(blobs, tmp_path):
    X = blobs[0][:2500]
    store = sc.write_vectors(tmp_path / "chunks", (X[i:i + 700] for i in range(0, 2500, 700)), partition_rows=500,
                             name="other-model")
    assert store.backbones()["backbone"].tolist() == ["other-model"]
    parts = list(sc.iter_partitions(store, columns=("path",)))
    assert [len(rows) for _, rows, _ in parts] == [500, 200] * 3 + [400]  # chunks of 700 rows, 500 per file
    np.testing.assert_array_equal(np.concatenate([v for _, _, v in parts]), X)
    assert parts[0][1]["path"].iloc[0] == "row-000000000"


def test_umap_fitted_on_a_sample_keeps_the_blobs_apart_for_every_row(store, blobs):
    pytest.importorskip("umap")
    p = sc.project_store(store, "umap", sample_size=300, random_state=0, n_epochs=50)
    assert (p.method, p.sample_size, p.n_rows, p.coords.shape) == ("umap", 300, N, (N, 2))
    assert kit.metrics.nmi(blobs[1], KMeans(K, random_state=0).fit(p.coords).labels_) > 0.95


@pytest.mark.parametrize("method", ["leiden", "chinese_whispers"])
def test_graph_methods_cluster_the_approximate_graph(blobs, method):
    X, y = blobs[0][:3000], blobs[1][:3000]
    g = sg.knn_graph(X, 15, method="ivf", recall_sample=200)
    labels = sg.cluster_graph(g, method, resolution=0.5)
    assert labels.dtype == np.int64 and len(labels) == 3000
    assert kit.metrics.nmi(y, labels) > 0.95
    if method == "leiden":  # the same as the kit's Leiden, which builds the exact graph itself
        from kit.cluster import Leiden

        assert kit.metrics.nmi(Leiden(k=15, resolution=0.5).fit(X).labels_, labels) > 0.95
    with pytest.raises(InvalidParameterError, match="resolution"):
        sg.cluster_graph(g, method, resolution=0)


def test_scores_of_every_row_stream_the_store_and_match_the_metrics(store, blobs):
    km = sc.kmeans(store, K + 2, sample_size=1500, name="scored")
    scores = sc.score_labels(km)
    labels = km.read_labels()["cluster"].to_numpy()
    truth = [str(v) for v in blobs[1]]
    assert scores["rows"] == N and set(scores) == {*sc.SCORES, "rows"}
    for name in sc.SCORES:
        assert scores[name] == pytest.approx(getattr(kit.metrics, name)(truth, labels), abs=1e-12), name
    assert sc.score_labels(km.labels_path) == scores
    with pytest.raises(ValueError, match="write=False"):
        sc.score_labels(sc.kmeans(store, K, sample_size=1000, write=False))
