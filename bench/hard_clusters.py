"""Hard clusters (issue 29): F-scores, overall and by the paper's five bins of identities (by size, by sparsity),
of HardClusters and four other methods, then time and peak memory of HardClusters at scale. One result line per
figure, all measured in the same run.

(a) on generated MS1M-like identities (kit.datasets.synthetic_identities, --quality-size rows x 256, default
    10,000; defaults of the generator, or --center-dim and --spread for more crowded, sparser identities):
    pairwise and BCubed F of
    - hard_clusters: the registry's defaults (k 80, tau 0.7, sigma "auto": half the data's median neighbour
      distance, approximate NDDe, TPDi), then sigma "auto" and the paper's sigma 0.05 (meant for learned
      similarities; raw cosine distances are larger) with tau swept;
    - the density-peak baseline on cosine: HardClusters(distance="cosine") (the same approximate NDDe density and
      links, plain cosine distance), tau swept; and the classic one, HardClusters(distance="cosine",
      density="count") (neighbours within count_radius 0.64; 0.06 on faces);
    - Chinese Whispers (the registry's: k 20, automatic threshold), Leiden (k 15, resolution 1.0);
    - average linkage on cosine distances (scipy), cut at several distances.
    Swept methods print the overall F of every value, then the bins of their best value (best overall pairwise
    F: an oracle choice, as in the paper's tau sweep). Bins: ``kit.metrics.binned_f``, bin 5 the smallest
    (by size) or the sparsest (by sparsity) identities.
(b) the same on faces_5celeb (93 face crops of 5 people; dlib descriptors through kit.faces, crop_as_face as in
    bench/faces.py); skipped with the reason when the photos or dlib are absent.
(d) the learned pair similarity (kit.cluster.PairSimilarity, trained on other generated identities): best
    pairwise F of HardClusters with and without it on three plain and three crowded generated sets.
(c) scale: for each of --sizes (default 100,000 and 584,000 x 256, the size of MS1M part1_test), in a fresh
    process: seconds to generate, seconds of HardClusters().fit (its kNN is faiss HNSW above 20,000
    rows), peak RSS of that process (VmHWM), clusters and F-scores; targets at 584,000: < 600 s and < 8 GB on
    2 cores. A size that passes --timeout seconds is reported as such.

Usage: python bench/hard_clusters.py [--quality-size 10000] [--center-dim D] [--spread LO,HI]
                                     [--sizes 100000,584000] [--timeout 1800] [--skip-faces] [--skip-quality]
"""
import argparse
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from kit import metrics  # noqa: E402
from kit.cluster import HardClusters, make  # noqa: E402
from kit.datasets import synthetic_identities  # noqa: E402

FACES = ROOT.parent / "shared" / "data" / "faces_5celeb" / "images"


def grids(faces: bool) -> dict:
    """Method -> [(value, estimator)]: the values swept. dlib descriptors are close in cosine (people 0.04 to 0.08
    apart on average within, little more between), so the faces' cosine cuts are smaller; their HardClusters
    and density-peak runs take k 10 (the 93 faces are 5 people of 14 to 22)."""
    hc = {"k": 10} if faces else {}
    cosine_taus = (0.02, 0.04, 0.06, 0.08, 0.1) if faces else (0.3, 0.4, 0.5, 0.6, 0.7)
    out = {
        "hard_clusters defaults" + (" (k 10)" if faces else ""): [("tau 0.7", make("hard_clusters", **hc))],
        "hard_clusters sigma auto": [(f"tau {t}", HardClusters(tau=t, **hc)) for t in (0.6, 0.7, 0.8, 0.9)],
        "hard_clusters sigma 0.05 (the paper's)": [(f"tau {t}", HardClusters(sigma=0.05, tau=t, **hc))
                                                   for t in (0.3, 0.5, 0.7, 0.9)],
        "density-peak cosine": [(f"tau {t}", HardClusters(distance="cosine", tau=t, **hc)) for t in cosine_taus],
        "density-peak cosine, count density": [
            (f"tau {t}", HardClusters(distance="cosine", density="count", tau=t,
                                      count_radius=0.06 if faces else 0.64, **hc)) for t in cosine_taus[1:4]],
        "chinese_whispers": [("threshold auto", make("chinese_whispers", random_state=0))],
        "leiden": [("resolution 1.0", make("leiden", random_state=0))],
    }
    return out


