"""Scores of a clustering: external (against true labels) and internal (from the features alone).

Every metric is a pure function returning a Python float. External scores take ``labels_true`` and
``labels_pred`` (lists or arrays of ints or strings) and a ``noise`` policy for predicted label ``-1``:
``"cluster"`` (all noise points form one extra cluster, the default) or ``"singletons"`` (each noise
point is its own cluster). Pairwise and BCubed scores follow the face-clustering literature
(Yang et al., CVPR 2019; Chen et al., ECCV 2022) and are computed from the contingency table, so
they scale to millions of samples. Internal scores leave noise points out and return nan when
undefined (fewer than two clusters, or every point its own cluster).

External scores are undefined when the truth has a single class (any labeling "agrees" with it) or when
every predicted label is noise (below 0: no cluster was found). :func:`external_undefined` gives the reason
as a sentence; the external metric functions then return nan and warn (:class:`UndefinedScoreWarning`), and
:func:`score` returns nan for every external key.
"""
from __future__ import annotations

import math
import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn import metrics as _skm
from sklearn.metrics.cluster import contingency_matrix
from sklearn.utils import check_random_state

from ._utils.validation import Interval, StrOptions, validate_params

NOISE_POLICIES = ("cluster", "singletons")
_NOISE = [StrOptions(set(NOISE_POLICIES))]  # "cluster": noise points form one cluster; "singletons": one each


class UndefinedScoreWarning(UserWarning):
    """An external score was asked for where it is undefined (a single true class, or every point noise); the
    score is nan and the warning's message says why."""


# --------------------------------------------------------------------------------------------- helpers
def _as_labels(labels, name: str) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}; pass one label per sample.")
    if arr.size == 0:
        raise ValueError(f"{name} is empty; pass at least one label.")
    missing = pd.isna(arr)
    if missing.any():
        raise ValueError(f"{name} contains NaN (or None) at index {int(np.flatnonzero(missing)[0])}; "
                         "drop those samples or give them a label (-1 marks noise in labels_pred).")
    return arr


