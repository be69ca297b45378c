"""A label-free automatic clustering pipeline: ``auto(X)`` chooses the representation, the method and K from
internal criteria only (it never sees labels).

1. Representations: one array is one representation; a dict ``name -> array`` (several backbones' embeddings
   of the same photos) gives each block, L2-normalised, and their concatenation (blocks L2-normalised, then
   scaled by ``1/sqrt(blocks)`` so rows keep unit norm). ``center=True`` centres each block on the rows' mean
   before normalising (:func:`_centred`); ``representation=`` fixes one and skips the choice.
2. K: the consensus of ``kit.k.estimate`` on each representation (with its prediction-strength gate: no clear K
   means the data shows no clear structure); with several representations, the middle of their answers, so
   that every candidate is compared at the same K (stability favours small K whatever the representation).
3. Every candidate (representation x method at that K; Leiden's resolution is bisected to give K) is scored
   on two random halves of the rows, each clustered on its own: **stability** is the adjusted Rand index between a half's own
   clustering and the labels carried over from the other half (each row takes the majority label of its
   ``TRANSFER_NEIGHBORS`` nearest rows of the other half), averaged over both directions and ``n_splits``
   splits; **held-out silhouette** is the cosine silhouette of those carried-over labels on the half that
   did not produce them. Representations are compared by k-means' stability alone (silhouettes of different
   spaces are not on one scale; the concatenation is kept unless a block is more than ``CONCAT_TOLERANCE``
   more stable); the methods run on the chosen one.
4. On the chosen representation, the method with the highest ``score`` (stability + held-out silhouette) wins
   and is fitted on all rows.

``table`` lists every candidate with its scores; ``reason`` says in words why the winner won.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import pandas as pd

from .._utils.arrays import as_seed, check_X, l2_normalize
from .._utils.estimator import BaseClusterer
from .._utils.validation import Interval, InvalidParameterError, validate_params
from ..progress import report
from ._estimators import Agglomerative, Leiden
from ._registry import AUTO_MIN_ROWS, METHODS, make

#: Methods auto compares: those the registry marks ``auto_candidate`` (each run at every candidate K).
AUTO_METHODS = tuple(name for name, m in METHODS.items() if m.auto_candidate)
TRANSFER_NEIGHBORS = 10
AUTO_SCAN_PARAMS = {"n_heads": 3}  # fewer heads than SCAN's default: auto fits it on 2 halves per split
CONCAT = "concat"
# the concatenation holds every block's information: a single block wins only when clearly more stable. On
# clothing10 (lite0/1/2) the blocks' stabilities came within 0.01-0.04 of the concatenation's, in either order,
# from one seed to the next, while k-means on the concatenation gave NMI 0.62 against 0.57 for lite0 alone
CONCAT_TOLERANCE = 0.05


@dataclass
class AutoResult:
    """What ``auto`` chose.

    ``labels``: (N,) cluster of every row; ``k``: the number of clusters found; ``method``, ``representation``:
    the winner's names; ``clear``: whether ``kit.k.estimate`` found a clear K (False: no clear structure, the
    labels are a partition of convenience); ``table``: one row per candidate (a plain DataFrame:
    ``representation, method, k, stability, silhouette, score, seconds, chosen``); ``reason``: the choice in words;
    ``estimate``: the ``kit.k.estimate`` result on the chosen representation (its K, verdict and evidence), so that
    a report of "how many groups" shows the same answer as the clustering. From ``kit.cluster_photos`` also
    ``paths`` (the photo of each row of ``labels``) and ``unreadable`` (a DataFrame ``path, reason`` of the photos
    that could not be embedded); None from ``auto`` on arrays.
    """

    labels: np.ndarray
    k: int
    method: str
    representation: str
    clear: bool
    table: pd.DataFrame
    reason: str
    estimate: object = None
    paths: list | None = None
    unreadable: pd.DataFrame | None = None

    def __str__(self) -> str:
        return self.reason


def _centred(X: np.ndarray) -> np.ndarray:
    """Rows L2-normalised, the mean row subtracted, normalised again: cosine similarity around the photos' own
    mean. Every row of a network's pooled (non-negative) features shares one "generic photo" direction, which
    makes all cosines high and a few rows everybody's nearest neighbours (hubs); removing it is the classic
    remedy (Suzuki et al. 2013, "Centering similarity measures to reduce hubs"). Label-free: the mean of the
    rows given."""
    X = l2_normalize(X)
    return l2_normalize(X - X.mean(axis=0, keepdims=True))


def _representations(X, center=False) -> dict:
    norm = _centred if center else l2_normalize
    if isinstance(X, dict):
        if not X:
            raise ValueError("X is an empty dict; give one array or a dict name -> array with at least one entry")
        blocks = {str(name): norm(check_X(v, name=f"X[{name!r}]")) for name, v in X.items()}
        sizes = {name: len(v) for name, v in blocks.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"the arrays of X must have one row per photo each; got row counts {sizes}")
        if CONCAT in blocks:
            raise ValueError(f"X has a block named {CONCAT!r}, which auto uses for the concatenation; rename it")
        if len(blocks) > 1:
            blocks[CONCAT] = np.hstack(list(blocks.values())) / np.float32(np.sqrt(len(blocks)))
        return blocks
    return {"X": norm(check_X(X))}


def _estimator(method, k, seed, scan_params):
    """The estimator of ``method`` at ``k`` clusters: Leiden through its resolution (``_LeidenAtK``), SCAN with
    the auto settings, Ward for agglomerative, any other method that takes K from the registry."""
    if method == "leiden":
        return _LeidenAtK(k, random_state=seed)
    if method == "scan":
        from ._scan import SCAN

        return SCAN(k, random_state=seed, **{**AUTO_SCAN_PARAMS, **(scan_params or {})})
    if method == "agglomerative":
        return Agglomerative(k, linkage="ward")
    return make(method, n_clusters=k, random_state=seed)


class _LeidenAtK:
    """Leiden with its resolution bisected (log scale) until it finds ``k`` communities (or the closest count
    seen), so that every method is compared at the same K: stability favours small K whatever the method."""

    def __init__(self, k, random_state=0, iterations=12):
        self.k, self.random_state, self.iterations = int(k), random_state, iterations

    def fit(self, X):
        lo, hi = np.log(0.01), np.log(20.0)
        best = None
        for _ in range(self.iterations):
            mid = (lo + hi) / 2
            labels = Leiden(resolution=float(np.exp(mid)), random_state=self.random_state).fit(X).labels_
            found = len(np.unique(labels))
            if best is None or abs(found - self.k) < abs(best[0] - self.k):
                best = (found, labels, float(np.exp(mid)))
            if found == self.k:
                break
            lo, hi = (mid, hi) if found < self.k else (lo, mid)
        self.n_found_, self.labels_, self.resolution_ = best
        return self


def _transfer(X_from, labels_from, X_to):
    """Labels carried from one half to the other: majority label among the nearest rows of the first half."""
    import faiss

    k = min(TRANSFER_NEIGHBORS, len(X_from))
    index = faiss.IndexFlatIP(X_from.shape[1])
    index.add(np.ascontiguousarray(X_from))
    _, idx = index.search(np.ascontiguousarray(X_to), k)
    votes = labels_from[idx]
    n_labels = int(labels_from.max()) + 1
    counts = np.zeros((len(X_to), n_labels), np.int64)
    for j in range(k):
        np.add.at(counts, (np.arange(len(X_to)), votes[:, j]), 1)
    return counts.argmax(axis=1)


def _score_candidate(Xr, method, k, halves, seed, scan_params):
    from sklearn.metrics import adjusted_rand_score, silhouette_score

    stabilities, silhouettes, ks = [], [], []
    for split, (a, b) in enumerate(halves):
        fitted = [_estimator(method, k, seed + split, scan_params).fit(Xr[h]).labels_ for h in (a, b)]
        ks += [len(np.unique(f)) for f in fitted]
        for (src, dst), (lab_src, lab_dst) in (((a, b), fitted), ((b, a), fitted[::-1])):
            carried = _transfer(Xr[src], lab_src, Xr[dst])
            stabilities.append(adjusted_rand_score(lab_dst, carried))
            silhouettes.append(silhouette_score(Xr[dst], carried, metric="cosine")
                               if 1 < len(np.unique(carried)) < len(dst) else 0.0)
    return float(np.mean(stabilities)), float(np.mean(silhouettes)), int(round(np.median(ks)))


def _estimate_normalized(Xn, k_range, seed):
    from ..k import estimate

    return estimate(Xn, k_range=k_range, random_state=seed, n_bootstrap=2)


def estimate_k(X, k_range=(2, 20), random_state=0):
    """The K estimate :func:`auto` bases its K and its verdict on: ``kit.k.estimate`` on the L2-normalised rows,
    with 2 bootstrap runs. A report of "how many groups" that calls this gives the same answer as ``auto`` on the
    same rows (``AutoResult.estimate``).

    >>> estimate_k(X).k, estimate_k(X).clear          # doctest: +SKIP
    """
    return _estimate_normalized(l2_normalize(check_X(X)), k_range, as_seed(random_state))


def auto(X, *, methods=AUTO_METHODS, k_range=(2, 20), n_splits=2, scan_params=None, random_state=0,
         progress=None, center=False, representation=None) -> AutoResult:
    """Cluster without labels: choose the representation, the method and K from internal criteria.

    Parameters
    ----------
    X : (N, D) array, or dict name -> (N, D_name) array (several embeddings of the same rows)
    methods : names among ``AUTO_METHODS`` (kmeans, agglomerative (Ward), spectral, leiden, scan)
    k_range : (low, high), the K searched by ``kit.k.estimate``
    n_splits : int, random half splits per candidate (each costs two fits)
    scan_params : dict, parameters of ``kit.cluster.SCAN`` (over ``AUTO_SCAN_PARAMS``: 3 heads)
    random_state : int
    progress : callable ``progress(done, total, stage)`` or None (``kit.progress``)
    center : bool
        Subtract the rows' mean from every (L2-normalised) block before normalising it again: cosine around the
        photos' own mean, which removes the direction all pooled features share. ``kit.cluster_photos`` sets it:
        with Leiden on the concatenation it gained NMI on all four labelled sets of ``bench/quality.py``.
    representation : None, a name of ``X`` or ``"concat"``
        None: choose among the blocks and their concatenation by k-means' stability (step 1 below). A name: use
        that representation only (its own K estimate, no choice).

    Returns
    -------
    AutoResult

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> X, _ = make_blobs(300, n_features=8, centers=4, random_state=0)
    >>> auto(X, methods=("kmeans",), k_range=(2, 8)).k
    4
    """
    validate_params({"methods": [tuple, list], "k_range": [tuple, list], "n_splits": [Interval(Integral, 1, None,
                                                                                                closed="left")],
                     "scan_params": [dict, None], "random_state": [Interval(Integral, 0, 2**32 - 1, closed="both")],
                     "progress": [callable, None], "center": ["boolean"], "representation": [str, None]},
                    {"methods": methods, "k_range": k_range, "n_splits": n_splits, "scan_params": scan_params,
                     "random_state": random_state, "progress": progress, "center": center,
                     "representation": representation}, "auto")
    unknown = [m for m in methods if m not in AUTO_METHODS]
    if unknown or not methods:
        raise InvalidParameterError(f"The 'methods' parameter of auto must list names among {AUTO_METHODS}; "
                                    f"got {list(methods)!r}")

    reps = _representations(X, center=center)
    if representation is not None:
        if representation not in reps:
            raise InvalidParameterError(f"The 'representation' parameter of auto must be None or one of "
                                        f"{sorted(reps)}; got {representation!r}")
        reps = {representation: reps[representation]}
    n = len(next(iter(reps.values())))
    if n < AUTO_MIN_ROWS:
        raise ValueError(f"auto needs at least {AUTO_MIN_ROWS} rows to split them into halves and score candidates; "
                         f"X has {n}: choose a method and K by hand (e.g. kit.cluster.KMeans)")
    seed = as_seed(random_state)
    rng = np.random.default_rng(seed)
    halves = []
    for _ in range(int(n_splits)):
        perm = rng.permutation(n)
        halves.append((np.sort(perm[: n // 2]), np.sort(perm[n // 2:])))
    choose_rep = len(reps) > 1
    total = (2 if choose_rep else 1) * len(reps) + len(methods) + 1
    done = 0
    rows, estimates = [], {}
    # stage 1: K per representation; one K for all (the median answer), so that stability compares like with like
    ks = {}
    for name, Xr in reps.items():
        report(progress, done, total, f"estimating K on {name}")
        estimates[name] = est = _estimate_normalized(Xr, k_range, seed)
        ks[name] = int(est.k if est.k is not None else est.strength.detail["k_at_max"])
        done += 1
    k = sorted(ks.values())[(len(ks) - 1) // 2]
    k = max(2, min(k, n // 2 - 1))  # each half must hold more rows than clusters
    for name, Xr in reps.items() if choose_rep else ():
        report(progress, done, total, f"scoring k-means on {name}")
        t = time.perf_counter()
        stab, sil, _ = _score_candidate(Xr, "kmeans", k, halves, seed, scan_params)
        rows.append(dict(stage="representation", representation=name, method="kmeans", k=k,
                         clear=estimates[name].clear, stability=stab, silhouette=sil, seconds=time.perf_counter() - t))
        done += 1
    # by stability alone: silhouettes of different spaces are not on one scale (the concatenation averages
    # three cosine distances, which shrinks its silhouette)
    if choose_rep:
        stage1 = pd.DataFrame(rows)
        best_rep = str(stage1.loc[stage1["stability"].idxmax(), "representation"])
        if CONCAT in reps and stage1.loc[stage1["representation"] == CONCAT, "stability"].item() >= (
                stage1["stability"].max() - CONCAT_TOLERANCE):
            best_rep = CONCAT
    else:
        best_rep = next(iter(reps))
    est = estimates[best_rep]
    Xr = reps[best_rep]
    # stage 2: the methods on that representation
    for method in methods:
        report(progress, done, total, f"scoring {method} on {best_rep}")
        if method == "kmeans" and choose_rep:
            done += 1
            continue  # scored in stage 1
        t = time.perf_counter()
        stab, sil, k_found = _score_candidate(Xr, method, k, halves, seed, scan_params)
        rows.append(dict(stage="method", representation=best_rep, method=method, k=k_found,
                         clear=est.clear, stability=stab, silhouette=sil, seconds=time.perf_counter() - t))
        done += 1
    table = pd.DataFrame(rows, columns=["stage", "representation", "method", "k", "clear", "stability", "silhouette",
                                        "seconds"])
    table["score"] = table["stability"] + table["silhouette"]
    on_rep = table[(table["representation"] == best_rep) & table["method"].isin(list(methods))]
    win = on_rep["score"].idxmax()
    method = str(table.loc[win, "method"])
    table["chosen"] = table.index == win
    table = table[["stage", "representation", "method", "k", "clear", "stability", "silhouette", "score", "seconds",
                   "chosen"]].reset_index(drop=True)
    report(progress, done, total, f"fitting {method} on all rows")
    labels = _estimator(method, k, seed, scan_params).fit(Xr).labels_
    report(progress, total, total, "done")
    k_found = int(len(np.unique(labels[labels >= 0])))
    row = table.loc[table["chosen"]].iloc[0]
    scores = f"stability + held-out silhouette {row['stability']:.2f} + {row['silhouette']:.2f}"
    reason = (f"{method} on {best_rep} with K={k_found}: " +
              (f"highest {scores} of the {len(on_rep)} methods tried on {best_rep}" if len(on_rep) > 1
               else f"the one method asked for ({scores})"))
    if center:
        reason += "; every block centred on the rows' mean"
    if len(reps) > 1:
        reason += (f"; {best_rep} was chosen among the {len(reps)} representations by k-means' stability at K={k}, the "
                   f"middle of their kit.k.estimate answers ({', '.join(f'{n} {v}' for n, v in ks.items())})")
    reason += f"; kit.k.estimate on {best_rep}: {est.verdict}"
    if not est.clear:
        reason += ". No clear structure: prediction strength or the K estimators do not support any K, so treat " \
                  "these clusters as an arbitrary partition"
    return AutoResult(labels=labels, k=k_found, method=method, representation=best_rep, clear=bool(est.clear),
                      table=table, reason=reason, estimate=est)


class Auto(BaseClusterer):
    """:func:`auto` as a clustering estimator (``kit.cluster.make("auto")``, the dashboard's "Automatic"):
    ``fit(X)`` sets ``labels_`` and ``result_`` (the :class:`AutoResult`, with its table and reason).

    The default ``methods`` leave out ``"scan"``, which makes a run several times slower (measured on the 500
    built-in photos: 3.7 s without it, 12.9 s with it, same choice).
    """

    _parameter_constraints = {"methods": [tuple, list], "k_range": [tuple, list],
                              "n_splits": [Interval(Integral, 1, None, closed="left")],
                              "random_state": [Interval(Integral, 0, 2**32 - 1, closed="both")]}

    def __init__(self, *, methods=("kmeans", "agglomerative", "spectral", "leiden"), k_range=(2, 20), n_splits=2,
                 random_state=0):
        self.methods = methods
        self.k_range = k_range
        self.n_splits = n_splits
        self.random_state = random_state

    def fit(self, X, y=None, progress=None):
        self._validate_params()
        self.result_ = auto(X, methods=tuple(self.methods), k_range=tuple(self.k_range), n_splits=self.n_splits,
                            random_state=self.random_state, progress=progress)
        self.labels_ = np.asarray(self.result_.labels, dtype=np.int64)
        return self
