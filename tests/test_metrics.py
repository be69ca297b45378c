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


# ------------------------------------------------------------------------------------------- binned_f
# Three identities of sizes 4, 2, 1: A = samples 0-3, B = 4-5, C = 6. The prediction splits A in two halves
# (clusters 5 and 6), puts B's first sample with A's second half and B's second sample with C (cluster 7).
BIN_TRUE = ["A", "A", "A", "A", "B", "B", "C"]
BIN_PRED = [5, 5, 6, 6, 6, 7, 7]


def test_binned_f_by_size_hand_computed():
    """n_bins=3, one identity per bin, each scored on its own samples only:
    bin 1 (A, size 4): pred [5, 5, 6, 6]. Pairwise TP = 1 + 1 = 2, predicted pairs 2 -> P = 1; true pairs C(4,2) = 6
      -> R = 1/3; F = 2 (1/3) / (4/3) = 0.5. BCubed: P = 1, R = 2/4 for each sample -> F = 2 (0.5) / 1.5 = 2/3.
    bin 2 (B, size 2): pred [6, 7]. No predicted pair -> P = 1; TP = 0 of 1 true pair -> R = 0, F = 0.
      BCubed: P = 1, R = 1/2 -> F = 2/3.
    bin 3 (C, size 1): one sample: no pair at all -> P = R = F = 1; BCubed 1, 1, 1."""
    table = metrics.binned_f(BIN_TRUE, BIN_PRED, n_bins=3)
    assert list(table.columns) == list(metrics.BINNED_COLUMNS)
    assert table["bin"].tolist() == [1, 2, 3]
    assert table["range"].tolist() == ["4-4", "2-2", "1-1"]
    assert table["identities"].tolist() == [1, 1, 1] and table["samples"].tolist() == [4, 2, 1]
    assert table["pairwise_precision"].tolist() == approx([1, 1, 1])
    assert table["pairwise_recall"].tolist() == approx([1 / 3, 0, 1])
    assert table["pairwise_f"].tolist() == approx([0.5, 0, 1])
    assert table["bcubed_precision"].tolist() == approx([1, 1, 1])
    assert table["bcubed_recall"].tolist() == approx([0.5, 0.5, 1])
    assert table["bcubed_f"].tolist() == approx([2 / 3, 2 / 3, 1])


def test_binned_f_two_bins_hand_computed():
    """n_bins=2 cuts the ranking A, B | C. Bin 1 holds A and B (6 samples), pred [5, 5, 6, 6, 6, 7]: contingency
    A: 5 -> 2, 6 -> 2; B: 6 -> 1, 7 -> 1. TP = 1 + 1 = 2; predicted pairs C(2,2) + C(3,2) = 4 -> P = 1/2;
    true pairs C(4,2) + C(2,2) = 7 -> R = 2/7; F = 2 (1/2)(2/7) / (1/2 + 2/7) = 4/11.
    BCubed precision per sample: A in 5: 2/2, 2/2; A in 6: 2/3, 2/3; B in 6: 1/3; B in 7 (C is not in this bin):
    1/1 -> sum 2 + 4/3 + 1/3 + 1 = 14/3, P = 14/18 = 7/9.
    BCubed recall: A: 2/4 x 4; B: 1/2 x 2 -> sum 3, R = 1/2."""
    table = metrics.binned_f(BIN_TRUE, BIN_PRED, n_bins=2)
    assert table["range"].tolist() == ["2-4", "1-1"]
    assert table["identities"].tolist() == [2, 1] and table["samples"].tolist() == [6, 1]
    row = table.iloc[0]
    assert (row.pairwise_precision, row.pairwise_recall, row.pairwise_f) == approx((0.5, 2 / 7, 4 / 11))
    p, r = 7 / 9, 0.5
    assert (row.bcubed_precision, row.bcubed_recall, row.bcubed_f) == approx((p, r, 2 * p * r / (p + r)))


def test_binned_f_by_sparsity_hand_computed():
    """A: four copies of (1, 0): sparsity 0. B: (1, 0) and (0, 1), cosine 0: sparsity 1 - 0 = 1. C: one sample,
    no pair: sparsity 0. Densest first, ties in order of appearance: A, C, B (rows need not be unit: x3 here)."""
    X = 3.0 * np.array([[1, 0]] * 5 + [[0, 1], [1, 0]])
    sparsity = metrics.identity_sparsity(X, BIN_TRUE)
    assert sparsity["label"].tolist() == ["A", "B", "C"] and sparsity["size"].tolist() == [4, 2, 1]
    assert sparsity["sparsity"].tolist() == approx([0, 1, 0])
    table = metrics.binned_f(BIN_TRUE, BIN_PRED, by="sparsity", X=X, n_bins=3)
    assert table["range"].tolist() == ["0.00-0.00", "0.00-0.00", "1.00-1.00"]
    assert table["samples"].tolist() == [4, 1, 2]
    assert table["pairwise_f"].tolist() == approx([0.5, 1, 0])


