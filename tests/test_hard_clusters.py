"""Hard clusters (issue 29, first part): the density, the transition-probability distance (TPDi) and the links of
seed 001's method, worked out by hand on a chain of three photos; the estimator through the registry; bad
parameters named."""
import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import normalized_mutual_info_score as nmi

from kit import cluster as C
from kit._utils.validation import InvalidParameterError
from kit.cluster import _hard

SIGMA = 0.1
D = SIGMA * np.log(3)  # exp(-D / sigma) = 1/3: a list (self, neighbour) gets P = (3/4, 1/4)
# a chain 0 - 1 - 2: each photo's list is itself then one neighbour (0 -> 1, 1 -> 2, 2 -> 1)
IDX = np.array([[0, 1], [1, 2], [2, 1]])
DIST = np.array([[0, D], [0, D], [0, D]])


def test_transition_probabilities_by_hand():
    P = _hard.transition_probabilities(DIST, SIGMA)
    np.testing.assert_allclose(P, [[0.75, 0.25]] * 3)


def test_density_by_hand():
    P = _hard.transition_probabilities(DIST, SIGMA)
    # approximate: the probability flowing into each photo: 0 gets 3/4 (itself); 1 gets 1/4 + 3/4 + 1/4; 2 gets 1/4 + 3/4
    np.testing.assert_allclose(_hard.density(P, IDX, "approximate"), [0.75, 1.25, 1.0])
    # ndde, one step from 1/3 each, damping 0.1, self-transitions removed: rho_j <- 0.1/3 + 0.9 sum_i P_ij / 3
    one_step = _hard.density(P, IDX, "ndde", damping=0.1, max_iter=1)
    np.testing.assert_allclose(one_step, [0.1 / 3, 0.1 / 3 + 0.9 * (0.25 + 0.25) / 3, 0.1 / 3 + 0.9 * 0.25 / 3])
    np.testing.assert_array_equal(_hard.density(P, IDX, "count", dist=DIST, count_radius=D + 0.01), [1, 1, 1])
    np.testing.assert_array_equal(_hard.density(P, IDX, "count", dist=DIST, count_radius=D), [0, 0, 0])


def test_tpdi_by_hand():
    """1 - sum_m sqrt(P_im P_jm): 0 -> 1 share only photo 1 (sqrt(1/4 * 3/4)); 1 and 2 share both."""
    P = _hard.transition_probabilities(DIST, SIGMA)
    T = _hard.tpdi(P, IDX)
    np.testing.assert_allclose(T[:, 0], 0, atol=1e-12)  # to itself
    np.testing.assert_allclose(T[:, 1], [1 - np.sqrt(3) / 4, 1 - np.sqrt(3) / 2, 1 - np.sqrt(3) / 2])


@pytest.mark.parametrize("tau, clusters", [(0.5, [[0], [1, 2]]), (0.6, [[0, 1, 2]]), (0.1, [[0], [1], [2]])])
def test_links_by_hand(tau, clusters):
    """Densities 0.75, 1.25, 1: photo 0 may link to 1 (denser; TPDi 0.567), 2 to 1 (TPDi 0.134), 1 to nobody
    (its only neighbour, 2, is less dense)."""
    from scipy.sparse.csgraph import connected_components

    P = _hard.transition_probabilities(DIST, SIGMA)
    links = _hard.link(_hard.tpdi(P, IDX), IDX, np.array([0.75, 1.25, 1.0]), tau)
    _, labels = connected_components(links, directed=False)
    assert sorted(sorted(np.flatnonzero(labels == c).tolist()) for c in np.unique(labels)) == clusters


def test_max_conn_links_to_more_denser_neighbours():
    idx = np.array([[0, 1, 2], [1, 0, 2], [2, 0, 1]])
    dist = np.array([[0, 0.1, 0.2], [0, 0.1, 0.3], [0, 0.2, 0.3]])
    rho = np.array([0.0, 1.0, 2.0])  # 0 is the least dense: both others are candidates
    one = _hard.link(dist, idx, rho, tau=0.5, max_conn=1)
    two = _hard.link(dist, idx, rho, tau=0.5, max_conn=2)
    assert one[0, 1] and not one[0, 2] and two[0, 1] and two[0, 2]


def test_hard_clusters_through_the_registry_on_blobs_of_unequal_size_and_spread():
    X, y = make_blobs([300, 60, 60], n_features=16, cluster_std=[3.0, 0.8, 0.8], random_state=2)
    for params in ({}, {"density": "ndde"}, {"distance": "cosine"}):
        est = C.make("hard_clusters", **params).fit(X)
        assert est.labels_.shape == (420,) and est.labels_.min() == 0  # no noise
        assert est.density_.shape == (420,) and est.links_.shape == (420, 420)
        assert nmi(y, est.labels_) > 0.9, (params, est.n_clusters_)
    two = C.HardClusters(k=5).fit(X[:2])  # k is capped at N - 1
    assert len(two.labels_) == 2


