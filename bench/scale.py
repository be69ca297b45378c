"""Embedding on Dask against the plain loop (issue 14), on a generated photo corpus.

The corpus (--corpus N, default 20,000): kit.datasets.augmented_corpus writes N JPEGs into a temporary folder, each
a seeded random crop (30-100 % of the area, aspect 3/4-4/3), horizontal flip (half of them) and colour jitter
(brightness, contrast, saturation 0.7-1.3) of one of the 500 built-in clothing photos, in turn (the same N gives the
same files).
--corpus 0 uses the built-in photos themselves (the first --photos of them).

One line per figure: the start-up of a local cluster (kit.scale.start_cluster: processes, 1 thread each), then
for color_hist and efficientnet_lite0 on the same photos: img/s of the plain loop (kit.embed, no cache, model
already loaded) on all cores, of the plain loop pinned to one core (a subprocess whose threads, TFLite's
included, may run on core 0 only), of Dask with 1 and with 2 workers writing an embedding store (cold: each
worker loads its model in its first task; warm: the same workers again, into a new store). Each worker is pinned
to a core of its own (worker i to core i): the kit's TFLite interpreter runs os.cpu_count() threads whatever Dask's
threads_per_worker says, so without pinning "1 worker x 1 thread" would use every core. Then the ratio of 2
workers to 1 (warm), the Dask overhead against the plain loop at the same parallelism (1 worker against the plain
loop on 1 core; 2 workers against the plain loop on all cores), and the peak memory (RSS) of this process and of
each worker.

Clustering a store (kit.scale_cluster, kit.scale_graph), first: N random 256-d vectors (a Gaussian mixture of K
components, known truth) written chunk by chunk into a store (partitions of 100,000 rows), then faiss k-means (K=100
up to 200,000 vectors, 1000 above) trained on a sample (the default min(N, max(256 K, 100,000))) and assigned
partition by partition into a labels dataset: seconds for write / sample / train / assign, NMI to the truth over
every row (kit.scale.score_labels), peak RSS; then a PCA fitted on 20,000 rows and applied to all, and an IVF
kNN graph (k=15) on a 50,000-row sample with its recall. After the k-means line, an estimate (not measured) for
10,000,000 x 256: the write, sample and assign times per row scaled to 100 partitions of 100,000 rows, the training
time as measured (the same sample size and K).

Usage: python bench/scale.py [--corpus 20000] [--photos 300] [--partition-size 50] [--vectors 200000] [--k K]
                             [--part all]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import kit  # noqa: E402
from kit.scale import embed_dask, list_images, start_cluster  # noqa: E402


def line(label, value, note=""):
    print(f"{label}: {value}{'  ' + note if note else ''}", flush=True)


def peak_rss_mb() -> float:
    """Peak RSS of this process's own memory (VmHWM). ru_maxrss would also count the parent's memory copied at
    fork before exec (Linux), so a worker or subprocess started by a large process would report the parent's."""
    try:
        with open("/proc/self/status") as f:
            for row in f:
                if row.startswith("VmHWM:"):
                    return int(row.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def rate(n, seconds):
    return f"{n / seconds:.1f} img/s"


def mixture(n, dim, true_k, seed, chunk=100_000):
    """Chunks of a Gaussian mixture (centres N(0, 1), noise sd 0.5 per axis) and the component of each row."""
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(true_k, dim)).astype("float32")
    truth = rng.integers(0, true_k, n).astype("int32")

    def chunks():
        for lo in range(0, n, chunk):
            t = truth[lo:lo + chunk]
            yield centres[t] + rng.normal(scale=0.5, size=(len(t), dim)).astype("float32")

    return chunks(), truth


