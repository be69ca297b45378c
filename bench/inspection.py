"""Inspection benchmark: CAM, Grad-CAM and guided backprop time per image on a batch of 32 (skimage photos,
efficientnet_lite0), after one warm-up call. One result line per figure.

(Named inspection.py, not inspect.py: a script folder holding inspect.py shadows the standard library's
module for every script in it.)

Usage: python bench/inspection.py [--backbone efficientnet_lite0]
"""
import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from skimage import data  # noqa: E402

from kit import inspect as ins  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbone", default="efficientnet_lite0")
    args = ap.parse_args()
    photos = [data.coffee(), data.chelsea(), data.astronaut(), data.rocket()]
    batch = [np.roll(photos[i % 4], 7 * i, axis=1) for i in range(32)]
    for name, fn in (("CAM", ins.cam), ("Grad-CAM", ins.gradcam), ("guided backprop", ins.guided_backprop),
                     ("guided Grad-CAM", ins.guided_gradcam)):
        fn(batch, backbone=args.backbone)  # warm-up on the same batch shape (builds the model, sets up kernels)
        t = time.perf_counter()
        fn(batch, backbone=args.backbone)
        per = (time.perf_counter() - t) / len(batch) * 1000
        print(f"{name}, {args.backbone}, batch of 32 photos: {per:.0f} ms per image (incl. resizing maps and "
              f"overlays to the photo size)", flush=True)


if __name__ == "__main__":
    main()
