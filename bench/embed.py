"""Embedding benchmarks on ../shared/data/clothing10 (1,485 JPEGs). One result line per figure.

(a) model-only throughput, batch 32, preprocessed tensors     (b) end-to-end from JPEG files, no cache
(c) ratio b/a, target >= 0.85                                 (d) naive sequential baseline and our speed-up
(e) fully cached call in a warm process, target < 2 s         (f) peak RSS, target < 3 GB
(g) TFLite interpreter (XNNPACK) on the same model: throughput and cosine to the SavedModel

Usage: python bench/embed.py [--backbone efficientnet_lite0] [--tflite]
"""
import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

import kit  # noqa: E402
from kit import backbones  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "clothing10" / "images"


def line(label, value, unit="", note=""):
    print(f"{label}: {value}{unit}{'  ' + note if note else ''}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbone", default="efficientnet_lite0")
    ap.add_argument("--tflite", action="store_true", help="also measure the TFLite interpreter")
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA} is absent: the benchmark needs ../shared/data")
    os.environ.setdefault("KIT_HOME", tempfile.mkdtemp(prefix="kit-bench-"))
    images = kit.load_folder(DATA)
    n = len(images)
    model = backbones.load(args.backbone)
    size = model.input_size
    bs = 32

    # (a) model only, on preprocessed tensors (decoded once beforehand)
    x_all = np.stack([kit.read_image(p, size=size) for p in images.paths[:256]]).astype(np.float32) / 255
    model.features(x_all[:bs])  # warm-up
    t = time.perf_counter()
    for i in range(0, len(x_all), bs):
        model.features(x_all[i:i + bs])
    a = len(x_all) / (time.perf_counter() - t)
    line(f"(a) model-only throughput, {args.backbone}, batch {bs}", f"{a:.1f}", " img/s")

    # (b) end to end from files, no cache
    t = time.perf_counter()
    emb = kit.embed(images, backbone=args.backbone, use_cache=False, batch_size=bs)
    b = n / (time.perf_counter() - t)
    line(f"(b) end-to-end throughput from {n} JPEGs (decode+resize+model)", f"{b:.1f}", " img/s")
    line("(c) ratio b/a (target >= 0.85)", f"{b / a:.2f}")

    # (d) naive sequential: full-size decode, then predict, one batch at a time, no overlap
    def naive_read(p):
        im = ImageOps.exif_transpose(Image.open(p)).convert("RGB")
        w, h = im.size
        s = min(w, h)
        im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)).resize((size, size))
        return np.asarray(im, np.float32) / 255

    t = time.perf_counter()
    for i in range(0, n, bs):
        model.features(np.stack([naive_read(p) for p in images.paths[i:i + bs]]))
    d = n / (time.perf_counter() - t)
    line("(d) naive sequential decode-then-predict", f"{d:.1f}", " img/s", f"speed-up of (b): {b / d:.2f}x")

    # (e) fully cached call in a warm process
    cache_dir = Path(os.environ["KIT_HOME"]) / "bench-cache"
    kit.embed(images, backbone=args.backbone, cache_dir=cache_dir)
    t = time.perf_counter()
    cached = kit.embed(kit.load_folder(DATA), backbone=args.backbone, cache_dir=cache_dir)
    e = time.perf_counter() - t
    assert cached.stats["computed"] == 0
    line(f"(e) fully cached call over {n} files, warm process (target < 2 s)", f"{e:.2f}", " s",
         "(includes listing, probing and hashing the folder)")

    if args.tflite:
        import tensorflow as tf

        feat_dir = backbones._ensure_builtin(args.backbone) / "features"
        conv = tf.lite.TFLiteConverter.from_saved_model(str(feat_dir))
        tfl = conv.convert()
        interp = tf.lite.Interpreter(model_content=tfl, num_threads=os.cpu_count())
        inp = interp.get_input_details()[0]
        interp.resize_tensor_input(inp["index"], [bs, size, size, 3])
        interp.allocate_tensors()
        out = interp.get_output_details()[0]

        def run(x):
            interp.set_tensor(inp["index"], x)
            interp.invoke()
            return interp.get_tensor(out["index"]).copy()

        run(x_all[:bs])
        t = time.perf_counter()
        outs = [run(x_all[i:i + bs]) for i in range(0, len(x_all) - bs + 1, bs)]
        g = (len(outs) * bs) / (time.perf_counter() - t)
        ref = np.concatenate([model.features(x_all[i:i + bs]) for i in range(0, len(outs) * bs, bs)])
        got = np.concatenate(outs)
        cos = (ref * got).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(got, axis=1)
        line("(g) TFLite interpreter (XNNPACK) model-only throughput", f"{g:.1f}", " img/s",
             f"vs SavedModel {a:.1f} img/s; min cosine {cos.min():.6f}")

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    line("(f) peak RSS (target < 3 GB)", f"{rss:.2f}", " GB")


if __name__ == "__main__":
    main()
