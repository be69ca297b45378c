"""Embedding on Dask against the plain loop (issue 14), on the built-in clothing photos.

One line per figure: the start-up of a local cluster (kit.scale.start_cluster: processes, 1 thread each), then
for color_hist and efficientnet_lite0 on the same N photos (default 300): img/s of the plain loop
(kit.embed, no cache, model already loaded), of Dask with 1 and with 2 workers writing an embedding store (cold:
each worker loads its model in its first task; warm: the same workers again, into a new store), and the peak
memory (RSS) of this process and of each worker.

Usage: python bench/scale.py [--photos 300] [--partition-size 50]
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=300)
    ap.add_argument("--partition-size", type=int, default=50)
    args = ap.parse_args()
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
