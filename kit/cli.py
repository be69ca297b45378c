"""Command line: ``python -m kit backbones | embed | compare | cluster | cache``."""
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


def _fail(message: str) -> int:
    print(f"python -m kit cluster: {message}", file=sys.stderr)
    return 2


def _knn_neighbours(nbrs) -> int:
    """Neighbours per row of a precomputed kNN, the row itself left out (the benchmark's lists start with it)."""
    import numpy as np

    return nbrs.shape[1] - int((nbrs == np.arange(len(nbrs))[:, None]).any())


def _print_scores(truth, labels, X) -> None:
    """Overall pairwise and BCubed scores, then F-scores binned by identity size and by sparsity (stdout)."""
    from .metrics import bcubed_precision_recall_f, binned_f, pairwise_precision_recall_f

    pp, pr, pf = pairwise_precision_recall_f(truth, labels)
    bp, br, bf = bcubed_precision_recall_f(truth, labels)
    print(f"pairwise F {pf:.4f} (precision {pp:.4f}, recall {pr:.4f})  "
          f"BCubed F {bf:.4f} (precision {bp:.4f}, recall {br:.4f})")
    fmt = lambda v: f"{v:.4f}"  # noqa: E731
    n_bins = min(5, len(set(truth.tolist())))  # the paper's five bins, fewer when there are fewer identities
    for by in ("size", "sparsity"):
        table = binned_f(truth, labels, by=by, X=X if by == "sparsity" else None, n_bins=n_bins)
        print(f"\nbinned by {by}:")
        print(table.to_string(index=False, float_format=fmt))


def _cmd_cluster(args) -> int:
    from pathlib import Path

    import numpy as np
    import pandas as pd

    from . import cluster, formats

    features = Path(args.features)
    if features.suffix.lower() == ".bin":
        if args.dim is None:
            return _fail(f"{features} is a .bin feature file (float32 rows without a header): pass the dimension "
                         "of its rows with --dim (256 for the MS1M features of the hard-clusters benchmark)")
        try:
            X = formats.read_features_bin(features, dim=args.dim)
        except ValueError as exc:
            return _fail(f"--dim {args.dim}: {exc}")
        paths, truth = None, None
    else:
        if args.dim is not None:
            return _fail(f"--dim {args.dim} is for .bin feature files; {features} is read as an .npz of vectors "
                         "(from 'embed'), which knows its dimension: leave --dim out")
        from .embedding import Embeddings

        emb = Embeddings.load(features)
        X, paths, truth = emb.vectors, emb.paths, emb.labels
    if args.meta is not None:
        truth = formats.read_meta(args.meta)
        if len(truth) != len(X):
            return _fail(f"--meta {args.meta} has {len(truth)} labels for the {len(X)} rows of {features}; pass "
                         "the labels of these features (one per row, in the same order)")
    params = {"random_state": args.random_state, **_parse_params(args.param)}
    if args.k is not None:
        params["n_clusters"] = args.k
    fit_params = {}
    if args.knn is not None:
        import inspect

        if "knn" not in inspect.signature(cluster.METHODS[args.method].load().fit).parameters:
            takes = [n for n, m in cluster.METHODS.items() if "knn" in inspect.signature(m.load().fit).parameters]
            return _fail(f"--knn {args.knn}: method {args.method!r} searches its own neighbours and cannot use a "
                         f"precomputed kNN; use --method {' or '.join(takes)}, or leave --knn out")
        try:
            fit_params["knn"] = formats.read_knn_npz(args.knn)
        except ValueError as exc:
            return _fail(f"--knn: {exc}")
        if "k" not in params:
            params["k"] = _knn_neighbours(fit_params["knn"][0])
            print(f"k={params['k']}: the neighbours per row in {args.knn} (the row itself left out)",
                  file=sys.stderr)
    est = cluster.make(args.method, **params)
    try:
        est.fit(X, **fit_params)
    except ValueError as exc:
        if not fit_params:
            raise
        return _fail(f"--knn {args.knn}: {exc}")
    labels = est.labels_
    if str(args.out).lower().endswith(".meta"):
        formats.write_meta(args.out, labels)
    elif paths is None:
        pd.DataFrame({"row": np.arange(len(labels)), "cluster": labels}).to_csv(args.out, index=False)
    else:
        pd.DataFrame({"path": paths, "cluster": labels}).to_csv(args.out, index=False)
    noise = int(np.sum(labels < 0))
    print(f"{est.n_clusters_} clusters, {noise} noise points -> {args.out}", file=sys.stderr)
    if args.meta is not None:
        _print_scores(truth, labels, X)
    elif truth is not None:
        from .metrics import score

        s = score(truth, labels)
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

    cl = sub.add_parser("cluster", help="cluster an .npz of vectors (from 'embed') or MS1M .bin features into a CSV "
                                        "or a .meta file of labels")
    cl.add_argument("features", help="an .npz from 'embed', or a .bin file of float32 rows (with --dim)")
    cl.add_argument("--dim", type=int, default=None, help="the row length of .bin features (256 for MS1M)")
    cl.add_argument("--meta", default=None,
                    help="true labels, one integer per line (.meta): prints the pairwise and BCubed scores, overall "
                         "and binned by identity size and sparsity")
    cl.add_argument("--knn", default=None,
                    help="a precomputed kNN .npz (faiss_k_80.npz layout), for methods that take one (hard_clusters); "
                         "k defaults to its neighbours per row")
    cl.add_argument("--method", default="kmeans", choices=list(METHODS),
                    help="a method of the registry (kit.cluster.METHODS); its settings go in --param")
    cl.add_argument("--k", type=int, default=None, help="number of clusters, for methods that take one")
    cl.add_argument("--param", action="append", help="NAME=VALUE, repeatable (e.g. --param threshold=0.6)")
    cl.add_argument("--random-state", type=int, default=0)
    cl.add_argument("--out", required=True,
                    help="labels: a .meta file (one label per line, -1: noise) when it ends in .meta, else a CSV "
                         "(path or row, cluster)")
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
