"""The learned pair similarity of HardClusters (issue 29): a small Keras model trained on labelled identities,
saved and reloaded, used on other identities; whether it helps is measured in bench/hard_clusters.py."""
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from kit._utils.neighbors import knn
from kit.cluster import HardClusters, PairSimilarity
from kit.datasets import synthetic_identities
from kit.metrics import pairwise_f


@pytest.fixture(scope="module")
def trained():
    X, y = synthetic_identities(2000, 64, random_state=100)  # identities of their own: never clustered below
    return PairSimilarity(k=10, epochs=3).fit(X, y)


def test_it_tells_same_from_different_on_identities_it_never_saw(trained):
    X, y = synthetic_identities(1500, 64, random_state=1)
    _, idx = knn(X, 10)
    probs = trained.similarities(X, idx)
    same = y[np.repeat(np.arange(len(X)), 10)] == y[idx.ravel()]
    assert 0 < same.mean() < 1
    assert roc_auc_score(same, probs.ravel()) > 0.9
    assert trained.history_[-1] < trained.history_[0]  # it learned
    assert probs.min() >= 0 and probs.max() <= 1


def test_saved_and_reloaded_it_gives_the_same_clusters(trained, tmp_path):
    X, y = synthetic_identities(1500, 64, random_state=2)
    path = trained.save(tmp_path / "sim")
    assert path.name == "similarity.keras" and sorted(p.name for p in path.parent.iterdir()) == ["similarity.keras"]
    again = PairSimilarity.load(tmp_path / "sim")
    _, idx = knn(X, 10)
    np.testing.assert_allclose(again.similarities(X, idx), trained.similarities(X, idx), atol=1e-6)
    by_object = HardClusters(k=10, similarity=trained).fit(X).labels_
    by_folder = HardClusters(k=10, similarity=str(tmp_path / "sim")).fit(X).labels_
    np.testing.assert_array_equal(by_object, by_folder)
    assert pairwise_f(y, by_object) > 0.5


def test_bad_inputs_are_named(trained, tmp_path):
    X, y = synthetic_identities(300, 64, random_state=3)
    with pytest.raises(ValueError, match="one identity"):
        PairSimilarity().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="one label per row"):
        PairSimilarity().fit(X, y[:-1])
    with pytest.raises(ValueError, match="not fitted"):
        PairSimilarity().similarities(X, np.zeros((len(X), 2), int))
    with pytest.raises(ValueError, match="trained on 64"):
        trained.similarities(X[:, :32], np.zeros((len(X), 2), int))
    with pytest.raises(FileNotFoundError, match="holds no similarity.keras"):
        PairSimilarity.load(tmp_path)
    (tmp_path / "similarity.keras").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a readable pair-similarity model"):
        PairSimilarity.load(tmp_path)
    with pytest.raises(Exception, match="similarity"):
        HardClusters(similarity=3).fit(X)