def _noise_mask(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind in "iuf" or arr.dtype == object:
        return np.asarray(arr == -1, dtype=bool)
    return np.zeros(arr.shape, dtype=bool)  # string labels have no noise marker


def _all_noise(arr: np.ndarray) -> bool:
    """True when every label is a number below 0 (noise); string labels are never noise."""
    if arr.dtype.kind in "iuf":
        return bool((arr < 0).all())
    if arr.dtype == object:
        return all(isinstance(v, Real) and not isinstance(v, (bool, np.bool_)) and v < 0 for v in arr.tolist())
    return False


def _reason(t: np.ndarray, p: np.ndarray) -> str | None:
    """Why external scores of validated labelings ``t`` (truth) and ``p`` (prediction) are undefined, or None."""
    classes = pd.unique(t)
    if len(classes) == 1:
        return (f"every photo has the same true label ({classes[0]}), so agreement with the truth is "
                f"undefined")
    if _all_noise(p):
        return "every photo is noise (no cluster was found), so external scores are undefined"
    return None


def _validated_pair(labels_true, labels_pred, names=("labels_true", "labels_pred")):
    t, p = _as_labels(labels_true, names[0]), _as_labels(labels_pred, names[1])
    if t.shape[0] != p.shape[0]:
        raise ValueError(f"{names[0]} and {names[1]} have different lengths: {t.shape[0]} and {p.shape[0]}; "
                         "pass one true and one predicted label per sample.")
    return t, p


def external_undefined(truth, labels) -> str | None:
    """Why external scores of ``labels`` against ``truth`` are undefined, or None when they are meaningful.

    They are undefined when every sample has the same true label (any labeling agrees with a single class),
    or when every predicted label is noise (below 0: no cluster was found). The answer is one sentence to show
    the user.

    Parameters
    ----------
    truth, labels : array-like of shape (n_samples,), ints or strings

    Returns
    -------
    str or None

    Examples
    --------
    >>> external_undefined([0, 0, 1], [0, 1, 1]) is None
    True
    >>> external_undefined(["shirt", "shirt"], [0, 1])
    'every photo has the same true label (shirt), so agreement with the truth is undefined'
    >>> external_undefined([0, 1], [-1, -1])
    'every photo is noise (no cluster was found), so external scores are undefined'
    """
    return _reason(*_validated_pair(truth, labels, ("truth", "labels")))


def _check_pair(labels_true, labels_pred, noise: str = "cluster", caller: str = "score", undefined=None):
    """Validate both labelings; return them as integer codes with the noise policy applied to the prediction.

    With ``undefined`` a list, the reason external scores are undefined (or None) is appended to it."""
    validate_params({"noise": _NOISE}, {"noise": noise}, caller)
    t, p = _validated_pair(labels_true, labels_pred)
    if undefined is not None:
        undefined.append(_reason(t, p))
    t_codes = pd.factorize(t)[0]
    p_codes = pd.factorize(p)[0]
    if noise == "singletons":
        mask = _noise_mask(p)
        p_codes[mask] = p_codes.max() + 1 + np.arange(int(mask.sum()))
    return t_codes, p_codes


def _contingency(t, p):
    """Sparse (n_classes, n_clusters) table n_ij, as COO so that rows, columns and counts are aligned."""
    return contingency_matrix(t, p, sparse=True).tocoo()


def _f(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2.0 * precision * recall / (precision + recall)


def _pairs(n) -> int:
    n = np.asarray(n, dtype=np.int64)
    return int((n * (n - 1) // 2).sum())


def _pairwise(c) -> tuple:
    tp = _pairs(c.data)
    pred_pairs = _pairs(np.asarray(c.sum(axis=0)).ravel())
    true_pairs = _pairs(np.asarray(c.sum(axis=1)).ravel())
    precision = tp / pred_pairs if pred_pairs else 1.0
    recall = tp / true_pairs if true_pairs else 1.0
    return float(precision), float(recall), float(_f(precision, recall))


def _bcubed(c) -> tuple:
    n_ij = c.data.astype(np.float64)
    class_size = np.asarray(c.sum(axis=1)).ravel()[c.row]
    cluster_size = np.asarray(c.sum(axis=0)).ravel()[c.col]
    n = n_ij.sum()
    precision = float((n_ij ** 2 / cluster_size).sum() / n)
    recall = float((n_ij ** 2 / class_size).sum() / n)
    return precision, recall, float(_f(precision, recall))


def _purity(c) -> float:
    return float(c.tocsc().max(axis=0).toarray().sum() / c.data.sum())


def _hungarian(c) -> float:
    table = c.toarray()
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / table.sum())


# ------------------------------------------------------------------------------------- external scores
def _external(labels_true, labels_pred, noise, caller):
    """Validated codes ``(t, p)``, or None (after an :class:`UndefinedScoreWarning`) when the score is undefined."""
    undefined = []
    t, p = _check_pair(labels_true, labels_pred, noise, caller, undefined)
    if undefined[0] is not None:
        warnings.warn(f"{caller} returns nan: {undefined[0]}.", UndefinedScoreWarning, stacklevel=3)
        return None
    return t, p


def _sklearn_score(sk_func, name: str, what: str):
    def metric(labels_true, labels_pred, noise: str = "cluster") -> float:
        pair = _external(labels_true, labels_pred, noise, name)
        return math.nan if pair is None else float(sk_func(*pair))

    metric.__name__ = metric.__qualname__ = name
    metric.__doc__ = f"""{what} (``sklearn.metrics.{sk_func.__name__}``).

    Parameters
    ----------
    labels_true, labels_pred : array-like of shape (n_samples,), ints or strings
    noise : {{"cluster", "singletons"}}, default "cluster"
        How predicted label -1 is treated: one extra cluster, or one cluster per noise point.

    Returns
    -------
    float
        nan, with an ``UndefinedScoreWarning``, when the truth has a single class or every point is noise
        (see ``external_undefined``).

    Examples
    --------
    >>> from kit.metrics import {name}
    >>> {name}([0, 0, 1, 1], [1, 1, 0, 0])
    1.0
    """
    return metric


nmi = _sklearn_score(_skm.normalized_mutual_info_score, "nmi", "Normalised mutual information (arithmetic mean)")
ami = _sklearn_score(_skm.adjusted_mutual_info_score, "ami", "Adjusted mutual information")
ari = _sklearn_score(_skm.adjusted_rand_score, "ari", "Adjusted Rand index")
homogeneity = _sklearn_score(_skm.homogeneity_score, "homogeneity", "Homogeneity: each cluster holds one class")
completeness = _sklearn_score(_skm.completeness_score, "completeness", "Completeness: each class in one cluster")
v_measure = _sklearn_score(_skm.v_measure_score, "v_measure", "V-measure: homogeneity and completeness combined")


def purity(labels_true, labels_pred, noise: str = "cluster") -> float:
    """Fraction of samples that belong to the most common true class of their predicted cluster.

    Parameters and ``noise`` as in :func:`nmi`. Purity is 1.0 for all-singleton predictions.

    Examples
    --------
    >>> purity([0, 0, 1, 1], [0, 0, 0, 1])
    0.75
    """
    pair = _external(labels_true, labels_pred, noise, "purity")
    return math.nan if pair is None else _purity(_contingency(*pair))


def hungarian_accuracy(labels_true, labels_pred, noise: str = "cluster") -> float:
    """Accuracy after the best one-to-one matching of clusters to classes (Hungarian algorithm).

    Clusters left without a class (more clusters than classes) count as wrong. Parameters as in :func:`nmi`;
    nan (with an ``UndefinedScoreWarning``) where external scores are undefined, as for every external score.

    Examples
    --------
    >>> hungarian_accuracy([0, 0, 1, 1], [5, 5, 7, 8])
    0.75
    """
    pair = _external(labels_true, labels_pred, noise, "hungarian_accuracy")
    return math.nan if pair is None else _hungarian(_contingency(*pair))


def pairwise_precision_recall_f(labels_true, labels_pred, noise: str = "cluster") -> tuple:
    """Pairwise precision, recall and F-score over pairs of samples.

    With n_ij the contingency table, TP = sum_ij C(n_ij, 2); precision = TP / sum_j C(n_.j, 2) (pairs in a
    predicted cluster), recall = TP / sum_i C(n_i., 2) (pairs in a true class); F is their harmonic mean.
    Precision is 1.0 when no predicted pair exists (all singletons), recall 1.0 when no true pair exists.

    Returns
    -------
    (precision, recall, f) : tuple of float
        ``(nan, nan, nan)``, with an ``UndefinedScoreWarning``, when the truth has a single class or every
        point is noise.

    Examples
    --------
    >>> pairwise_precision_recall_f([0, 0, 1, 1], [0, 0, 0, 0])
    (0.3333333333333333, 1.0, 0.5)
    """
    pair = _external(labels_true, labels_pred, noise, "pairwise_precision_recall_f")
    return (math.nan, math.nan, math.nan) if pair is None else _pairwise(_contingency(*pair))


def pairwise_f(labels_true, labels_pred, noise: str = "cluster") -> float:
    """Pairwise F-score; see :func:`pairwise_precision_recall_f`.

    Examples
    --------
    >>> pairwise_f([0, 0, 1, 1], [0, 0, 1, 1])
    1.0
    """
    pair = _external(labels_true, labels_pred, noise, "pairwise_f")
    return math.nan if pair is None else _pairwise(_contingency(*pair))[2]


def bcubed_precision_recall_f(labels_true, labels_pred, noise: str = "cluster") -> tuple:
    """BCubed precision, recall and F-score.

    For each sample i, precision_i = |cluster(i) & class(i)| / |cluster(i)| and recall_i =
    |cluster(i) & class(i)| / |class(i)|, averaged over samples; F is their harmonic mean.

    Returns
    -------
    (precision, recall, f) : tuple of float
        ``(nan, nan, nan)``, with an ``UndefinedScoreWarning``, when the truth has a single class or every
        point is noise.

    Examples
    --------
    >>> bcubed_precision_recall_f([0, 0, 1, 1], [0, 0, 0, 0])
    (0.5, 1.0, 0.6666666666666666)
    """
    pair = _external(labels_true, labels_pred, noise, "bcubed_precision_recall_f")
    return (math.nan, math.nan, math.nan) if pair is None else _bcubed(_contingency(*pair))


def bcubed_f(labels_true, labels_pred, noise: str = "cluster") -> float:
    """BCubed F-score; see :func:`bcubed_precision_recall_f`.

    Examples
    --------
    >>> bcubed_f([0, 0, 1, 1], [0, 0, 1, 1])
    1.0
    """
    pair = _external(labels_true, labels_pred, noise, "bcubed_f")
    return math.nan if pair is None else _bcubed(_contingency(*pair))[2]


#: The scalar external scores, by the name :func:`score` gives them.
EXTERNAL = {
    "nmi": nmi, "ami": ami, "ari": ari, "homogeneity": homogeneity, "completeness": completeness,
    "v_measure": v_measure, "purity": purity, "accuracy": hungarian_accuracy, "pairwise_f": pairwise_f,
    "bcubed_f": bcubed_f,
}


# ------------------------------------------------------------------------------------- internal scores
def _internal(X, labels):
    """Validated (X, codes) with noise points dropped, or None when the score is undefined."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}; reshape it.")
    arr = _as_labels(labels, "labels")
    if arr.shape[0] != X.shape[0]:
        raise ValueError(f"X and labels have different lengths: {X.shape[0]} and {arr.shape[0]}; "
                         "pass one label per row of X.")
    keep = ~_noise_mask(arr)
    X, codes = X[keep], pd.factorize(arr[keep])[0]
    return (X, codes) if 2 <= len(np.unique(codes)) < len(codes) else None


def silhouette(X, labels, sample_size: int = 10000, random_state=0, metric: str = "euclidean") -> float:
    """Mean silhouette coefficient (``sklearn.metrics.silhouette_score``), in [-1, 1].

    Noise points (label -1) are left out. Above ``sample_size`` points, a random sample of that size is
    scored (None: never sample). Returns nan when undefined: fewer than two clusters, or every point its
    own cluster. ``metric`` is any distance of ``sklearn.metrics.pairwise_distances`` ("euclidean",
    "cosine"...) or a callable. This is the kit's one silhouette: ``kit.k.silhouette`` scores through it.

    Examples
    --------
    >>> silhouette([[0, 0], [0, 1], [9, 9], [9, 8]], [0, 0, 1, 1]) > 0.8
    True
    """
    validate_params({"sample_size": [Interval(Integral, 2, None, closed="left"), None],
                     "random_state": ["random_state"], "metric": [str, callable]},
                    {"sample_size": sample_size, "random_state": random_state, "metric": metric}, "silhouette")
    prepared = _internal(X, labels)
    if prepared is None:
        return math.nan
    X, codes = prepared
    if sample_size is not None and len(codes) > sample_size:
        idx = check_random_state(random_state).permutation(len(codes))[:sample_size]
        X, codes = X[idx], codes[idx]
        if not 2 <= len(np.unique(codes)) < len(codes):
            return math.nan
    return float(_skm.silhouette_score(X, codes, metric=metric))


def calinski_harabasz(X, labels) -> float:
    """Calinski-Harabasz index (higher is better); noise left out, nan when undefined.

    Examples
    --------
    >>> calinski_harabasz([[0, 0], [0, 1], [9, 9], [9, 8]], [0, 0, 1, 1]) > 100
    True
    """
    prepared = _internal(X, labels)
    return math.nan if prepared is None else float(_skm.calinski_harabasz_score(*prepared))


def davies_bouldin(X, labels) -> float:
    """Davies-Bouldin index (lower is better); noise left out, nan when undefined.

    Examples
    --------
    >>> davies_bouldin([[0, 0], [0, 1], [9, 9], [9, 8]], [0, 0, 1, 1]) < 0.2
    True
    """
    prepared = _internal(X, labels)
    return math.nan if prepared is None else float(_skm.davies_bouldin_score(*prepared))


# -------------------------------------------------------------------------------------------- summary
def cluster_sizes(labels) -> dict:
    """Sizes of the clusters of a labeling (noise, label -1, is not a cluster).

    Returns
    -------
    dict
        ``n_clusters``, ``noise_fraction``, ``min_size``, ``median_size``, ``max_size``, ``singletons``
        (clusters of one point). Sizes are nan when every point is noise.

    Examples
    --------
    >>> cluster_sizes([0, 0, 0, 1, 2, -1])["singletons"]
    2
    """
    arr = _as_labels(labels, "labels")
    noise = _noise_mask(arr)
    sizes = np.bincount(pd.factorize(arr[~noise])[0]) if (~noise).any() else np.zeros(0, dtype=np.int64)
    empty = sizes.size == 0
    return {
        "n_clusters": int(sizes.size),
        "noise_fraction": float(noise.mean()),
        "min_size": math.nan if empty else int(sizes.min()),
        "median_size": math.nan if empty else float(np.median(sizes)),
        "max_size": math.nan if empty else int(sizes.max()),
        "singletons": int((sizes == 1).sum()),
    }


EXTERNAL_KEYS = ("nmi", "ami", "ari", "homogeneity", "completeness", "v_measure", "purity", "accuracy",
                 "pairwise_precision", "pairwise_recall", "pairwise_f", "bcubed_precision", "bcubed_recall",
                 "bcubed_f")


def score(truth, labels, X=None, noise: str = "cluster", random_state=0) -> dict:
    """Every score of one clustering, as a dict of Python floats (one row of a scores table).

    External scores (``nmi, ami, ari, homogeneity, completeness, v_measure, purity, accuracy,
    pairwise_precision, pairwise_recall, pairwise_f, bcubed_precision, bcubed_recall, bcubed_f``,
    ``EXTERNAL_KEYS``) when ``truth`` is not None; internal ones (``silhouette, calinski_harabasz,
    davies_bouldin``) when ``X`` is given; and the :func:`cluster_sizes` of ``labels`` always.

    Where external scores are undefined (the truth has a single class, or every point is noise) every external
    key is nan, without a warning: :func:`external_undefined` gives the reason to show.

    Examples
    --------
    >>> score([0, 0, 1, 1], [0, 0, 1, 1])["pairwise_f"]
    1.0
    >>> score([0, 0, 0], [-1, -1, -1])["nmi"]
    nan
    """
    validate_params({"noise": _NOISE, "random_state": ["random_state"]},
                    {"noise": noise, "random_state": random_state}, "score")
    row = {}
    if truth is not None:
        undefined = []
        t, p = _check_pair(truth, labels, noise, "score", undefined)
        if undefined[0] is not None:
            row.update(dict.fromkeys(EXTERNAL_KEYS, math.nan))
        else:
            c = _contingency(t, p)
            row["nmi"] = _skm.normalized_mutual_info_score(t, p)
            row["ami"] = _skm.adjusted_mutual_info_score(t, p)
            row["ari"] = _skm.adjusted_rand_score(t, p)
            h, cpl, v = _skm.homogeneity_completeness_v_measure(t, p)
            row.update(homogeneity=h, completeness=cpl, v_measure=v, purity=_purity(c), accuracy=_hungarian(c))
            row["pairwise_precision"], row["pairwise_recall"], row["pairwise_f"] = _pairwise(c)
            row["bcubed_precision"], row["bcubed_recall"], row["bcubed_f"] = _bcubed(c)
    if X is not None:
        row["silhouette"] = silhouette(X, labels, random_state=random_state)
        row["calinski_harabasz"] = calinski_harabasz(X, labels)
        row["davies_bouldin"] = davies_bouldin(X, labels)
    row.update(cluster_sizes(labels))
    return {key: float(value) for key, value in row.items()}


# ------------------------------------------------------------------------------------- binned scores
#: The columns of :func:`binned_f`, in order.
BINNED_COLUMNS = ("bin", "range", "identities", "samples", "pairwise_precision", "pairwise_recall", "pairwise_f",
                  "bcubed_precision", "bcubed_recall", "bcubed_f")
_SPARSITY_CHUNK = 65536  # rows normalised at once by identity_sparsity: memory ~ chunk x dim floats


def _sparsity_of_codes(X, codes: np.ndarray, n_ids: int) -> np.ndarray:
    """Sparsity of each identity (``codes`` 0..n_ids-1, one per row of ``X``); see :func:`identity_sparsity`."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}; pass one feature row "
                         "per sample.")
    if X.shape[0] != len(codes):
        raise ValueError(f"X and labels_true have different lengths: {X.shape[0]} and {len(codes)}; pass one "
                         "feature row per label.")
    if X.dtype.kind not in "iuf":
        raise ValueError(f"X must hold numbers, got dtype {X.dtype}; pass the features as a float array.")
    sums = np.zeros((n_ids, X.shape[1]), np.float64)
    for lo in range(0, len(X), _SPARSITY_CHUNK):
        rows = np.asarray(X[lo:lo + _SPARSITY_CHUNK], np.float64)
        if not np.isfinite(rows).all():
            bad = lo + int(np.flatnonzero(~np.isfinite(rows).all(axis=1))[0])
            raise ValueError(f"X has a NaN or infinite value in row {bad}; drop or fix that sample.")
        norms = np.linalg.norm(rows, axis=1)
        if (norms == 0).any():
            bad = lo + int(np.flatnonzero(norms == 0)[0])
            raise ValueError(f"X row {bad} is all zeros, so its cosine to other samples is undefined; drop that "
                             "sample or pass its real features.")
        np.add.at(sums, codes[lo:lo + _SPARSITY_CHUNK], rows / norms[:, None])
    size = np.bincount(codes, minlength=n_ids).astype(np.float64)
    # sum over ordered pairs i != j of cos(x_i, x_j) = |sum_i x_i|^2 - |C| for unit rows
    pair_cos = np.einsum("ij,ij->i", sums, sums) - size
    pairs = size * (size - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sparsity = np.where(pairs > 0, 1.0 - pair_cos / np.where(pairs > 0, pairs, 1.0), 0.0)
    return np.clip(sparsity, 0.0, 2.0)


def identity_sparsity(X, labels_true) -> pd.DataFrame:
    """Size and sparsity of every identity (true class): how spread its samples are.

    The sparsity of an identity C is the average cosine distance over its pairs of samples (Chen et al.,
    "On Mitigating Hard Clusters for Face Clustering", ECCV 2022, Section 1 and Fig. 1(b)):
    ``1 - sum_{i != j in C} cos(x_i, x_j) / (|C| (|C| - 1))``, from 0 (all samples alike) to 2. An identity of one
    sample has no pair; its sparsity is 0. Computed from each identity's sum of unit rows (memory O(identities x
    dim), rows read in chunks), so it scales to millions of samples.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Features; rows are L2-normalised here (cosine), so they need not be already. A zero row raises.
    labels_true : array-like of shape (n_samples,), ints or strings

    Returns
    -------
    pandas.DataFrame
        One row per identity, in order of first appearance: ``label``, ``size``, ``sparsity``.

    Examples
    --------
    >>> identity_sparsity([[1, 0], [0, 1], [1, 0]], ["a", "a", "b"])["sparsity"].tolist()
    [1.0, 0.0]
    """
    t = _as_labels(labels_true, "labels_true")
    codes, uniques = pd.factorize(t)
    sparsity = _sparsity_of_codes(X, codes, len(uniques))
    return pd.DataFrame({"label": np.asarray(uniques), "size": np.bincount(codes, minlength=len(uniques)),
                         "sparsity": sparsity})


def binned_f(labels_true, labels_pred, *, by: str = "size", X=None, n_bins: int = 5,
             noise: str = "cluster") -> pd.DataFrame:
    """Pairwise and BCubed scores by bins of identities: by identity size or by identity sparsity.

    As in Chen et al., "On Mitigating Hard Clusters for Face Clustering" (ECCV 2022, Section 1, Figs. 1-2): the
    identities (true classes) are ranked by size or by sparsity and the ranking is cut into ``n_bins`` subsets
    of (nearly) equal numbers of identities; each subset is scored on its own samples only (the samples of
    its identities, with their predicted labels). The last bin holds the hard clusters: bin ``n_bins`` is the
    smallest identities with ``by="size"`` (the paper's sz-5) and the sparsest with ``by="sparsity"`` (sp-5);
    bin 1 the largest, or the densest. Identities of equal size or sparsity keep their order of first
    appearance, so two adjacent bins may share a value at their border.

    Parameters
    ----------
    labels_true, labels_pred : array-like of shape (n_samples,), ints or strings
    by : {"size", "sparsity"}, default "size"
        Rank identities by their number of samples, or by their sparsity (the mean cosine distance over their
        pairs of samples; see :func:`identity_sparsity`).
    X : array-like of shape (n_samples, n_features), optional
        The features, needed with ``by="sparsity"`` (cosine: rows are L2-normalised here); unused with "size".
    n_bins : int, default 5
        Number of bins (the paper's five); at most the number of identities.
    noise : {"cluster", "singletons"}, default "cluster"
        How predicted label -1 is treated (as in :func:`pairwise_f`), before the samples are split into bins.

    Returns
    -------
    pandas.DataFrame
        One row per bin, columns ``BINNED_COLUMNS``: ``bin`` (1..n_bins), ``range`` (the sizes, "1-4", or the
        sparsities, "0.31-0.45", of its identities), ``identities``, ``samples``, then ``pairwise_precision``,
        ``pairwise_recall``, ``pairwise_f``, ``bcubed_precision``, ``bcubed_recall``, ``bcubed_f`` of its samples.
        Pairwise precision is 1.0 when the bin's samples form no predicted pair, recall 1.0 when they form no
        true pair (a bin of single-sample identities).

    Examples
    --------
    >>> table = binned_f([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 1, 2], n_bins=3)
    >>> table[["bin", "range", "pairwise_f"]].values.tolist()
    [[1, '3-3', 0.5], [2, '2-2', 1.0], [3, '1-1', 1.0]]
    """
    validate_params({"by": [StrOptions({"size", "sparsity"})], "n_bins": [Interval(Integral, 1, None, closed="left")],
                     "noise": _NOISE}, {"by": by, "n_bins": n_bins, "noise": noise}, "binned_f")
    t, p = _check_pair(labels_true, labels_pred, noise, "binned_f")
    n_ids = int(t.max()) + 1
    if n_bins > n_ids:
        raise ValueError(f"n_bins={n_bins} is more than the {n_ids} identities in labels_true; pass n_bins={n_ids} "
                         "or fewer.")
    size = np.bincount(t, minlength=n_ids)
    first = np.arange(n_ids)  # factorize numbers identities by first appearance
    if by == "size":
        value = size.astype(np.float64)
        order = np.lexsort((first, -value))  # largest first: the last bin holds the smallest identities
    else:
        if X is None:
            raise ValueError("binned_f(by='sparsity') needs the features: pass X=<(n_samples, n_features) array>, "
                             "or use by='size'.")
        value = _sparsity_of_codes(X, t, n_ids)
        order = np.lexsort((first, value))  # densest first: the last bin holds the sparsest identities
    bin_of = np.empty(n_ids, np.int64)
    for b, members in enumerate(np.array_split(order, n_bins)):
        bin_of[members] = b
    sample_bin = bin_of[t]
    rows = []
    for b in range(n_bins):
        ids = np.flatnonzero(bin_of == b)
        keep = sample_bin == b
        c = _contingency(t[keep], p[keep])
        lo, hi = value[ids].min(), value[ids].max()
        rng = f"{int(lo)}-{int(hi)}" if by == "size" else f"{lo:.2f}-{hi:.2f}"
        rows.append((b + 1, rng, len(ids), int(keep.sum()), *_pairwise(c), *_bcubed(c)))
    table = pd.DataFrame(rows, columns=list(BINNED_COLUMNS))
    return table.astype({"bin": np.int64, "identities": np.int64, "samples": np.int64})
