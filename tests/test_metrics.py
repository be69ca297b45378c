"""Scores of a clustering (kit.metrics) and the seed-001 face-clustering file format (kit.formats)."""
import math
from itertools import combinations

import numpy as np
import pytest
from sklearn import metrics as skm

from kit import formats, metrics
from kit.metrics import EXTERNAL

approx = pytest.approx


def random_labels(seed, n=60, n_true=6, n_pred=8):
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_true, n), rng.integers(0, n_pred, n)


# ------------------------------------------------------------------------------------ hand-computed cases
# truth [0,0,0,1,1,2], pred [0,0,1,1,1,2]. Contingency n_ij (classes x clusters):
#   class 0: cluster 0 -> 2, cluster 1 -> 1;  class 1: cluster 1 -> 2;  class 2: cluster 2 -> 1
# Pairwise: TP = C(2,2) + C(2,2) = 2; predicted pairs C(2,2)+C(3,2)+C(1,2) = 1+3+0 = 4 -> P = 2/4;
#   true pairs C(3,2)+C(2,2)+C(1,2) = 3+1+0 = 4 -> R = 2/4; F = 0.5.
# BCubed precision per item: 1, 1, 1/3, 2/3, 2/3, 1 -> sum 14/3 -> P = 7/9;
#   recall per item: 2/3, 2/3, 1/3, 1, 1, 1 -> sum 14/3 -> R = 7/9; F = 7/9.
# Purity: cluster maxima 2 + 2 + 1 = 5 -> 5/6. Hungarian: 0->0 (2), 1->1 (2), 2->2 (1) -> 5/6.
TRUTH, PRED = [0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 1, 2]


def test_hand_computed_small_case():
    assert metrics.pairwise_precision_recall_f(TRUTH, PRED) == approx((0.5, 0.5, 0.5))
    assert metrics.bcubed_precision_recall_f(TRUTH, PRED) == approx((7 / 9, 7 / 9, 7 / 9))
    assert metrics.purity(TRUTH, PRED) == approx(5 / 6)
    assert metrics.hungarian_accuracy(TRUTH, PRED) == approx(5 / 6)
    assert metrics.pairwise_f(TRUTH, PRED) == approx(0.5)
    assert metrics.bcubed_f(TRUTH, PRED) == approx(7 / 9)


def test_all_singletons():
    # truth [0,0,1,1,1], every point its own cluster. Pairwise: no predicted pair -> P = 1 (by definition);
    # TP = 0 of 1 + 3 true pairs -> R = 0; F = 0. BCubed: P = 1; recall per item 1/2,1/2,1/3,1/3,1/3 -> 2/5;
    # F = 2 * 0.4 / 1.4 = 4/7. Purity 1. Hungarian: two clusters matched, one point each -> 2/5.
    t, p = [0, 0, 1, 1, 1], [0, 1, 2, 3, 4]
    assert metrics.pairwise_precision_recall_f(t, p) == approx((1.0, 0.0, 0.0))
    assert metrics.bcubed_precision_recall_f(t, p) == approx((1.0, 0.4, 4 / 7))
    assert metrics.purity(t, p) == 1.0
    assert metrics.hungarian_accuracy(t, p) == approx(0.4)


def test_one_big_cluster():
    # truth [0,0,1,1,1], all in one cluster. Pairwise: TP = 1 + 3 = 4 of C(5,2) = 10 -> P = 0.4, R = 1,
    # F = 4/7. BCubed precision per item 2/5,2/5,3/5,3/5,3/5 -> 13/25; R = 1; F = 2 * 0.52 / 1.52 = 13/19.
    # Purity 3/5; Hungarian 3/5 (the cluster matches class 1).
    t, p = [0, 0, 1, 1, 1], [7, 7, 7, 7, 7]
    assert metrics.pairwise_precision_recall_f(t, p) == approx((0.4, 1.0, 4 / 7))
    assert metrics.bcubed_precision_recall_f(t, p) == approx((13 / 25, 1.0, 13 / 19))
    assert metrics.purity(t, p) == approx(0.6)
    assert metrics.hungarian_accuracy(t, p) == approx(0.6)


def test_no_true_pair_gives_recall_one():
    assert metrics.pairwise_precision_recall_f([0, 1, 2], [0, 0, 1]) == approx((0.0, 1.0, 0.0))