def average_cuts(faces: bool):
    return (0.04, 0.06, 0.08, 0.1, 0.12) if faces else (0.3, 0.4, 0.5, 0.6, 0.7)


def line(label, value, note=""):
    print(f"{label}: {value}{'  ' + note if note else ''}", flush=True)


def peak_rss_gb() -> float:
    with open("/proc/self/status") as f:
        for row in f:
            if row.startswith("VmHWM:"):
                return int(row.split()[1]) / 1024 ** 2  # kB
    return float("nan")


def overall(y, labels) -> str:
    p, r, f = metrics.pairwise_precision_recall_f(y, labels)
    bp, br, bf = metrics.bcubed_precision_recall_f(y, labels)
    return (f"pairwise F {f:.3f} (P {p:.3f}, R {r:.3f}), BCubed F {bf:.3f} (P {bp:.3f}, R {br:.3f}), "
            f"{len(np.unique(labels))} clusters for {len(np.unique(y))} identities")


def binned(prefix, X, y, labels, n_bins):
    for by in ("size", "sparsity"):
        table = metrics.binned_f(y, labels, by=by, X=X, n_bins=n_bins)
        for row in table.itertuples():
            line(f"{prefix} {by} bin {row.bin} ({by} {row.range})",
                 f"pairwise F {row.pairwise_f:.3f} (R {row.pairwise_recall:.3f}), BCubed F {row.bcubed_f:.3f} "
                 f"(R {row.bcubed_recall:.3f})", f"{row.identities} identities, {row.samples} samples")


def average_linkage(X, cuts):
    from scipy.cluster.hierarchy import fcluster, linkage

    tree = linkage(X.astype(np.float64), method="average", metric="cosine")
    return {t: fcluster(tree, t, criterion="distance") - 1 for t in cuts}


def methods(X, y, name, n_bins, faces=False):
    """Every method on (X, y): overall F per value swept, then the bins of the best value."""
    runs = {}  # method -> {value: labels}
    timing = {}

    def fit(label, value, est):
        t = time.perf_counter()
        runs.setdefault(label, {})[value] = est.fit(X).labels_
        timing[label] = timing.get(label, 0.0) + time.perf_counter() - t

    for method, values in grids(faces).items():
        for value, est in values:
            fit(method, value, est)
    t = time.perf_counter()
    runs["average linkage cosine"] = {f"cut {c}": lab for c, lab in average_linkage(X, average_cuts(faces)).items()}
    timing["average linkage cosine"] = time.perf_counter() - t
    for method, by_value in runs.items():
        for value, labels in by_value.items():
            line(f"({name}) {method} {value}", overall(y, labels))
        best = max(by_value, key=lambda v: metrics.pairwise_f(y, by_value[v]))
        if len(by_value) > 1:
            line(f"({name}) {method} best", best, f"{timing[method]:.1f} s for {len(by_value)} runs")
        else:
            line(f"({name}) {method} time", f"{timing[method]:.1f} s")
        binned(f"({name}) {method} {best}", X, y, by_value[best], n_bins)


def faces_part():
    from kit import faces

    if not FACES.is_dir():
        line("(b) faces_5celeb", "skipped", f"{FACES} is absent")
        return
    if not faces.is_available():
        line("(b) faces_5celeb", "skipped", f"dlib or the face models are missing: {faces.INSTALL}")
        return
    import tempfile

    import kit

    os.environ.setdefault("KIT_HOME", tempfile.mkdtemp(prefix="kit-bench-"))
    emb = kit.embed(kit.load_folder(FACES), backbone=faces.backbone(crop_as_face=True))
    X = np.asarray(emb.vectors, np.float32)
    y = np.asarray(emb.labels)
    line("(b) faces_5celeb dlib descriptors", f"{len(X)} faces x {X.shape[1]}", f"{len(set(y))} people")
    methods(X, y, "b faces_5celeb", n_bins=5, faces=True)


def one_size(n: int):
    """(c) in this process: generate, fit, print one line."""
    t = time.perf_counter()
    X, y = synthetic_identities(n, 256, random_state=0)
    generate = time.perf_counter() - t
    after_generate = peak_rss_gb()
    t = time.perf_counter()
    labels = HardClusters().fit(X).labels_
    fit = time.perf_counter() - t
    peak = peak_rss_gb()
    sparsest = metrics.binned_f(y, labels, by="sparsity", X=X).iloc[-1]
    smallest = metrics.binned_f(y, labels, by="size").iloc[-1]
    line(f"(c) HardClusters().fit {n} x 256", f"{fit:.1f} s",
         f"peak RSS {peak:.2f} GB ({after_generate:.2f} GB after generating the data in {generate:.1f} s); "
         f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}; {overall(y, labels)}; sparsest bin "
         f"pairwise F {sparsest.pairwise_f:.3f}, smallest bin {smallest.pairwise_f:.3f} (targets at 584,000: "
         f"< 600 s, < 8 GB)")


