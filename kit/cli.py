"""Command line: ``python -m kit backbones | embed | cache``."""
from __future__ import annotations

import argparse
import os
import sys


def _cmd_backbones(args) -> int:
    from . import backbones

    table = backbones.available()
    print(table.to_string(index=False))
    return 0


def _cmd_embed_dask(args) -> int:
    from .progress import TqdmProgress
    from .scale import embed_dask

    if args.store is None or args.cache_dir is not None:
        print("python -m kit embed --engine dask: pass --store OUT (the store is the cache; --cache-dir is for "
              "--engine local)", file=sys.stderr)
        return 2
    bar = TqdmProgress(file=sys.stderr)
    result = embed_dask(args.folder, backbone=args.backbone, client=args.scheduler, store=args.store,
                        partition_size=args.partition_size, batch_size=args.batch_size, resize=args.resize,
                        progress=bar, collect=args.out is not None)
    bar.close()
    if args.out is not None:
        result.save(args.out)
    s = result.stats
    print(f"{s['rows']} photos in {args.store} ({s['computed']} embedded, {s['cached']} already there, "
          f"{s['partitions']} partitions, {s['seconds']:.1f} s)" + (f" -> {args.out}" if args.out else ""),
          file=sys.stderr)
    if len(result.unreadable):
        print(f"{len(result.unreadable)} unreadable files:", file=sys.stderr)
        print(result.unreadable.to_string(index=False), file=sys.stderr)
    return 0


def _cmd_embed(args) -> int:
    if args.out is None and args.store is None:
        print("python -m kit embed: pass --out FILE.npz, --store FOLDER, or both", file=sys.stderr)
        return 2
    if args.engine == "dask":
        return _cmd_embed_dask(args)
    from .embedding import embed
    from .io import load_folder
    from .progress import TqdmProgress

    images = load_folder(args.folder, labels=None if args.no_labels else "folders")
    print(images, file=sys.stderr)
    from . import costs

    forecast = costs.estimate("embed", str(args.backbone), len(images))
    if forecast is not None and not args.no_cache:
        print(f"{len(images)} photos with {args.backbone}: at most {forecast.text} (less for photos already in "
              f"the cache)", file=sys.stderr)
    elif forecast is not None:
        print(f"{len(images)} photos with {args.backbone}: {forecast.text}", file=sys.stderr)
    bar = TqdmProgress(file=sys.stderr)
    emb = embed(images, backbone=args.backbone, batch_size=args.batch_size, cache_dir=args.cache_dir,
                progress=bar, resize=args.resize, use_cache=not args.no_cache, store=args.store)
    bar.close()
    if args.out is not None:
        emb.save(args.out)
    print(f"{emb.vectors.shape[0]} x {emb.vectors.shape[1]} vectors -> {args.out or args.store} "
          f"({emb.stats['cached']} from cache, {emb.stats['seconds']:.1f} s)", file=sys.stderr)
    if len(emb.unreadable):
        print(f"{len(emb.unreadable)} unreadable files:", file=sys.stderr)
        print(emb.unreadable.to_string(index=False), file=sys.stderr)
    return 0


def _cmd_cache(args) -> int:
    from . import embedding

    if args.action == "info":
        print(embedding.cache_info(args.cache_dir).to_string(index=False))
        return 0
    try:
        removed = embedding.clear_cache(args.cache_dir, backbone=args.backbone)
    except ValueError as exc:  # not a kit cache: nothing was deleted
        print(f"python -m kit cache clear: {exc}", file=sys.stderr)
        return 2
    print(f"removed {removed} entries")
    return 0


def _parse_params(items):
    import ast

    params = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"--param {item!r}: expected NAME=VALUE, e.g. --param min_cluster_size=20")
        key, value = item.split("=", 1)
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key] = value
    return params


def _cmd_compare(args) -> int:
    from ._compare import compare
    from .progress import TqdmProgress

    k = "auto" if args.k == "auto" else int(args.k)
    bar = TqdmProgress(file=sys.stderr)
    table = compare(args.folder, backbones=args.backbones.split(","), methods=args.methods.split(","), k=k,
                    random_state=args.random_state, progress=bar)
    bar.close()
    table.to_csv(args.out, index=False)
    cols = [c for c in ("backbone", "method", "k", "n_clusters", "nmi", "ari", "bcubed_f", "silhouette")
            if c in table.columns]
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"-> {args.out}", file=sys.stderr)
    return 0


