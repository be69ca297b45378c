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

``--presets`` instead measures what the KerasHub presets cost on this CPU, without downloading them and without
../shared/data: each of dinov2_small, the CLIP ViT-B/32 and SigLIP ViT-B/16 image towers is built with KerasHub's
classes at the released preset's architecture (hyperparameters in PRESET_ARCHS) with random weights (the same
FLOPs), saved with ``save_to_preset`` and embedded through ``kit.embed`` from the built-in photos
(kit.datasets.clothing()), each in its own process (peak RSS per model), beside efficientnet_lite0 measured the
same way.

Usage: python bench/embed.py [--backbone efficientnet_lite0] | --presets [--photos 96]
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


# The released presets' architectures (their config.json on Kaggle), built here with random weights.
PRESET_ARCHS = {
    "dinov2_small": dict(cls="DINOV2Backbone", patch_size=14, num_layers=12, hidden_dim=384, num_heads=6,
                         intermediate_dim=1536, image_shape=(224, 224, 3)),
    "clip_vit_base_patch32": dict(cls="CLIPBackbone", vision=dict(patch_size=32, hidden_dim=768, num_layers=12,
                                                                  num_heads=12, intermediate_dim=3072,
                                                                  image_shape=(224, 224, 3)),
                                  text=dict(vocabulary_size=49408, embedding_dim=512, hidden_dim=512, num_layers=12,
                                            num_heads=8, intermediate_dim=2048, max_sequence_length=77),
                                  projection_dim=512),
    "siglip_base_patch16_224": dict(cls="SigLIPBackbone", vision=dict(patch_size=16, hidden_dim=768, num_layers=12,
                                                                      num_heads=12, intermediate_dim=3072,
                                                                      image_shape=(224, 224, 3)),
                                    text=dict(vocabulary_size=32000, embedding_dim=768, hidden_dim=768,
                                              num_layers=12, num_heads=12, intermediate_dim=3072)),
}


def vit_gflop(patch, hidden, layers, intermediate, size=224, cls_token=True):
    """Forward FLOPs (2 per multiply-add) of a ViT image tower: projections, MLP and attention, per image."""
    tokens = (size // patch) ** 2 + int(cls_token)
    per_layer = 2 * (4 * tokens * hidden ** 2 + 2 * tokens * hidden * intermediate + 2 * tokens ** 2 * hidden)
    return (layers * per_layer + 2 * (size // patch) ** 2 * patch ** 2 * 3 * hidden) / 1e9


def build_preset(name, folder):
    """Save a randomly initialised KerasHub model with ``name``'s architecture (and its image converter)."""
    import keras_hub

    arch = dict(PRESET_ARCHS[name])
    cls = arch.pop("cls")
    if cls == "DINOV2Backbone":
        net = keras_hub.models.DINOV2Backbone(**arch)
        conv = keras_hub.layers.DINOV2ImageConverter(
            image_size=(224, 224), scale=[1 / 255 / s for s in (0.229, 0.224, 0.225)],
            offset=[-m / s for m, s in zip((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    elif cls == "CLIPBackbone":
        net = keras_hub.models.CLIPBackbone(vision_encoder=keras_hub.models.CLIPVisionEncoder(**arch["vision"]),
                                            text_encoder=keras_hub.models.CLIPTextEncoder(**arch["text"]),
                                            projection_dim=arch["projection_dim"])
        conv = keras_hub.layers.CLIPImageConverter(image_size=(224, 224), scale=1 / 255 / 0.27, offset=-1.7)
    else:
        net = keras_hub.models.SigLIPBackbone(vision_encoder=keras_hub.models.SigLIPVisionEncoder(**arch["vision"]),
                                              text_encoder=keras_hub.models.SigLIPTextEncoder(**arch["text"]))
        conv = keras_hub.layers.SigLIPImageConverter(image_size=(224, 224), scale=1 / 127.5, offset=-1.0)
    net.save_to_preset(str(folder))
    conv.save_to_preset(str(folder))
    return net.count_params()


def bench_one(name, photos, folder=None):
    """One model in this process: ``kit.embed`` end to end (decode + preprocess + model), warm model. ``folder``:
    the saved preset (built by another process, so that this one's peak RSS is the kit's alone)."""
    import kit

    images = kit.load_folder(kit.datasets.clothing()).paths[:photos]
    if name in PRESET_ARCHS:
        backbone = folder
        arch = PRESET_ARCHS[name].get("vision", PRESET_ARCHS[name])
        gflop = vit_gflop(arch["patch_size"], arch["hidden_dim"], arch["num_layers"], arch["intermediate_dim"],
                          cls_token=PRESET_ARCHS[name]["cls"] != "SigLIPBackbone")
        text = " (text tower included)" if "text" in PRESET_ARCHS[name] else ""
        note = f"preset of {Path(folder, 'model.weights.h5').stat().st_size / 1e6:.0f} MB{text}, random weights"
    else:
        backbone, gflop, note = name, GFLOP_PER_IMAGE[name], "ImageNet weights"
    kit.embed(images[:BS], backbone=backbone, use_cache=False)  # warm-up: loading, tracing
    t = time.perf_counter()
    emb = kit.embed(images, backbone=backbone, use_cache=False, batch_size=BS)
    speed = len(images) / (time.perf_counter() - t)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    batch = emb.stats.get("batch_size", BS)
    line(f"(p) {name}: kit.embed end to end, {len(images)} built-in photos, batch {batch}, {os.cpu_count()} cores",
         f"{speed:.1f}", " img/s", f"{gflop:.2f} GFLOP/image ({gflop * speed:.0f} GFLOP/s); peak RSS "
         f"{rss:.2f} GB; dim {emb.vectors.shape[1]}; {note}")


def presets(photos):
    import subprocess

    root = Path(tempfile.mkdtemp(prefix="kit-bench-presets-"))
    for name in ("efficientnet_lite0", *PRESET_ARCHS):
        extra = []
        if name in PRESET_ARCHS:
            subprocess.run([sys.executable, __file__, "--build", name, "--folder", str(root / name)], check=True)
            extra = ["--folder", str(root / name)]
        subprocess.run([sys.executable, __file__, "--one", name, "--photos", str(photos), *extra], check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbone", default="efficientnet_lite0", choices=sorted(GFLOP_PER_IMAGE))
    ap.add_argument("--presets", action="store_true", help="throughput of the KerasHub presets beside lite0")
    ap.add_argument("--photos", type=int, default=96, help="photos per model with --presets")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--build", help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.build:
        return build_preset(args.build, Path(args.folder))
    if args.one:
        os.environ.setdefault("KIT_HOME", tempfile.mkdtemp(prefix="kit-bench-"))
        return bench_one(args.one, args.photos, args.folder)
    if args.presets:
        return presets(args.photos)
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
