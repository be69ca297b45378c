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
    assert table.attrs["clear_k"] and "no clear K" not in table.iloc[-1]["note"]


@pytest.mark.parametrize("shape", [(600, 64), (600, 1280), (800, 10)])
def test_structureless_data_gets_no_clear_k(shape):
    rng = np.random.default_rng(1)
    X = rng.normal(size=shape).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    table = K.estimate(X, random_state=3)
    assert not table.attrs["clear_k"]
    assert "no clear K" in table.iloc[-1]["note"]


def test_stability_counts_repeated_answers_and_extras_get_half_weight(blobs):
    extra = K.KEstimate("my_guess", 7)
    table = K.estimate(blobs, methods=["elbow", "hdbscan"], n_bootstrap=3, reduce_to=None, estimates=[extra])
    rows = table.set_index("method")
    for m in ("elbow", "hdbscan"):  # both find 5 on every subsample of well-separated blobs
        assert rows.loc[m, "bootstrap"] == [5, 5, 5] and rows.loc[m, "stability"] == 1.0
    assert rows.loc["my_guess", "stability"] == 0.5 and "half weight" in rows.loc["my_guess", "note"]
    # within 20% agrees; further away, or at a range end, does not
    assert K._agrees(9, 9, range(2, 31)) and not K._agrees(13, 9, range(2, 31)) and not K._agrees(30, 27, range(2, 31))


def _scripted(monkeypatch, answers):
    """Make every K method answer from ``answers[method]``: the full-data run first, then each subsample."""
    calls = {}

    def fake_run(method, X, k_range, random_state, sweep=None):
        i = calls[method] = calls.get(method, -1) + 1
        return K.KEstimate(method, answers[method][i])

    monkeypatch.setattr(K, "_run", fake_run)


def test_runs_that_find_no_k_count_as_disagreeing(blobs, monkeypatch):
    _scripted(monkeypatch, {"elbow": [5, None, None, 5], "silhouette": [5, 5, 5, 5]})
    table = K.estimate(blobs, methods=["elbow", "silhouette"], n_bootstrap=3, reduce_to=None).set_index("method")
    assert table.loc["elbow", "bootstrap"] == [None, None, 5]
    assert table.loc["elbow", "stability"] == 0.5 and table.loc["silhouette", "stability"] == 1.0
    assert table.loc["consensus", "k"] == 5
    assert "no clear K" in table.loc["consensus", "note"]  # only one method repeats its answer


def test_without_bootstrap_two_agreeing_methods_make_a_clear_k(blobs):
    table = K.estimate(blobs, methods=["elbow", "silhouette", "eigengap"], n_bootstrap=0, reduce_to=None)
    assert table.attrs["clear_k"] and table.iloc[-1]["k"] == 5
    assert "stability not measured" in table.iloc[-1]["note"]
    assert (table.iloc[:-1]["stability"] == 0.5).all()


def test_bad_k_range(blobs):
    with pytest.raises(ValueError, match="k_range"):
        K.estimate(blobs, k_range=(1, 10))


def test_clothing10_consensus(clothing10_lite0):
    table = K.estimate(clothing10_lite0.vectors)
    print(table.drop(columns=["bootstrap"]).to_string())
    consensus = table.iloc[-1]
    assert 4 <= consensus["k"] <= 20  # true K = 10
    assert "IQR" in consensus["note"]
    # measured: elbow and HDBSCAN land at 9 on every subsample, so the kit calls this K clear
    assert table.attrs["clear_k"]