def test_noise_policies_give_the_hand_computed_bcubed():
    # truth [0,0,0,1,1], pred [0,0,-1,-1,-1].
    # "cluster": clusters {0,1} and {2,3,4}. Precision per item 1,1,1/3,2/3,2/3 -> 11/15;
    #   recall 2/3,2/3,1/3,1,1 -> 11/15; F = 11/15.
    # "singletons": clusters {0,1},{2},{3},{4}. Precision 1; recall 2/3,2/3,1/3,1/2,1/2 -> 8/15;
    #   F = 2 * (8/15) / (23/15) = 16/23.
    t, p = [0, 0, 0, 1, 1], [0, 0, -1, -1, -1]
    assert metrics.bcubed_precision_recall_f(t, p, noise="cluster") == approx((11 / 15, 11 / 15, 11 / 15))
    assert metrics.bcubed_precision_recall_f(t, p, noise="singletons") == approx((1.0, 8 / 15, 16 / 23))
    assert metrics.bcubed_precision_recall_f(t, p) == metrics.bcubed_precision_recall_f(t, p, noise="cluster")


def test_unknown_noise_policy_is_named():
    with pytest.raises(ValueError, match=r"'noise' parameter of nmi must be a str among \{'cluster', 'singletons'\}; got 'drop'"):
        metrics.nmi([0, 1], [0, 1], noise="drop")


# ------------------------------------------------------------------------------ against references
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("name, reference", [
    ("nmi", skm.normalized_mutual_info_score), ("ami", skm.adjusted_mutual_info_score),
    ("ari", skm.adjusted_rand_score), ("homogeneity", skm.homogeneity_score),
    ("completeness", skm.completeness_score), ("v_measure", skm.v_measure_score),
])
def test_matches_sklearn(name, reference, seed):
    t, p = random_labels(seed)
    assert EXTERNAL[name](t, p) == approx(reference(t, p))


@pytest.mark.parametrize("seed", range(5))
def test_pairwise_matches_brute_force_pair_count(seed):
    t, p = random_labels(seed)
    tp = fp = fn = 0
    for i, j in combinations(range(len(t)), 2):
        same_true, same_pred = t[i] == t[j], p[i] == p[j]
        tp += same_true and same_pred
        fp += same_pred and not same_true
        fn += same_true and not same_pred
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    f = 2 * precision * recall / (precision + recall)
    assert metrics.pairwise_precision_recall_f(t, p) == approx((precision, recall, f))


@pytest.mark.parametrize("seed", range(5))
def test_bcubed_matches_brute_force_per_item(seed):
    t, p = random_labels(seed)
    precision = np.mean([np.sum((p == p[i]) & (t == t[i])) / np.sum(p == p[i]) for i in range(len(t))])
    recall = np.mean([np.sum((p == p[i]) & (t == t[i])) / np.sum(t == t[i]) for i in range(len(t))])
    f = 2 * precision * recall / (precision + recall)
    assert metrics.bcubed_precision_recall_f(t, p) == approx((precision, recall, f))


@pytest.mark.parametrize("seed", range(3))
def test_purity_and_hungarian_match_brute_force(seed):
    from itertools import permutations

    t, p = random_labels(seed, n=30, n_true=3, n_pred=4)
    purity = sum(np.bincount(t[p == c]).max() for c in np.unique(p)) / len(t)
    best = max(sum(np.sum((p == c) & (t == k)) for c, k in zip(perm, range(3)))
               for perm in permutations(range(4), 3))
    assert metrics.purity(t, p) == approx(purity)
    assert metrics.hungarian_accuracy(t, p) == approx(best / len(t))


# --------------------------------------------------------------------------- every registered score
@pytest.mark.parametrize("name", sorted(EXTERNAL))
def test_permutation_invariance(name):
    t, p = random_labels(0, n=40, n_pred=5)
    relabelled = np.random.default_rng(1).permutation(5)[p] + 10
    assert EXTERNAL[name](t, relabelled) == approx(EXTERNAL[name](t, p))


@pytest.mark.parametrize("name", sorted(EXTERNAL))
def test_lists_arrays_and_strings_agree(name):
    t, p = random_labels(2, n=40)
    expected = EXTERNAL[name](t, p)
    assert isinstance(expected, float)
    assert EXTERNAL[name](t.tolist(), p.tolist()) == approx(expected)
    assert EXTERNAL[name]([f"class{x}" for x in t], [f"c{x}" for x in p]) == approx(expected)


