"""Face benchmarks on ../shared/data/faces_5celeb (93 tight 150x150 face crops, 5 people). One result line
per figure, all measured in the same run.

(a) detection time per photo and photos with a face: HOG (upsample 0, 1) and CNN/mmod (upsample 1)
(b) alignment and descriptor time per face; embedding time per photo, HOG pipeline vs CNN pipeline
(c) faces per second through kit.embed (no cache): one process vs all cores (a pool started by the call, and
    one reused from the previous call), the speed-up, when the first photo is done, and the largest descriptor
    difference; then photos/s of the same engine (kit.faces.map_photos) over 3 passes of the photos, where
    the pool's start-up weighs less, and the number of photos from which the pool pays for its start-up
(d) BCubed F (and clusters) per clustering method and threshold: crop_as_face, and HOG-detected faces
(e) the same on random subsets with 2, 3 and 5 photos per person (mean of 20 draws): how the defaults hold
    up when people have few photos

Usage: python bench/faces.py [--skip-cnn] [--workers N] [--pool-only]
"""
import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import kit  # noqa: E402
from kit import faces  # noqa: E402
from kit.metrics import bcubed_f  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "faces_5celeb" / "images"

SWEEP = {
    "agglomerative": [0.55, 0.6, 0.65, 0.7, 0.75, 0.8],
    "dlib_chinese_whispers": [0.5, 0.55, 0.6, 0.65, 0.7],
    "dbscan": [0.45, 0.5, 0.55, 0.6],
    "chinese_whispers": [0.88, 0.9, 0.92, 0.94],
    "leiden": [0.9, 0.92],
    "infomap": [0.9, 0.92],
}
SEEDED = {"dlib_chinese_whispers", "chinese_whispers", "leiden", "infomap"}


def line(label, value, unit="", note=""):
    print(f"{label}: {value}{unit}{'  ' + note if note else ''}", flush=True)


def timed(fn, items):
    t = time.perf_counter()
    out = [fn(x) for x in items]
    return out, (time.perf_counter() - t) / max(1, len(items))


def detection(images, detector, upsample):
    boxes, sec = timed(lambda im: faces.detect(im, detector, upsample), images)
    found = sum(len(b) > 0 for b in boxes)
    line(f"(a) {detector.upper()} upsample {upsample} detection", f"{sec * 1000:.1f}", " ms/photo",
         f"{found} of {len(images)} photos with a face")
    return boxes


def embedding(images, boxes, name):
    pairs = [(im, b[0]) for im, b in zip(images, boxes) if len(b)]
    chips, sec_align = timed(lambda p: faces.align(p[0], p[1]), pairs)
    _, sec_desc = timed(lambda c: faces.describe([c]), chips)
    line(f"(b) {name}: alignment", f"{sec_align * 1000:.1f}", " ms/face")
    line(f"(b) {name}: descriptor", f"{sec_desc * 1000:.1f}", " ms/face")
    return sec_align + sec_desc


def sweep(emb, name):
    y = np.asarray(emb.labels)
    for method, thresholds in SWEEP.items():
        for t in thresholds:
            seeds = range(5) if method in SEEDED else [0]
            runs = [faces.FaceClustering(method, threshold=t, random_state=s).fit(emb.vectors) for s in seeds]
            f = [faces.score(emb, r.labels_)["bcubed_f"] for r in runs]
            k = sorted({r.n_clusters_ for r in runs})
            spread = f" (min {min(f):.3f} over {len(f)} seeds)" if len(f) > 1 else ""
            line(f"(d) {name}: {method} threshold {t}", f"{np.mean(f):.3f}", " BCubed F",
                 f"clusters {k[0]}-{k[-1]}{spread}" if len(k) > 1 else f"clusters {k[0]}{spread}")
    auto = faces.FaceClustering().fit(emb.vectors)
    line(f"(d) {name}: method='auto' ({auto.method_} {auto.threshold_})",
         f"{faces.score(emb, auto.labels_)['bcubed_f']:.3f}", " BCubed F", f"clusters {auto.n_clusters_}")