def test_identity_sparsity_matches_the_pairwise_definition():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 6)).astype(np.float32)
    y = rng.integers(0, 7, 90)
    table = metrics.identity_sparsity(X, y)
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    for label, s in zip(table["label"], table["sparsity"]):
        rows = U[y == label]
        cos = rows @ rows.T
        n = len(rows)
        assert s == approx(1 - (cos.sum() - np.trace(cos)) / (n * (n - 1)), abs=1e-6)


def test_binned_f_covers_every_sample_and_is_perfect_on_the_truth():
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(40), rng.integers(1, 30, 40))
    X = rng.normal(size=(len(y), 8))
    for by in ("size", "sparsity"):
        table = metrics.binned_f(y, y, by=by, X=X)
        assert table["samples"].sum() == len(y) and table["identities"].sum() == 40
        assert table["identities"].tolist() == [8] * 5
        assert (table[["pairwise_f", "bcubed_f"]].to_numpy() == 1).all()
    pred = rng.permutation(y)
    sizes = metrics.binned_f(y, pred)
    lows = [int(r.split("-")[0]) for r in sizes["range"]]
    assert lows == sorted(lows, reverse=True)  # largest identities first, the smallest in bin 5
    renamed = metrics.binned_f([f"id{v}" for v in y], pred + 100)  # label names do not matter
    cols = list(metrics.BINNED_COLUMNS[2:])
    np.testing.assert_allclose(renamed[cols].to_numpy(float), sizes[cols].to_numpy(float))


def test_binned_f_noise_policy_and_plain_table(tmp_path):
    y = [0, 0, 1, 1, 2, 2]
    pred = [-1, -1, -1, -1, 3, 3]
    as_cluster = metrics.binned_f(y, pred, n_bins=3)
    singletons = metrics.binned_f(y, pred, n_bins=3, noise="singletons")
    assert as_cluster["pairwise_f"].tolist() == approx([1, 1, 1])  # each bin alone: noise pair is its identity
    assert singletons["pairwise_f"].tolist() == approx([0, 0, 1])
    import pandas as pd

    both = pd.concat([as_cluster, singletons]).astype({"range": "string"})
    assert not as_cluster.attrs and len(both) == 6
    both.to_parquet(tmp_path / "binned.parquet")


@pytest.mark.parametrize("kwargs, error, match", [
    ({"by": "area"}, ValueError, "'by' parameter of binned_f"),
    ({"n_bins": 0}, ValueError, "'n_bins' parameter of binned_f"),
    ({"n_bins": 2.5}, ValueError, "'n_bins' parameter of binned_f"),
    ({"n_bins": 4}, ValueError, "n_bins=4 is more than the 3 identities"),
    ({"noise": "drop"}, ValueError, "'noise' parameter of binned_f"),
    ({"by": "sparsity"}, ValueError, "needs the features: pass X="),
    ({"by": "sparsity", "X": np.ones((6, 2))}, ValueError, "X and labels_true have different lengths: 6 and 7"),
    ({"by": "sparsity", "X": np.ones(7)}, ValueError, "X must be 2-D"),
    ({"by": "sparsity", "X": np.vstack([np.ones((6, 2)), [[0, 0]]])}, ValueError, "X row 6 is all zeros"),
    ({"by": "sparsity", "X": np.vstack([np.ones((6, 2)), [[np.nan, 1]]])}, ValueError,
     "NaN or infinite value in row 6"),
])
def test_binned_f_bad_inputs_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        metrics.binned_f(BIN_TRUE, BIN_PRED, **{"n_bins": 3, **kwargs})


def test_binned_f_bad_labels_are_named():
    with pytest.raises(ValueError, match="different lengths: 7 and 6"):
        metrics.binned_f(BIN_TRUE, BIN_PRED[:6], n_bins=3)
    with pytest.raises(ValueError, match="labels_true contains NaN"):
        metrics.binned_f(BIN_TRUE[:6] + [None], BIN_PRED, n_bins=3)
