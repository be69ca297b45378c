"""Curation benchmarks: near-duplicate precision and recall behind ``kit.curate.NEAR_DUPLICATE_THRESHOLD``.

Near-copies (half size, JPEG quality 30, 90% crop) of 60 of the built-in clothing photos are mixed with all 500;
one line per threshold: pairs found, precision, recall. Then the time of near_duplicates and outlier_scores.

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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbone", default="efficientnet_lite0")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="kit-bench-curate-"))
    paths = sorted(Path(kit.datasets.clothing()).glob("*/*.jpg"))
    for p in paths:
        (root / p.parent.name).mkdir(exist_ok=True)
        shutil.copy(p, root / p.parent.name / p.name)
    pairs = []
    for i, p in enumerate(random.Random(0).sample(paths, 60)):
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
        target = root / p.parent.name / f"copy_{how}_{p.name}"
        copy.save(target, "JPEG", quality=30 if how == "jpeg" else 90)
        pairs.append(frozenset((str(root / p.parent.name / p.name), str(target))))
    emb = kit.embed(kit.load_folder(root), backbone=args.backbone, use_cache=False)
    truth = set(pairs)
    for t in (0.84, 0.86, 0.88, 0.90, 0.92):
        table = curate.near_duplicates(emb, threshold=t)
        found = {frozenset((a, b)) for _, m in table.groupby("group").path for a in m for b in m if a < b}
        tp = len(found & truth)
        mark = "  <- default" if t == curate.NEAR_DUPLICATE_THRESHOLD else ""
        print(f"near-duplicates {args.backbone} threshold {t:.2f}: {len(found)} pairs, precision "
              f"{tp / max(len(found), 1):.3f}, recall {tp / len(truth):.3f}{mark}", flush=True)
    t0 = time.perf_counter()
    curate.near_duplicates(emb)
    t1 = time.perf_counter()
    curate.outlier_scores(emb.vectors, kit.cluster.KMeans(10, random_state=0).fit(emb.vectors).labels_)
    t2 = time.perf_counter()
    print(f"near_duplicates on {len(emb)} photos: {t1 - t0:.2f} s; outlier_scores (with k-means): {t2 - t1:.2f} s")
    shutil.rmtree(root)  # made by this script (mkdtemp above)


main()
