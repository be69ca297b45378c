"""Embedding on Dask against the plain loop (issue 14), on the built-in clothing photos.

One line per figure: the start-up of a local cluster (kit.scale.start_cluster: processes, 1 thread each), then
for color_hist and efficientnet_lite0 on the same N photos (default 300): img/s of the plain loop
(kit.embed, no cache, model already loaded), of Dask with 1 and with 2 workers writing an embedding store (cold:
each worker loads its model in its first task; warm: the same workers again, into a new store), and the peak
memory (RSS) of this process and of each worker.

Clustering a store (kit.scale_cluster, kit.scale_graph), first: N random 256-d vectors (a Gaussian mixture of K
components, known truth) written chunk by chunk into a store (partitions of 100,000 rows), then faiss k-means (K=100
up to 200,000 vectors, 1000 above) trained on a sample (the default min(N, max(256 K, 100,000))) and assigned
partition by partition into a labels dataset: seconds for write / sample / train / assign, NMI to the truth over
every row (kit.scale_cluster.score_labels), peak RSS; then a PCA fitted on 20,000 rows and applied to all, and an IVF
kNN graph (k=15) on a 50,000-row sample with its recall.

Usage: python bench/scale.py [--photos 300] [--partition-size 50] [--vectors 200000] [--k K] [--part all]
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

import kit  # noqa: E402
from kit.scale import embed_dask, list_images, start_cluster  # noqa: E402


def line(label, value, note=""):
    print(f"{label}: {value}{'  ' + note if note else ''}", flush=True)


def peak_rss_mb() -> float:
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

    from kit import scale_cluster as sc
    from kit.scale_graph import knn_graph
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
    t = time.perf_counter()
    p = sc.project_store(store, "pca", sample_size=20_000)
    line(f"PCA fitted on {p.sample_size:,} rows, all {p.n_rows:,} placed", f"{time.perf_counter() - t:.1f} s")
    s = sc.sample(store, min(n, 50_000), random_state=0)
    g = knn_graph(s, 15, method="ivf")
    line(f"IVF kNN graph (k=15) on {len(s):,} sampled rows ({g.params['nlist']} lists, nprobe {g.params['nprobe']})",
         f"{g.seconds:.1f} s, recall@15 {g.recall:.3f} on {g.recall_sample} rows",
         f"peak RSS {peak_rss_mb():.0f} MB")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=300)
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
    paths = list_images(kit.datasets.clothing()).paths[:args.photos]
    n = len(paths)
    line("machine", f"{os.cpu_count()} cpus, {n} clothing photos, partitions of {args.partition_size}")
    clusters = {}
    for workers in (1, 2):
        t = time.perf_counter()
        clusters[workers] = start_cluster(workers)
        line(f"cluster start ({workers} worker{'s' if workers > 1 else ''} x 1 thread)",
             f"{time.perf_counter() - t:.1f} s")
    try:
        with tempfile.TemporaryDirectory(prefix="kit-bench-scale-") as tmp:
            for backbone in ("color_hist", "efficientnet_lite0"):
                kit.embed(paths[:8], backbone=backbone, use_cache=False)  # model loaded (and exported) once
                t = time.perf_counter()
                kit.embed(paths, backbone=backbone, use_cache=False)
                line(f"{backbone} plain loop", rate(n, time.perf_counter() - t))
                for workers, (_, client) in clusters.items():
                    timings = []
                    for run in ("cold", "warm"):
                        store = Path(tmp) / f"{backbone}-{workers}-{run}"
                        t = time.perf_counter()
                        emb = embed_dask(paths, backbone=backbone, client=client, store=store,
                                         partition_size=args.partition_size)
                        timings.append(time.perf_counter() - t)
                        assert len(emb) == n
                    line(f"{backbone} dask {workers} worker{'s' if workers > 1 else ''} x 1 thread",
                         f"{rate(n, timings[0])} cold, {rate(n, timings[1])} warm")
            for workers, (_, client) in clusters.items():
                rss = client.run(peak_rss_mb)
                line(f"peak RSS of the {workers}-worker cluster's workers",
                     ", ".join(f"{v:.0f} MB" for v in rss.values()))
            line("peak RSS of this process (plain loops, client)", f"{peak_rss_mb():.0f} MB")
    finally:
        for cluster, client in clusters.values():
            client.close()
            cluster.close()


main()