def similarity_part():
    """(d) the learned pair similarity: trained on 6,000 generated rows of identities of their own
    (random_state 100), then HardClusters with and without it on three other generated sets, plain and crowded,
    each at its best tau of 0.6 / 0.7 / 0.8 (pairwise F)."""
    from kit.cluster import PairSimilarity

    for label, options in (("plain", {}), ("crowded", {"center_dim": 10, "spread": (0.2, 0.7)})):
        t = time.perf_counter()
        Xt, yt = synthetic_identities(6000, 256, random_state=100, **options)
        sim = PairSimilarity(k=20).fit(Xt, yt)
        train = time.perf_counter() - t
        without, with_ = [], []
        for seed in (0, 1, 2):
            X, y = synthetic_identities(6000, 256, random_state=seed, **options)
            without.append(max(metrics.pairwise_f(y, HardClusters(tau=t).fit(X).labels_) for t in (0.6, 0.7, 0.8)))
            with_.append(max(metrics.pairwise_f(y, HardClusters(tau=t, similarity=sim).fit(X).labels_)
                             for t in (0.6, 0.7, 0.8)))
        line(f"(d {label}) learned pair similarity", f"pairwise F {np.mean(with_):.3f} with, {np.mean(without):.3f} "
             f"without", f"seeds 0-2: {' '.join(f'{a:.3f}' for a in with_)} against "
             f"{' '.join(f'{b:.3f}' for b in without)}; trained in {train:.1f} s (final loss {sim.history_[-1]:.3f}); "
             f"{'helps' if np.mean(with_) > np.mean(without) + 0.01 else 'does not help'}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quality-size", type=int, default=10_000, help="rows of the generated set of (a)")
    ap.add_argument("--sizes", default="100000,584000", help="comma-separated rows of (c); empty: skip (c)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds allowed to each size of (c)")
    ap.add_argument("--center-dim", type=int, default=None, help="synthetic_identities(center_dim=) of (a)")
    ap.add_argument("--spread", default=None, help="synthetic_identities(spread=) of (a), e.g. 0.2,0.7")
    ap.add_argument("--skip-faces", action="store_true", help="leave out (b)")
    ap.add_argument("--skip-quality", action="store_true", help="leave out (a), (b) and (d)")
    ap.add_argument("--one-size", type=int, help=argparse.SUPPRESS)  # (c) runs each size in a fresh process
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    if args.one_size:
        one_size(args.one_size)
        return
    line("machine", f"{os.cpu_count()} cores", f"load average {os.getloadavg()[0]:.1f} at start")
    if not args.skip_quality:
        options = {"center_dim": args.center_dim}
        if args.spread:
            options["spread"] = tuple(float(v) for v in args.spread.split(","))
        X, y = synthetic_identities(args.quality_size, 256, random_state=0, **options)
        sizes = np.bincount(y)
        line("(a) generated identities", f"{len(X)} x 256, {len(sizes)} identities",
             f"sizes {sizes.min()}-{sizes.max()} (median {np.median(sizes):.0f}), synthetic_identities "
             f"{options if args.spread or args.center_dim else 'defaults'}, random_state 0")
        methods(X, y, "a synthetic", n_bins=5)
        if not args.skip_faces:
            faces_part()
        similarity_part()
    for n in [int(s) for s in args.sizes.split(",") if s.strip()]:
        try:
            out = subprocess.run([sys.executable, __file__, "--one-size", str(n)], capture_output=True, text=True,
                                 timeout=args.timeout)
        except subprocess.TimeoutExpired:
            line(f"(c) HardClusters().fit {n} x 256", "timed out", f"more than {args.timeout:.0f} s")
            continue
        print(out.stdout, end="", flush=True)
        if out.returncode:
            line(f"(c) HardClusters().fit {n} x 256", "failed",
                 f"exit {out.returncode}: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else ''}")


if __name__ == "__main__":
    main()