@pytest.mark.parametrize("name", sorted(EXTERNAL))
def test_nan_in_pred_raises(name):
    with pytest.raises(ValueError, match="labels_pred contains NaN"):
        EXTERNAL[name]([0, 0, 1], [0.0, np.nan, 1.0])
    with pytest.raises(ValueError, match="labels_pred contains NaN"):
        EXTERNAL[name](["a", "b", "b"], ["x", None, "y"])


@pytest.mark.parametrize("name", sorted(EXTERNAL))
def test_length_mismatch_names_the_lengths(name):
    with pytest.raises(ValueError, match="lengths: 4 and 3"):
        EXTERNAL[name]([0, 0, 1, 1], [0, 1, 1])


@pytest.mark.parametrize("bad, message", [([], "labels_true is empty"), ([[0, 1], [1, 0]], "must be 1-D")])
def test_empty_and_2d_raise(bad, message):
    with pytest.raises(ValueError, match=message):
        metrics.nmi(bad, bad)


# ---------------------------------------------------------------------------------- internal scores
@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (100, 2)), rng.normal(8, 1, (100, 2))])
    return X, np.repeat([0, 1], 100)


def test_silhouette_on_two_blobs(blobs):
    X, labels = blobs
    full = metrics.silhouette(X, labels)
    assert isinstance(full, float) and -1 <= full <= 1 and full > 0.5
    assert full == approx(skm.silhouette_score(X, labels))
    sampled = metrics.silhouette(X, labels, sample_size=50, random_state=3)
    assert sampled != full and abs(sampled - full) < 0.1


def test_internal_scores_are_nan_when_undefined(blobs):
    X, _ = blobs
    for labels in (np.zeros(200, int), np.arange(200), np.full(200, -1)):
        for f in (metrics.silhouette, metrics.calinski_harabasz, metrics.davies_bouldin):
            assert math.isnan(f(X, labels))


def test_internal_scores_leave_noise_out(blobs):
    X, labels = blobs
    X_noisy = np.vstack([X, [[30.0, -30.0], [-40.0, 5.0]]])
    labels_noisy = np.append(labels, [-1, -1])
    for f in (metrics.silhouette, metrics.calinski_harabasz, metrics.davies_bouldin):
        assert f(X_noisy, labels_noisy) == approx(f(X, labels))
    assert metrics.calinski_harabasz(X, labels) > 100 and metrics.davies_bouldin(X, labels) < 0.5


def test_internal_length_mismatch(blobs):
    X, labels = blobs
    with pytest.raises(ValueError, match="lengths: 200 and 199"):
        metrics.davies_bouldin(X, labels[:-1])


# -------------------------------------------------------------------------------- summary and score()
def test_cluster_sizes():
    sizes = metrics.cluster_sizes([0, 0, 0, 1, 1, 2, -1, -1])
    assert sizes == {"n_clusters": 3, "noise_fraction": 0.25, "min_size": 1, "median_size": 2.0,
                     "max_size": 3, "singletons": 1}
    assert math.isnan(metrics.cluster_sizes([-1, -1])["median_size"])


def test_score_returns_python_floats(blobs):
    X, labels = blobs
    truth = labels.copy()
    truth[:5] = 1
    row = metrics.score(truth, labels, X=X)
    assert all(type(v) is float for v in row.values())
    external = {"nmi", "ami", "ari", "homogeneity", "completeness", "v_measure", "purity", "accuracy",
                "pairwise_precision", "pairwise_recall", "pairwise_f", "bcubed_precision", "bcubed_recall",
                "bcubed_f"}
    internal = {"silhouette", "calinski_harabasz", "davies_bouldin"}
    assert external | internal | set(metrics.cluster_sizes(labels)) == set(row)
    for name, f in EXTERNAL.items():
        assert row[name] == approx(f(truth, labels))
    assert set(metrics.score(None, labels)) == set(metrics.cluster_sizes(labels))
    assert internal.isdisjoint(metrics.score(truth, labels)) and external.isdisjoint(metrics.score(None, labels, X))