def _cmd_cluster(args) -> int:
    import numpy as np
    import pandas as pd

    from . import cluster
    from .embedding import Embeddings

    emb = Embeddings.load(args.features)
    params = {"random_state": args.random_state, **_parse_params(args.param)}
    if args.k is not None:
        params["n_clusters"] = args.k
    est = cluster.make(args.method, **params).fit(emb.vectors)
    pd.DataFrame({"path": emb.paths, "cluster": est.labels_}).to_csv(args.out, index=False)
    noise = int(np.sum(est.labels_ < 0))
    print(f"{est.n_clusters_} clusters, {noise} noise points -> {args.out}", file=sys.stderr)
    if emb.labels is not None:
        from .metrics import score

        s = score(emb.labels, est.labels_)
        print(f"NMI {s['nmi']:.3f}  ARI {s['ari']:.3f}  BCubed F {s['bcubed_f']:.3f}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .cluster import METHODS  # the one method registry (cheap: no scikit-learn)

    p = argparse.ArgumentParser(prog="python -m kit", description="Image clustering exploration kit")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import MODULE first (repeatable): a module that calls kit.backbones.register(...) makes its "
                        "backbones usable by name here (same as listing it in KIT_PLUGINS)")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("backbones", help="list the backbones and whether they work offline")
    b.set_defaults(func=_cmd_backbones)

    e = sub.add_parser("embed", help="embed a folder of images into an .npz (vectors, paths)")
    e.add_argument("folder")
    e.add_argument("--backbone", default="efficientnet_lite0")
    e.add_argument("--out", default=None, help="output .npz file (required unless --store is given)")
    e.add_argument("--batch-size", type=int, default=32)
    e.add_argument("--resize", default="center_crop", choices=["center_crop", "squash", "pad"])
    e.add_argument("--cache-dir", default=None)
    e.add_argument("--no-cache", action="store_true")
    e.add_argument("--no-labels", action="store_true", help="do not take labels from sub-folder names")
    e.add_argument("--engine", default="local", choices=["local", "dask"],
                   help="dask: partitions of photos on a Dask cluster, written to --store (resumable)")
    e.add_argument("--scheduler", default=None, metavar="ADDR",
                   help="with --engine dask: a running Dask scheduler (tcp://host:port); default: a local cluster")
    e.add_argument("--store", default=None, metavar="OUT",
                   help="embedding store folder or fsspec URL (Parquet, one row per photo); required with --engine dask")
    e.add_argument("--partition-size", type=int, default=1000, help="with --engine dask: photos per task and file")
    e.set_defaults(func=_cmd_embed)

    cp = sub.add_parser("compare", help="score backbones x clustering methods on a labelled folder")
    cp.add_argument("folder")
    cp.add_argument("--backbones", default="efficientnet_lite0", help="comma-separated names")
    cp.add_argument("--methods", default="kmeans", help=f"comma-separated, among {', '.join(METHODS)}")
    cp.add_argument("--k", default="auto", help="number of clusters, or 'auto'")
    cp.add_argument("--random-state", type=int, default=0)
    cp.add_argument("--out", required=True, help="output CSV")
    cp.set_defaults(func=_cmd_compare)

    cl = sub.add_parser("cluster", help="cluster an .npz of vectors (from 'embed') into a CSV path -> cluster")
    cl.add_argument("features")
    cl.add_argument("--method", default="kmeans", choices=list(METHODS),
                    help="a method of the registry (kit.cluster.METHODS); its settings go in --param")
    cl.add_argument("--k", type=int, default=None, help="number of clusters, for methods that take one")
    cl.add_argument("--param", action="append", help="NAME=VALUE, repeatable (e.g. --param threshold=0.6)")
    cl.add_argument("--random-state", type=int, default=0)
    cl.add_argument("--out", required=True)
    cl.set_defaults(func=_cmd_cluster)

    c = sub.add_parser("cache", help="show or clear the embedding cache (clear deletes only what the kit wrote)")
    c.add_argument("action", choices=["info", "clear"])
    c.add_argument("--cache-dir", default=None)
    c.add_argument("--backbone", default=None, help="with clear: only this backbone")
    c.set_defaults(func=_cmd_cache)
    return p


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    if args.plugin:
        listed = [m for m in os.environ.get("KIT_PLUGINS", "").split(",") if m.strip()]
        os.environ["KIT_PLUGINS"] = ",".join(dict.fromkeys([*listed, *args.plugin]))
        from . import backbones

        try:
            backbones.import_plugins()
        except ImportError as exc:
            print(f"python -m kit --plugin: {exc}", file=sys.stderr)
            return 2
    return args.func(args)