@pytest.mark.parametrize("params, match", [
    ({"density": "peaks"}, "'density' parameter of HardClusters"),
    ({"distance": "l2"}, "'distance' parameter of HardClusters"),
    ({"tau": 0}, "'tau' parameter of HardClusters"),
    ({"k": 0}, "'k' parameter of HardClusters"),
])
def test_bad_parameters_are_named(params, match):
    with pytest.raises(InvalidParameterError, match=match):
        C.HardClusters(**params).fit(np.eye(5, dtype=np.float32))


def _blobs():
    return make_blobs([300, 60, 60], n_features=16, cluster_std=[3.0, 0.8, 0.8], random_state=2)


def test_precomputed_knn_gives_the_same_clusters_as_the_kit_search():
    """fit(X, knn=(neighbours, 1 - cos)): the kit's own lists, and the benchmark layout (each list starts with the
    row itself, shuffled order within the row) give the labels of the kit's search."""
    from kit._utils.neighbors import knn

    X, _ = _blobs()
    own = C.HardClusters(k=20).fit(X)
    sims, idx = knn(X, 20)
    np.testing.assert_array_equal(C.HardClusters(k=20).fit(X, knn=(idx, 1 - sims)).labels_, own.labels_)
    n = len(X)
    nbrs = np.hstack([np.arange(n)[:, None], idx]).astype(np.float32)  # as faiss_k_80.npz stores them
    dists = np.hstack([np.zeros((n, 1)), 1 - sims])
    perm = np.random.default_rng(0).permuted(np.tile(np.arange(21), (n, 1)), axis=1)
    shuffled = (np.take_along_axis(nbrs, perm, 1), np.take_along_axis(dists, perm, 1))
    np.testing.assert_array_equal(C.HardClusters(k=20).fit(X, knn=shuffled).labels_, own.labels_)
    fewer = C.HardClusters(k=10).fit(X, knn=(nbrs, dists))  # the first 10 of 20
    np.testing.assert_array_equal(fewer.labels_, C.HardClusters(k=10).fit(X).labels_)


@pytest.mark.parametrize("make_knn, match", [
    (lambda i, d: (i[:-1], d[:-1]), r"knn has neighbours of shape \(29, 5\).*X has 30 rows"),
    (lambda i, d: (i, d[:, :4]), r"distances of shape \(30, 4\)"),
    (lambda i, d: (i,), "knn must be a pair"),
    (lambda i, d: (np.where(i == 3, 30, i), d), r"neighbour 30 .*in \[-1, 30\)"),
    (lambda i, d: (i, np.where(i == 3, np.nan, d)), "finite distances"),
    (lambda i, d: (i[:, :3], d[:, :3]), r"k=4 but knn gives 3 neighbours per row.*--param k=3"),
])
def test_bad_precomputed_knn_is_named(make_knn, match):
    from kit._utils.neighbors import knn

    X = np.random.default_rng(0).normal(size=(30, 8)).astype(np.float32)
    sims, idx = knn(X, 5)
    with pytest.raises(ValueError, match=match):
        C.HardClusters(k=4).fit(X, knn=make_knn(idx, 1 - sims))


def test_auto_sigma_is_the_data_scale_by_hand():
    """Every list is (itself at 0, one neighbour at D): the mean distance to the neighbours is D, their median D,
    and sigma half of it."""
    assert _hard.AUTO_SIGMA_FACTOR == 0.5
    assert _hard.auto_sigma(DIST) == pytest.approx(D / 2)
    uneven = np.array([[0, 0.1, 0.3], [0, 0.2, 0.4], [0, 0.5, 0.7]])  # means 0.2, 0.3, 0.6: median 0.3
    assert _hard.auto_sigma(uneven) == pytest.approx(0.15)
    X = np.repeat(np.eye(3, dtype=np.float32), 4, axis=0)  # identical rows: a tiny positive sigma, no division by 0
    assert C.HardClusters(k=3).fit(X).sigma_ > 0


def test_the_default_sigma_links_raw_features_where_the_papers_collapses():
    """On generated identities (raw features, neighbours 0.3-0.5 apart) the paper's sigma 0.05, meant for learned
    similarities, links almost nothing; the default, the data's own scale, recovers the identities."""
    from kit.datasets import synthetic_identities
    from kit.metrics import pairwise_f

    X, y = synthetic_identities(5000, 256, random_state=0)
    default = C.HardClusters().fit(X)
    assert 0.1 < default.sigma_ < 0.4
    assert pairwise_f(y, default.labels_) > 0.9
    assert pairwise_f(y, C.HardClusters(sigma=0.05).fit(X).labels_) < 0.5
    with pytest.raises(InvalidParameterError, match="sigma"):
        C.HardClusters(sigma="scale").fit(X)
