"""Fine-tuning benchmark (issue 16): does adapting a backbone to the photos improve their clustering?

clothing10 (1,485 real photos, 10 classes) is split per class into a labelled 20 % and an unseen 80 %.
efficientnet_lite0 is fine-tuned on the 20 % (kit.adapt.fine_tune, labels used), then the 80 % are embedded with
the ImageNet backbone and with the fine-tuned one and clustered with k-means at the true K (10). One line per
figure: NMI before, after, the gain (target >= +0.10), and the wall-clock time of fine-tuning plus re-embedding
the 80 % (target < 10 min on 2 cores). ``--contrastive`` also runs the label-free variant
(kit.adapt.fine_tune_contrastive) on the same 20 % without their labels and reports its gain, whatever it is.

Models are saved under $KIT_HOME/models/finetuned (one per setting, reused when run again with the same
settings; --fresh trains again).

Usage: python bench/adapt.py [--trainable-blocks 4 [2 6 ...]] [--views 5] [--contrastive] [--fresh] [--epochs 20]
"""
import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import kit  # noqa: E402
from kit import metrics  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "clothing10" / "images"


def line(label, value, note=""):
    print(f"{label}: {value}{'  ' + note if note else ''}", flush=True)


def split(images, fraction=0.2, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.asarray(images.labels)
    small = []
    for c in sorted(set(labels)):
        idx = np.flatnonzero(labels == c)
        small += list(rng.choice(idx, int(round(fraction * len(idx))), replace=False))
    small = sorted(small)
    rest = sorted(set(range(len(labels))) - set(small))
    return images.subset(small), images.subset(rest)


def nmi_of(emb, k, seed=0):
    labels = kit.cluster.KMeans(n_clusters=k, random_state=seed).fit(emb.vectors).labels_
    return metrics.score(emb.labels, labels)["nmi"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trainable-blocks", type=int, nargs="+", default=[kit.adapt.DEFAULT_TRAINABLE_BLOCKS])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--views", type=int, default=kit.adapt.DEFAULT_VIEWS)
    ap.add_argument("--contrastive", action="store_true")
    ap.add_argument("--fresh", action="store_true", help="train again even when the same fine-tune is saved")
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA} is absent: this benchmark needs the clothing10 photos")
    images = kit.load_folder(DATA)
    labelled, unseen = split(images)
    k = len(set(images.labels))
    line("clothing10", f"{len(labelled)} labelled photos for fine-tuning, {len(unseen)} unseen photos clustered, K={k}")
    t = time.perf_counter()
    before = nmi_of(kit.embed(unseen, backbone="efficientnet_lite0"), k)
    line("ImageNet efficientnet_lite0, k-means at true K on the unseen 80 %", f"NMI {before:.3f}",
         f"({time.perf_counter() - t:.0f} s, embedding cache allowed)")
    runs = [("fine_tune", b) for b in args.trainable_blocks]
    if args.contrastive:
        runs.append(("fine_tune_contrastive", args.trainable_blocks[0]))
    for fn, blocks in runs:
        suffix = "ft" if fn == "fine_tune" else "simclr"
        name = f"clothing10_lite0_{suffix}_b{blocks}_v{args.views}_e{args.epochs}"
        t = time.perf_counter()
        result = getattr(kit.adapt, fn)(labelled, name=name, trainable_blocks=blocks, views=args.views,
                                        epochs=args.epochs,
                                        overwrite=args.fresh, progress=None)
        train_s = result.estimate.get("training_seconds") if result.reused else time.perf_counter() - t
        t = time.perf_counter()
        emb = kit.embed(unseen, backbone=result.name, use_cache=False)
        embed_s = time.perf_counter() - t
        after = nmi_of(emb, k)
        total = (train_s or 0) + embed_s
        h = result.history
        line(f"{fn}, trainable_blocks={blocks}", f"NMI {after:.3f}, gain {after - before:+.3f}",
             f"(target >= +0.10 for fine_tune; {len(h)} epochs, best held-out loss {h['val_loss'].min():.3f}"
             + (f", held-out accuracy {h['val_accuracy'].max():.2f}" if "val_accuracy" in h else "") + ")")
        line(f"{fn}, trainable_blocks={blocks}, time",
             f"{total / 60:.1f} min = {train_s / 60:.1f} min fine-tuning (incl. export) + {embed_s / 60:.1f} min "
             f"embedding {len(unseen)} photos",
             f"(target < 10 min on {os.cpu_count()} cores; the first batches estimated "
             f"{result.estimate.get('estimated_seconds', float('nan')) / 60:.1f} min for the rest of the training, "
             f"peak memory "
             f"{result.estimate.get('peak_memory_gb', float('nan')):.1f} GB"
             + (", reused a saved model: training time from its note)" if result.reused else ")"))


if __name__ == "__main__":
    main()
