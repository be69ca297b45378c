"""K estimators: within +/-1 on Gaussian blobs of known K; the consensus on real photos lies in [4, 20]."""
import numpy as np
import pytest
from sklearn.datasets import make_blobs

from kit import k as K


@pytest.fixture(scope="module")
def blobs():
    # equidistant centres (simplex vertices), so no pair of groups forms a super-cluster
    X, _ = make_blobs(500, n_features=10, centers=8.0 * np.eye(5, 10), cluster_std=1.0, random_state=3)
    return X.astype(np.float32)


@pytest.mark.parametrize("fn", [K.elbow, K.silhouette, K.calinski_harabasz, K.davies_bouldin, K.eigengap,
                                K.gap_statistic, lambda X: K.dendrogram(X, criterion="gap"),
                                lambda X: K.dendrogram(X, criterion="ratio"), K.hdbscan_count])
def test_each_estimator_on_blobs(fn, blobs):
    est = fn(blobs)
    assert est.k is not None and abs(est.k - 5) <= 1, (est.method, est.k)
    if est.method not in ("hdbscan",):
        assert len(est.curve) > 0


def test_probe_count_and_dendrogram_evidence(blobs):
    est = K.probe_count(blobs)
    assert est.k >= 2 and est.detail["mean_matches"] >= 1
    d = K.dendrogram(blobs)
    assert d.detail["linkage"].shape == (499, 4)


def test_estimate_table_and_consensus_on_blobs(blobs):
    table = K.estimate(blobs, n_bootstrap=1, reduce_to=None)
    assert table.iloc[-1]["method"] == "consensus" and table.iloc[-1]["k"] == 5
    assert {"method", "k", "at_boundary", "stability", "weight", "note"} <= set(table.columns)
    assert "elbow" in table.attrs["estimates"]


def test_bad_k_range(blobs):
    with pytest.raises(ValueError, match="k_range"):
        K.estimate(blobs, k_range=(1, 10))


def test_clothing10_consensus(clothing10_lite0):
    table = K.estimate(clothing10_lite0.vectors)
    print(table.drop(columns=["bootstrap"]).to_string())
    consensus = table.iloc[-1]
    assert 4 <= consensus["k"] <= 20  # true K = 10
    assert "IQR" in consensus["note"]