def bench_kmeans(args, tmp):
    import pandas as pd

    from kit.scale import _cluster as sc
    from kit.scale import knn_graph
    from kit.metrics import nmi

    n, dim = args.vectors, 256
    k = args.k or (100 if n <= 200_000 else 1000)
    chunks, truth = mixture(n, dim, k, seed=0)
    t = time.perf_counter()
    store = sc.write_vectors(Path(tmp) / "vectors.store", chunks, labels=truth, partition_rows=100_000)
    write = time.perf_counter() - t
    line(f"store of {n:,} x {dim} float32 (Gaussian mixture, {k} components)",
         f"write {write:.1f} s, {len(store.partitions())} partitions, "
         f"{store.partitions()['bytes'].sum() / 2**20:.0f} MB")
    km = sc.kmeans(store, k, random_state=0)
    tm = km.timings
    t = time.perf_counter()
    scores = sc.score_labels(km)  # every row, streamed, against the truth stored as the label column
    line(f"kmeans K={k} on {n:,} (trained on a sample of {km.sample_size:,})",
         f"sample {tm['sample']:.1f} s, train {tm['train']:.1f} s, assign {tm['assign']:.1f} s, "
         f"NMI to truth {scores['nmi']:.3f} (scored in {time.perf_counter() - t:.1f} s)",
         f"peak RSS {peak_rss_mb():.0f} MB")
    estimate_10m(n, dim, k, km.sample_size, len(store.partitions()), write, tm)
    t = time.perf_counter()
    p = sc.project_store(store, "pca", sample_size=20_000)
    line(f"PCA fitted on {p.sample_size:,} rows, all {p.n_rows:,} placed", f"{time.perf_counter() - t:.1f} s")
    s = sc.sample(store, min(n, 50_000), random_state=0)
    g = knn_graph(s, 15, method="ivf")
    line(f"IVF kNN graph (k=15) on {len(s):,} sampled rows ({g.params['nlist']} lists, nprobe {g.params['nprobe']})",
         f"{g.seconds:.1f} s, recall@15 {g.recall:.3f} on {g.recall_sample} rows",
         f"peak RSS {peak_rss_mb():.0f} MB")


