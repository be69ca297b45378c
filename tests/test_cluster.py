"""Clustering estimators: quality on real clothing10 embeddings, exact behaviour on small cases, bad input."""
import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import normalized_mutual_info_score as nmi

from kit import cluster as C
from kit._utils import neighbors
from kit.cluster import _estimators as estimators
from kit import formats, metrics


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(300, n_features=8, centers=4, cluster_std=0.6, random_state=1)
    return X.astype(np.float32), y


@pytest.mark.parametrize("name", sorted(C.METHODS))
def test_every_method_recovers_separated_blobs(name, blobs):
    X, y = blobs
    est = C.make(name, n_clusters=4, random_state=0)
    labels = est.fit_predict(X)
    assert labels.shape == (300,) and labels.dtype.kind == "i"
    assert est.n_clusters_ >= 2
    # every method should find these well separated groups (noise counted as a cluster)
    assert nmi(y, labels) > 0.75, (name, est.n_clusters_, nmi(y, labels))


@pytest.mark.parametrize("name", ["chinese_whispers", "leiden", "infomap"])
def test_graph_methods_search_approximately_above_the_exact_size(name, blobs, monkeypatch):
    """Above EXACT_MAX rows the kNN graph comes from a faiss HNSW index: same groups as the exact graph."""
    from kit._utils import neighbors as _knn

    X, y = blobs
    calls = []
    real = _knn.knn

    def spy(X, k, exact=True, **kw):
        calls.append(exact)
        return real(X, k, exact=exact, **kw)

    monkeypatch.setattr(_knn, "knn", spy)
    monkeypatch.setattr(estimators, "knn", spy)
    exact_labels = C.make(name, random_state=0).fit_predict(X)
    assert calls and all(calls)
    calls.clear()
    monkeypatch.setattr(neighbors, "EXACT_MAX", 100)
    approx_labels = C.make(name, random_state=0).fit_predict(X)
    assert calls and not any(calls)  # every search went through the approximate index
    assert nmi(y, approx_labels) > 0.75 and nmi(exact_labels, approx_labels) > 0.9


def test_kmeans_backends_agree(blobs):
    X, y = blobs
    a = C.KMeans(4, backend="sklearn").fit(X)
    b = C.KMeans(4, backend="faiss").fit(X)
    assert nmi(a.labels_, b.labels_) > 0.99
    assert C.KMeans(4, backend="auto").fit(X).backend_ == "sklearn"  # small problem
    with pytest.raises(ValueError, match=r"'backend' parameter of KMeans must be a str among \{'auto', .*got 'gpu'"):
        C.KMeans(4, backend="gpu").fit(X)
    with pytest.raises(ValueError, match="n_clusters=500"):
        C.KMeans(500).fit(X)


def test_agglomerative_linkage_matrix_and_threshold(blobs):
    X, y = blobs
    est = C.Agglomerative(4, linkage="average", metric="cosine").fit(X)
    assert est.linkage_matrix_.shape == (299, 4)
    by_threshold = C.Agglomerative(linkage="ward", distance_threshold=float(est.linkage_matrix_[-1, 2]) * 0 + 1e9).fit(X)
    assert by_threshold.n_clusters_ == 1
    with pytest.raises(ValueError, match="ward"):
        C.Agglomerative(4, linkage="ward", metric="cosine").fit(X)


def test_chinese_whispers_hand_graph():
    # two triangles joined by nothing: exactly two clusters, whatever the visiting order
    X = np.array([[1, 0, 0], [0.99, 0.1, 0], [0.98, 0, 0.1], [0, 1, 0], [0.1, 0.99, 0], [0, 0.98, 0.1]], np.float32)
    for seed in range(3):
        labels = C.ChineseWhispers(threshold=0.9, k=2, random_state=seed).fit_predict(X)
        assert labels[0] == labels[1] == labels[2] != labels[3] == labels[4] == labels[5]