def test_score_applies_the_noise_policy():
    t, p = [0, 0, 0, 1, 1], [0, 0, -1, -1, -1]
    assert metrics.score(t, p, noise="singletons")["bcubed_f"] == approx(16 / 23)


# ------------------------------------------------------------------------------------------ formats
def test_features_bin_round_trip(tmp_path):
    X = np.random.default_rng(0).normal(size=(7, 5))
    path = tmp_path / "part.bin"
    formats.write_features_bin(path, X)
    assert path.stat().st_size == 7 * 5 * 4
    back = formats.read_features_bin(path, dim=5)
    assert back.dtype == np.float32 and back.shape == (7, 5)
    np.testing.assert_array_equal(back, X.astype(np.float32))
    np.testing.assert_array_equal(formats.read_features_bin(path, dim=5, mmap=True), back)
    with pytest.raises(ValueError, match=r"dim=4 .*140 bytes"):
        formats.read_features_bin(path, dim=4)
    with pytest.raises(ValueError, match="dim=0"):
        formats.read_features_bin(path, dim=0)


def test_meta_round_trip(tmp_path):
    path = tmp_path / "part.meta"
    formats.write_meta(path, np.array([3, 3, 0, 12, 7]))
    assert path.read_text() == "3\n3\n0\n12\n7\n"
    back = formats.read_meta(path)
    assert back.dtype.kind == "i" and back.tolist() == [3, 3, 0, 12, 7]
    path.write_text("1\n2\nx\n")
    with pytest.raises(ValueError, match="line 3"):
        formats.read_meta(path)
    with pytest.raises(ValueError, match="integers"):
        formats.write_meta(path, ["a", "b"])


def test_knn_round_trip_in_the_original_layout(tmp_path):
    rng = np.random.default_rng(0)
    nbrs = rng.integers(0, 50, (50, 4))
    dists = rng.random((50, 4)).astype(np.float32)
    path = tmp_path / "faiss_k_4.npz"
    formats.write_knn_npz(path, nbrs, dists)
    with np.load(path) as z:
        assert z.files == ["data"] and z["data"].shape == (50, 2, 4)
    back_nbrs, back_dists = formats.read_knn_npz(path)
    assert back_nbrs.dtype.kind == "i" and back_dists.dtype == np.float32
    np.testing.assert_array_equal(back_nbrs, nbrs)
    np.testing.assert_array_equal(back_dists, dists)


def test_knn_reads_files_written_like_the_original_repo(tmp_path):
    # The original code saves np.array of a list of (int32 nbrs, float32 dists) pairs: float64 (N, 2, k).
    rng = np.random.default_rng(1)
    pairs = [(rng.permutation(30)[:5].astype(np.int32), np.sort(rng.random(5)).astype(np.float32))
             for _ in range(30)]
    np.savez_compressed(tmp_path / "orig.npz", data=np.array(pairs))
    nbrs, dists = formats.read_knn_npz(tmp_path / "orig.npz")
    np.testing.assert_array_equal(nbrs, [p[0] for p in pairs])
    np.testing.assert_allclose(dists, [p[1] for p in pairs])
    np.savez(tmp_path / "split.npz", nbrs=nbrs, dists=dists)
    split = formats.read_knn_npz(tmp_path / "split.npz")
    np.testing.assert_array_equal(split[0], nbrs)
    np.testing.assert_array_equal(split[1], dists)


def test_knn_bad_files_raise(tmp_path):
    np.savez(tmp_path / "other.npz", vectors=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="'data'.*'nbrs'"):
        formats.read_knn_npz(tmp_path / "other.npz")
    np.savez(tmp_path / "flat.npz", data=np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"\(N, 2, k\)"):
        formats.read_knn_npz(tmp_path / "flat.npz")
    ragged = np.empty(2, dtype=object)
    ragged[:] = [np.zeros((2, 3)), np.zeros((2, 2))]
    np.savez(tmp_path / "ragged.npz", data=ragged)
    with pytest.raises(ValueError, match="pickled"):
        formats.read_knn_npz(tmp_path / "ragged.npz")
    with pytest.raises(ValueError, match="shape"):
        formats.write_knn_npz(tmp_path / "x.npz", np.zeros((3, 2), int), np.zeros((3, 3)))


