"""Curation benchmarks: near-duplicate precision and recall behind ``kit.curate.NEAR_DUPLICATE_THRESHOLD``.

Near-copies (half size, JPEG quality 30, 90% crop) of 60 photos are mixed with 500 photos of a set, on the built-in
clothing photos and on every labelled set of ``../shared/data`` when it is there (clothing10, imagenette10, scenes6,
faces_5celeb); one line per set and threshold: pairs found, precision, recall; then the threshold a default needs
for a precision of at least 0.99 on every set (precision first: a suggested drop must be a real near-copy). Then the
time of near_duplicates and outlier_scores.

Usage: python bench/curate.py [--backbone efficientnet_lite0]
"""
import argparse
import io
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import kit  # noqa: E402
from kit import curate  # noqa: E402


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
THRESHOLDS = (0.84, 0.86, 0.88, 0.90, 0.92, 0.94, 0.96)


def _near_copies(photos, root, n=60):
    """Copy up to 500 of ``photos`` into ``root`` and add near-copies of ``n`` of them; the true pairs."""
    photos = random.Random(0).sample(photos, min(500, len(photos)))
    pairs = []
    for i, p in enumerate(photos):
        (root / p.parent.name).mkdir(exist_ok=True)
        shutil.copy(p, root / p.parent.name / p.name)
        if i >= n:
            continue
        im = Image.open(p).convert("RGB")
        w, h = im.size
        how = ("resize", "jpeg", "crop")[i % 3]
        if how == "resize":
            copy = im.resize((w // 2, h // 2), Image.Resampling.BICUBIC)
        elif how == "jpeg":
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=30)
            copy = Image.open(buf)
        else:
            copy = im.crop((w // 20, h // 20, w - w // 20, h - h // 20))
        target = root / p.parent.name / f"copy_{how}_{p.stem}.jpg"
        copy.save(target, "JPEG", quality=30 if how == "jpeg" else 90)
        pairs.append(frozenset((str(root / p.parent.name / p.name), str(target))))
    return set(pairs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbone", default="efficientnet_lite0")
    args = ap.parse_args()
    sets = {"builtin": sorted(Path(kit.datasets.clothing()).glob("*/*.jpg"))}
    for name in ("clothing10", "imagenette10", "scenes6", "faces_5celeb"):
        if (SHARED / name / "images").is_dir():
            sets[name] = sorted(p for p in (SHARED / name / "images").glob("*/*") if p.suffix.lower() in
                                (".jpg", ".jpeg", ".png"))
    worst = {t: 1.0 for t in THRESHOLDS}
    for name, photos in sets.items():
        root = Path(tempfile.mkdtemp(prefix="kit-bench-curate-"))
        truth = _near_copies(photos, root, n=min(60, len(photos) // 3))
        emb = kit.embed(kit.load_folder(root), backbone=args.backbone, use_cache=False)
        for t in THRESHOLDS:
            table = curate.near_duplicates(emb, threshold=t)
            found = {frozenset((a, b)) for _, m in table.groupby("group").path for a in m for b in m if a < b}
            tp = len(found & truth)
            precision = tp / len(found) if found else 1.0
            worst[t] = min(worst[t], precision)
            mark = "  <- default" if t == curate.NEAR_DUPLICATE_THRESHOLD else ""
            print(f"near-duplicates {args.backbone} {name} threshold {t:.2f}: {len(found)} pairs, precision "
                  f"{precision:.3f}, recall {tp / len(truth):.3f}{mark}", flush=True)
        if name == "builtin":
            t0 = time.perf_counter()
            curate.near_duplicates(emb)
            t1 = time.perf_counter()
            curate.outlier_scores(emb.vectors, kit.cluster.KMeans(10, random_state=0).fit(emb.vectors).labels_)
            t2 = time.perf_counter()
            print(f"near_duplicates on {len(emb)} photos: {t1 - t0:.2f} s; outlier_scores (with k-means): "
                  f"{t2 - t1:.2f} s", flush=True)
        shutil.rmtree(root)  # made by this script (mkdtemp above)
    ok = [t for t in THRESHOLDS if worst[t] >= 0.99]
    print(f"near-duplicates {args.backbone}: lowest threshold with precision >= 0.99 on all {len(sets)} sets: "
          f"{min(ok) if ok else 'none'} (worst precision per threshold: "
          f"{', '.join(f'{t:.2f} {worst[t]:.3f}' for t in THRESHOLDS)}; default "
          f"{curate.NEAR_DUPLICATE_THRESHOLD})", flush=True)


main()