def test_dbscan_k_distance_and_precomputed_rerank(blobs):
    X, y = blobs
    d, eps = C.k_distance(X, 5)
    assert np.all(np.diff(d) >= 0) and d[0] <= eps <= d[-1]
    D = C.rerank_distance(X, k1=10, k2=4)
    assert D.shape == (300, 300) and np.allclose(D, D.T) and np.allclose(np.diag(D), 0)
    labels = C.Agglomerative(4, linkage="average", metric="precomputed").fit_predict(D)
    assert nmi(y, labels) > 0.9
    labels = C.DBSCAN(eps=float(np.percentile(D[D > 0], 5)), min_samples=5, metric="precomputed").fit_predict(D)
    assert len(set(labels) - {-1}) >= 3


def test_co_association_hand_case():
    a = np.array([0, 0, 1, 1])
    b = np.array([0, 0, 0, 1])
    C_ = C.co_association([a, b])
    assert C_[0, 1] == 1.0 and C_[1, 2] == 0.5 and C_[2, 3] == 0.5 and C_[0, 3] == 0.0
    ens = C.Ensemble(2, base=None).fit([a, b, a])
    assert nmi(a, ens.labels_) == pytest.approx(1.0)
    # tied top merges (groups that never mix, points that are always noise) still give K clusters
    tied = np.array([0, 0, 0, 1, 1, 1, -1])
    assert len(set(C.Ensemble(2, base=None).fit([tied, tied]).labels_)) == 2
    three = np.array([0, 0, 1, 1, 2, 2])
    assert len(set(C.Ensemble(2, base=None).fit([three, three]).labels_)) == 2


def test_bad_input_names_problem():
    with pytest.raises(ValueError, match="NaN"):
        C.KMeans(2).fit(np.array([[0.0, np.nan], [1, 1], [2, 2]]))
    with pytest.raises(ValueError, match=r"'name' parameter of make must be a str among \{'agglomerative'.*got 'nope'"):
        C.make("nope")
    with pytest.raises(ValueError, match="does not take"):
        C.make("hdbscan", bogus=3)


# ------------------------------------------------------------------ real photos (clothing10)
def test_clothing10_kmeans_hdbscan_chinese_whispers(clothing10_lite0):
    X, y = clothing10_lite0.vectors, clothing10_lite0.labels
    km = C.KMeans(10).fit(X)
    s = nmi(y, km.labels_)
    print(f"kmeans NMI {s:.3f}")
    assert s >= 0.52
    for est in (C.HDBSCAN(), C.ChineseWhispers(), C.Leiden(), C.Infomap()):
        labels = est.fit_predict(X)
        score = metrics.nmi(y, labels)  # noise counts as one more cluster
        print(f"{type(est).__name__}: {est.n_clusters_} clusters, NMI {score:.3f}, noise {np.mean(labels < 0):.0%}")
        if isinstance(est, (C.HDBSCAN, C.ChineseWhispers)):
            assert est.n_clusters_ >= 5 and score >= 0.40


def test_clothing10_ensemble_not_worse_than_median_backbone(clothing10, clothing10_lite0):
    import kit

    images = kit.load_folder(clothing10)
    embs = [clothing10_lite0] + [kit.embed(images, backbone=b) for b in ("efficientnet_lite1", "efficientnet_lite2")]
    y = clothing10_lite0.labels
    singles = [metrics.nmi(y, C.KMeans(10).fit(e.vectors).labels_) for e in embs]
    coassoc = metrics.nmi(y, C.Ensemble(10, combine="coassociation").fit([e.vectors for e in embs]).labels_)
    stack = metrics.nmi(y, C.Ensemble(10, combine="stack").fit([e.vectors for e in embs]).labels_)
    print(f"single backbones NMI {np.round(singles, 3)}, co-association {coassoc:.3f}, seed 000 stack {stack:.3f}")
    assert coassoc >= np.median(singles)


def test_seed001_format_round_trip_cluster_and_score(tmp_path, blobs):
    X, y = blobs
    formats.write_features_bin(tmp_path / "part.bin", X)
    formats.write_meta(tmp_path / "part.meta", y)
    Xr = formats.read_features_bin(tmp_path / "part.bin", dim=X.shape[1])
    yr = formats.read_meta(tmp_path / "part.meta")
    np.testing.assert_array_equal(Xr, X)
    labels = C.ChineseWhispers(threshold=0.5, k=10).fit_predict(Xr)
    s = metrics.score(yr, labels)
    assert s["pairwise_f"] > 0.8 and s["bcubed_f"] > 0.8