def estimate_10m(n, dim, k, sample_size, n_parts, write, tm, big=10_000_000, rows=100_000):
    """Scales this run's k-means timings to ``big`` rows: an estimate, not a measurement."""
    parts = -(-big // rows)
    w = write / n * big
    per_part = {key: tm[key] * rows / n for key in ("sample", "assign")}  # per full partition of `rows` rows
    smp = per_part["sample"] * parts
    asg = per_part["assign"] * parts
    total = w + smp + tm["train"] + asg
    line(f"ESTIMATE, NOT MEASURED: {big:,} x {dim} float32, kmeans K={k} trained on a sample of {sample_size:,}",
         f"write {w:.0f} s ({write / n * 1e6:.1f} s per 1M rows measured), sample {smp:.0f} s, "
         f"train {tm['train']:.0f} s (as measured, same sample and K), assign {asg:.0f} s "
         f"({parts} partitions x {per_part['assign']:.2f} s measured per partition), total {total / 60:.1f} min",
         f"scaled from {n:,} rows in {n_parts} partitions; peak RSS expected as above (the sample and one partition)")


def pin_to_core(core):
    """Pins every thread of the calling process to ``core`` (threads started later inherit it)."""
    cpus = {core % os.cpu_count()}
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except OSError:
            pass
    return sorted(os.sched_getaffinity(0))


def pin_workers(client):
    """Worker i (in address order) pinned to core i; the cores each worker may run on, in that order."""
    return [client.run(pin_to_core, i, workers=[addr])[addr]
            for i, addr in enumerate(sorted(client.scheduler_info()["workers"]))]


_ONE_CORE = """
import json, os, sys, time
os.sched_setaffinity(0, {0})  # before any thread exists: every thread started later runs on core 0 only
sys.path.insert(0, sys.argv[1])
import kit
paths = json.load(open(sys.argv[2]))
kit.embed(paths[:8], backbone=sys.argv[3], use_cache=False)
t = time.perf_counter()
kit.embed(paths, backbone=sys.argv[3], use_cache=False)
hwm = [int(r.split()[1]) for r in open("/proc/self/status") if r.startswith("VmHWM:")][0]  # kB, own memory only
print(json.dumps({"seconds": time.perf_counter() - t, "rss": hwm / 1024}))
"""


def plain_one_core(paths, backbone, tmp):
    """Seconds and peak RSS (MB) of the plain loop in a subprocess pinned to core 0."""
    listing = Path(tmp) / "paths.json"
    listing.write_text(json.dumps(list(paths)))
    out = subprocess.run([sys.executable, "-c", _ONE_CORE, str(ROOT), str(listing), backbone], check=True,
                         capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1",
                                                              "TF_NUM_INTRAOP_THREADS": "1",
                                                              "TF_NUM_INTEROP_THREADS": "1"})
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return r["seconds"], r["rss"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=int, default=20_000,
                    help="generated photos (crops, flips, colour jitter of the built-in ones); 0: the built-in photos")
    ap.add_argument("--photos", type=int, default=300, help="with --corpus 0: how many built-in photos")
    ap.add_argument("--partition-size", type=int, default=50)
    ap.add_argument("--vectors", type=int, default=200_000)
    ap.add_argument("--k", type=int, default=None, help="k-means K (default 100 up to 200,000 vectors, else 1000)")
    ap.add_argument("--part", choices=("all", "kmeans", "embed"), default="all")
    args = ap.parse_args()
    if args.part in ("all", "kmeans"):
        with tempfile.TemporaryDirectory(prefix="kit-bench-scale-") as tmp:
            bench_kmeans(args, tmp)
    if args.part == "kmeans":
        return
    corpus_dir = tempfile.TemporaryDirectory(prefix="kit-bench-corpus-")
    if args.corpus:
        t = time.perf_counter()
        paths = kit.datasets.augmented_corpus(args.corpus, corpus_dir.name)
        line("corpus", f"{len(paths):,} JPEGs (seeded crops, flips, colour jitter of the 500 clothing photos) "
                       f"written in {time.perf_counter() - t:.1f} s")
    else:
        paths = list_images(kit.datasets.clothing()).paths[:args.photos]
    n = len(paths)
    line("machine", f"{os.cpu_count()} cpus (shared with other jobs), {n:,} photos, "
                    f"partitions of {args.partition_size}")
    clusters = {}
    for workers in (1, 2):
        t = time.perf_counter()
        clusters[workers] = start_cluster(workers)
        cores = pin_workers(clusters[workers][1])
        line(f"cluster start ({workers} worker{'s' if workers > 1 else ''} x 1 thread)",
             f"{time.perf_counter() - t:.1f} s", f"workers pinned to cores {cores}")
    try:
        with tempfile.TemporaryDirectory(prefix="kit-bench-scale-") as tmp:
            for backbone in ("color_hist", "efficientnet_lite0"):
                kit.embed(paths[:8], backbone=backbone, use_cache=False)  # model loaded (and exported) once
                t = time.perf_counter()
                kit.embed(paths, backbone=backbone, use_cache=False)
                plain = n / (time.perf_counter() - t)
                line(f"{backbone} plain loop, all cores", f"{plain:.1f} img/s")
                seconds, rss = plain_one_core(paths, backbone, tmp)
                plain1 = n / seconds
                line(f"{backbone} plain loop, pinned to 1 core (subprocess)", f"{plain1:.1f} img/s",
                     f"peak RSS {rss:.0f} MB")
                warm = {}
                for workers, (_, client) in clusters.items():
                    timings = []
                    for run in ("cold", "warm"):
                        store = Path(tmp) / f"{backbone}-{workers}-{run}"
                        t = time.perf_counter()
                        emb = embed_dask(paths, backbone=backbone, client=client, store=store,
                                         partition_size=args.partition_size)
                        timings.append(time.perf_counter() - t)
                        assert len(emb) == n
                    warm[workers] = n / timings[1]
                    line(f"{backbone} dask {workers} worker{'s' if workers > 1 else ''} x 1 thread",
                         f"{rate(n, timings[0])} cold, {rate(n, timings[1])} warm")
                line(f"{backbone} dask 2 workers / 1 worker (warm)", f"{warm[2] / warm[1]:.2f}x", "target >= 1.8x")
                line(f"{backbone} dask overhead vs plain loop, same parallelism (warm)",
                     f"1 worker vs plain on 1 core {100 * (1 - warm[1] / plain1):+.0f}%, "
                     f"2 workers vs plain on all cores {100 * (1 - warm[2] / plain):+.0f}%",
                     "target <= 10% (negative: Dask faster)")
            for workers, (_, client) in clusters.items():
                rss = client.run(peak_rss_mb)
                line(f"peak RSS of the {workers}-worker cluster's workers",
                     ", ".join(f"{v:.0f} MB" for v in rss.values()))
            line("peak RSS of this process (plain loops, client)", f"{peak_rss_mb():.0f} MB")
    finally:
        for cluster, client in clusters.values():
            client.close()
            cluster.close()
        corpus_dir.cleanup()


main()
