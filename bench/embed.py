"""Embedding benchmarks on ../shared/data/clothing10 (1,485 JPEGs). One result line per figure.

(a) model-only throughput of each runtime (SavedModel, TFLite/XNNPACK), batch 32, preprocessed tensors, and the
    runtime kit.backbones._runtime chose for this machine
(b) end-to-end from JPEG files through kit.embed(..., use_cache=False) (decode + resize + chosen runtime)
(c) ratio b / a of the chosen runtime, target >= 0.85
(d) float32 GEMM GFLOP/s of this machine measured in the same run, and img/s as a share of that ceiling
    (EfficientNet-Lite0 costs about 0.77 GFLOP per image: ceiling = GFLOP/s / 0.77), goal >= 50%
(e) naive sequential baseline and our speed-up       (f) fully cached call in a warm process, target < 2 s
(g) peak RSS, target < 3 GB

KIT_HOME defaults to a new temporary folder, so the SavedModel export, TFLite conversion and runtime probe run
fresh; set KIT_HOME (and KIT_RUNTIME) to measure an existing setup.

Usage: python bench/embed.py [--backbone efficientnet_lite0]
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

DATA = ROOT.parent / "shared" / "data" / "clothing10" / "images"
GFLOP_PER_IMAGE = {"efficientnet_lite0": 0.77, "efficientnet_lite1": 1.20, "efficientnet_lite2": 1.72}
BS = 32


def line(label, value, unit="", note=""):
    print(f"{label}: {value}{unit}{'  ' + note if note else ''}", flush=True)


def gemm_gflops(n=2048, repeats=7):
    """Best-of-``repeats`` float32 GFLOP/s of an n x n matmul (numpy's BLAS, all cores)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # warm-up
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbone", default="efficientnet_lite0", choices=sorted(GFLOP_PER_IMAGE))
    args = ap.parse_args()
    name = args.backbone
    if not DATA.is_dir():
        sys.exit(f"{DATA} is absent: the benchmark needs ../shared/data")
    os.environ.setdefault("KIT_HOME", tempfile.mkdtemp(prefix="kit-bench-"))

    import kit
    from kit import backbones
    from kit.backbones import _runtime

    images = kit.load_folder(DATA)
    n = len(images)
    model = backbones.load(name)
    size = model.input_size
    model_dir = backbones.builtin_folder(name)

    # (a) model only, on preprocessed tensors (decoded once beforehand); the runtimes take turns batch by batch
    x_all = np.stack([kit.read_image(p, size=size) for p in images.paths[:256]]).astype(np.float32) / 255
    choice = _runtime.probe(name, model_dir)
    runs = {rt: _runtime.features_fn(name, model_dir, runtime=rt) for rt in _runtime.RUNTIMES}
    for fn in runs.values():
        fn(x_all[:BS])  # warm-up
    spent = dict.fromkeys(runs, 0.0)
    outs = {rt: [] for rt in runs}
    for k, i in enumerate(range(0, len(x_all), BS)):
        for rt in (list(runs) if k % 2 == 0 else list(runs)[::-1]):
            t = time.perf_counter()
            outs[rt].append(runs[rt](x_all[i:i + BS]))
            spent[rt] += time.perf_counter() - t
    speed = {rt: len(x_all) / spent[rt] for rt in runs}
    ref, got = np.concatenate(outs["savedmodel"]), np.concatenate(outs["tflite"])
    cos = (ref * got).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(got, axis=1)
    line(f"(a) model-only throughput, {name}, savedmodel (tensorflow_hub.load), batch {BS}",
         f"{speed['savedmodel']:.1f}", " img/s")
    line(f"(a) model-only throughput, {name}, tflite (ai-edge-litert, XNNPACK, {os.cpu_count()} threads), batch {BS}",
         f"{speed['tflite']:.1f}", " img/s", f"min cosine to savedmodel on {len(x_all)} photos {cos.min():.7f}")
    requested = _runtime.requested_runtime()
    chosen = choice.runtime if requested == "auto" else requested
    line("(a) chosen runtime", chosen,
         note=f"(KIT_RUNTIME={requested}; probe: {choice.reason})" if requested == "auto"
         else f"(forced by KIT_RUNTIME; probe would pick {choice.runtime})")
    del runs, outs

    # (b) end to end from files, no cache
    t = time.perf_counter()
    kit.embed(images, backbone=name, use_cache=False, batch_size=BS)
    b = n / (time.perf_counter() - t)
    used = getattr(getattr(model, "_features", None), "runtime", None)  # diagnostic only
    line(f"(b) end-to-end throughput from {n} JPEGs (decode+resize+model, kit.embed use_cache=False)", f"{b:.1f}",
         " img/s", "" if used == chosen else f"(warning: kit.embed ran on {used or 'a runtime not from kit.backbones._runtime'})")
    a = speed[chosen]
    line(f"(c) ratio b / a of the chosen runtime {chosen} (target >= 0.85)", f"{b / a:.2f}")

    # (d) the machine's float32 GEMM ceiling, measured now
    gflops = gemm_gflops()
    ceiling = gflops / GFLOP_PER_IMAGE[name]
    line("(d) float32 GEMM 2048x2048 (numpy, all cores, best of 7)", f"{gflops:.0f}", " GFLOP/s",
         f"ceiling for {name} at {GFLOP_PER_IMAGE[name]} GFLOP/image: {ceiling:.0f} img/s")
    line("(d) share of the GEMM ceiling (goal >= 50%)", f"{100 * b / ceiling:.0f}", "% end-to-end",
         f"model-only {chosen}: {100 * a / ceiling:.0f}%")

    # (e) naive sequential: full-size decode, then predict, one batch at a time, no overlap
    def naive_read(p):
        im = ImageOps.exif_transpose(Image.open(p)).convert("RGB")
        w, h = im.size
        s = min(w, h)
        im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)).resize((size, size))
        return np.asarray(im, np.float32) / 255

    t = time.perf_counter()
    for i in range(0, n, BS):
        model.features(np.stack([naive_read(p) for p in images.paths[i:i + BS]]))
    d = n / (time.perf_counter() - t)
    line("(e) naive sequential decode-then-predict", f"{d:.1f}", " img/s", f"speed-up of (b): {b / d:.2f}x")

    # (f) fully cached call in a warm process
    cache_dir = Path(os.environ["KIT_HOME"]) / "bench-cache"
    kit.embed(images, backbone=name, cache_dir=cache_dir)
    t = time.perf_counter()
    cached = kit.embed(kit.load_folder(DATA), backbone=name, cache_dir=cache_dir)
    e = time.perf_counter() - t
    assert cached.stats["computed"] == 0
    line(f"(f) fully cached call over {n} files, warm process (target < 2 s)", f"{e:.2f}", " s",
         "(includes listing, probing and hashing the folder)")

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    line("(g) peak RSS (target < 3 GB)", f"{rss:.2f}", " GB")


if __name__ == "__main__":
    main()