# ------------------------------------------------------------------------- undefined external scores
SCORE_EXTERNAL = {"nmi", "ami", "ari", "homogeneity", "completeness", "v_measure", "purity", "accuracy",
                  "pairwise_precision", "pairwise_recall", "pairwise_f", "bcubed_precision", "bcubed_recall",
                  "bcubed_f"}


@pytest.mark.parametrize("truth, pred, reason", [
    ([0] * 5, [-1] * 5, "same true label (0)"),  # both: the single class is named first
    (["shirt"] * 4, [0, 0, 1, 1], "same true label (shirt), so agreement with the truth is undefined"),
    ([0, 0, 1, 1], [-1, -1, -1, -1], "every photo is noise (no cluster was found)"),
    ([0, 0, 1, 1], [-1, -2, -1, -3], "every photo is noise"),  # any label below 0 is noise
    ([0, 0, 1, 1], np.array([-1, -1, -1, -1], dtype=object), "every photo is noise"),
])
def test_external_undefined_names_the_reason(truth, pred, reason):
    text = metrics.external_undefined(truth, pred)
    assert reason in text and text.endswith("undefined")


@pytest.mark.parametrize("truth, pred", [([0, 0, 1, 1], [0, 0, 0, 0]), ([0, 0, 1, 1], [-1, -1, -1, 0]),
                                         (["a", "b"], ["-1", "-1"])])  # string "-1" is a cluster name, not noise
def test_external_undefined_is_none_when_scores_are_meaningful(truth, pred):
    assert metrics.external_undefined(truth, pred) is None


def test_external_undefined_validates_with_its_parameter_names():
    with pytest.raises(ValueError, match="truth and labels have different lengths: 2 and 3"):
        metrics.external_undefined([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="labels contains NaN"):
        metrics.external_undefined([0, 1], [0, np.nan])


def test_score_is_nan_for_every_external_key_when_undefined():
    # five photos of one true class, all HDBSCAN noise: sklearn alone would give NMI 1.0
    assert skm.normalized_mutual_info_score([0] * 5, [-1] * 5) == 1.0
    for truth, pred in (([0] * 5, [-1] * 5), ([0] * 5, [0, 0, 1, 1, 2]), ([0, 0, 1, 1, 2], [-1] * 5)):
        row = metrics.score(truth, pred)
        assert SCORE_EXTERNAL <= set(row) and all(type(v) is float for v in row.values())
        assert all(math.isnan(row[k]) for k in SCORE_EXTERNAL), row
    # cluster sizes are still counted: all noise -> 0 clusters, noise fraction 1
    row = metrics.score([0] * 5, [-1] * 5)
    assert row["n_clusters"] == 0.0 and row["noise_fraction"] == 1.0
    # with some noise but one real cluster, scores are defined: truth [0,0,1,1], pred [0,0,-1,-1] is perfect
    row = metrics.score([0, 0, 1, 1], [0, 0, -1, -1])
    assert row["nmi"] == approx(1.0) and row["bcubed_f"] == approx(1.0) and row["accuracy"] == approx(1.0)


@pytest.mark.parametrize("name", sorted(EXTERNAL))
@pytest.mark.parametrize("truth, pred", [([3] * 4, [0, 0, 1, 1]), ([0, 0, 1, 1], [-1] * 4)])
def test_external_metrics_are_nan_and_warn_when_undefined(name, truth, pred):
    with pytest.warns(metrics.UndefinedScoreWarning, match=rf"^{name if name != 'accuracy' else 'hungarian_accuracy'}"
                                                           r" returns nan: every photo"):
        value = EXTERNAL[name](truth, pred)
    assert type(value) is float and math.isnan(value)


@pytest.mark.parametrize("fn", [metrics.pairwise_precision_recall_f, metrics.bcubed_precision_recall_f])
def test_precision_recall_f_are_three_nans_when_undefined(fn):
    with pytest.warns(metrics.UndefinedScoreWarning, match="same true label"):
        result = fn(["x"] * 3, [0, 1, 2])
    assert len(result) == 3 and all(math.isnan(v) for v in result)


def test_defined_scores_do_not_warn():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert metrics.nmi([0, 0, 1, 1], [0, 0, 1, -1]) > 0
        assert metrics.purity([0, 0, 1, 1], [0, 0, 1, -1]) == approx(1.0)
    assert issubclass(metrics.UndefinedScoreWarning, UserWarning)