def subsets(emb, name, per_person, draws=20):
    X, y = emb.vectors, np.asarray(emb.labels)
    candidates = [(m, faces.FACE_METHODS[m][1]) for m in
                  ("agglomerative", "dlib_chinese_whispers", "dbscan", "chinese_whispers", "leiden", "infomap")]
    candidates += [("agglomerative", 0.75), ("dlib_chinese_whispers", 0.5)]
    scores = {c: [] for c in candidates}
    for seed in range(draws):
        rng = np.random.default_rng(seed)
        idx = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per_person] for c in np.unique(y)])
        for method, t in candidates:
            lab = faces.cluster_faces(X[idx], method, threshold=t, random_state=seed)
            scores[(method, t)].append(bcubed_f(y[idx], lab, noise="singletons"))
    for (method, t), f in scores.items():
        line(f"(e) {name}, {per_person} photos per person: {method} threshold {t}", f"{np.mean(f):.3f}",
             " BCubed F", f"mean of {draws} draws, min {min(f):.3f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-cnn", action="store_true", help="leave out the (slow) CNN detector")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for 'all cores'")
    ap.add_argument("--pool-only", action="store_true", help="only (c): one process vs the process pool")
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA} is absent: the benchmark needs ../shared/data")
    if not faces.is_available():
        sys.exit(f"dlib or the face models are missing: {faces.INSTALL}")
    warnings.filterwarnings("ignore")
    os.environ.setdefault("KIT_HOME", tempfile.mkdtemp(prefix="kit-bench-"))
    imageset = kit.load_folder(DATA)
    line("photos", len(imageset), "", f"{len(set(imageset.labels))} people, cores {os.cpu_count()}, "
                                      f"load average {os.getloadavg()[0]:.1f} at start")
    images = [kit.read_image(p) for p in imageset.paths]
    faces.detect(images[0])  # load the models before timing
    faces.describe([faces.align(images[0], faces.whole_image_box(images[0])[0])])

    # (a, b) one process, photos decoded beforehand
    if not args.pool_only:
        detection(images, "hog", 0)
        hog_boxes = detection(images, "hog", 1)
        hog_embed = embedding(images, hog_boxes, "HOG faces")
        crop_embed = embedding(images, [faces.whole_image_box(im) for im in images], "crop_as_face")
        hog_detect = timed(lambda im: faces.detect(im, "hog", 1), images)[1]
        line("(b) embedding per photo, HOG pipeline (detect + align + describe)",
             f"{(hog_detect + hog_embed) * 1000:.0f}", " ms/photo")
        line("(b) embedding per photo, crop_as_face (align + describe)", f"{crop_embed * 1000:.0f}", " ms/photo")
        if not args.skip_cnn:
            faces.detect(images[0], "cnn", 1)
            cnn_boxes = detection(images, "cnn", 1)
            cnn_detect = timed(lambda im: faces.detect(im, "cnn", 1), images[:20])[1]
            cnn_embed = embedding(images, cnn_boxes, "CNN faces")
            line("(b) embedding per photo, CNN pipeline (detect + align + describe)",
                 f"{(cnn_detect + cnn_embed) * 1000:.0f}", " ms/photo")

    # (c) processes, through kit.embed without the cache; alternated twice, best of each (the machine is shared).
    # "cold": the pool's worker processes start in the call (faces.shutdown_pool() before it); "warm": a call
    # right after another, which reuses the idle workers (they stay faces.POOL_IDLE_SECONDS).
    spec = faces.backbone()

    def embed_run(workers):
        first = []
        t = time.perf_counter()
        emb = kit.embed(imageset, backbone=spec, use_cache=False, num_workers=workers,
                        progress=lambda d, n, s: first.append(time.perf_counter() - t) if d and not first else None)
        return time.perf_counter() - t, first[0] if first else float("nan"), emb

    runs = {"one": [], "cold": [], "warm": []}
    for _ in range(2):
        runs["one"].append(embed_run(1))
        faces.shutdown_pool()
        runs["cold"].append(embed_run(args.workers))
        runs["warm"].append(embed_run(args.workers))
    (t_one, first_one, one), (t_cold, first_cold, many), (t_warm, first_warm, _) = (
        min(runs[k], key=lambda r: r[0]) for k in ("one", "cold", "warm"))
    line("(c) faces/s, one process", f"{len(one) / t_one:.1f}", " faces/s",
         f"{t_one:.1f} s for {len(one)} faces of {len(imageset)} photos; first photo done after {first_one:.2f} s")
    line(f"(c) faces/s, {args.workers} processes started by the call", f"{len(many) / t_cold:.1f}", " faces/s",
         f"{t_cold:.1f} s; speed-up {t_one / t_cold:.2f}x; first photos done after {first_cold:.1f} s "
         f"(workers start: import the kit, load the models)")
    line(f"(c) faces/s, {args.workers} processes reused from the previous call", f"{len(many) / t_warm:.1f}",
         " faces/s", f"{t_warm:.1f} s; speed-up {t_one / t_warm:.2f}x; first photos done after {first_warm:.2f} s")
    line("(c) largest descriptor difference, processes vs one process",
         f"{np.abs(one.vectors - many.vectors).max():.1e}", "", f"same paths: {one.paths == many.paths}")
    # the same engine on 3 passes over the photos (279 photos), so the pool's start-up weighs less
    paths = imageset.paths * 3
    rate = {1: [], args.workers: []}
    for _ in range(2):
        for workers in rate:
            faces.shutdown_pool()
            stamps = []
            t = time.perf_counter()
            for _item in faces.map_photos(paths, faces.FaceSettings(), workers):
                stamps.append(time.perf_counter() - t)
            steady = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if stamps[-1] > stamps[0] else float("nan")
            rate[workers].append((len(paths) / stamps[-1], steady, stamps[0]))
    one_rate, many_rate = max(rate[1]), max(rate[args.workers])
    line(f"(c) photos/s over {len(paths)} photos, one process", f"{one_rate[0]:.1f}", " photos/s")
    line(f"(c) photos/s over {len(paths)} photos, {args.workers} processes started by the call",
         f"{many_rate[0]:.1f}", " photos/s",
         f"speed-up {many_rate[0] / one_rate[0]:.2f}x; after the first photo (start-up {many_rate[2]:.1f} s) "
         f"{many_rate[1]:.1f} vs {one_rate[1]:.1f} photos/s, {many_rate[1] / one_rate[1]:.2f}x")
    breakeven = many_rate[2] / (1 / one_rate[1] - 1 / many_rate[1]) if many_rate[1] > one_rate[1] else float("inf")
    line("(c) photos from which a pool started by the call is faster", f"{breakeven:.0f}", " photos",
         f"these photos; larger photos cost more each and reach it sooner (faces.POOL_MIN_PHOTOS = "
         f"{faces.POOL_MIN_PHOTOS})")
    line("(c) load average at the end", f"{os.getloadavg()[0]:.1f}", "",
         "other work on this shared machine slows (c); best of 2 alternated runs each")
    faces.shutdown_pool()
    if args.pool_only:
        return

    # (d, e) clustering
    crops = kit.embed(imageset, backbone=faces.backbone(crop_as_face=True))
    line("(d) HOG upsample 1 faces", len(many), "", f"{many.stats['no_face']} photos with no face found")
    for emb, name in ((crops, "crop_as_face"), (many, "HOG faces")):
        sweep(emb, name)
    for emb, name in ((crops, "crop_as_face"), (many, "HOG faces")):
        for m in (2, 3, 5):
            subsets(emb, name, m)


if __name__ == "__main__":
    main()
