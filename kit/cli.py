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


def _cmd_embed(args) -> int:
    from .embed import embed
    from .io import load_folder
    from .progress import TqdmProgress

    images = load_folder(args.folder, labels=None if args.no_labels else "folders")
    print(images, file=sys.stderr)
    bar = TqdmProgress(file=sys.stderr)
    emb = embed(images, backbone=args.backbone, batch_size=args.batch_size, cache_dir=args.cache_dir,
                progress=bar, resize=args.resize, use_cache=not args.no_cache)
    bar.close()
    emb.save(args.out)
    print(f"{emb.vectors.shape[0]} x {emb.vectors.shape[1]} vectors -> {args.out} "
          f"({emb.stats['cached']} from cache, {emb.stats['seconds']:.1f} s)", file=sys.stderr)
    if len(emb.unreadable):
        print(f"{len(emb.unreadable)} unreadable files:", file=sys.stderr)
        print(emb.unreadable.to_string(index=False), file=sys.stderr)
    return 0


def _cmd_cache(args) -> int:
    from . import cache

    if args.action == "info":
        print(cache.info(args.cache_dir).to_string(index=False))
    else:
        print(f"removed {cache.clear(args.cache_dir, backbone=args.backbone)} entries")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m kit", description="Image clustering exploration kit")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("backbones", help="list the backbones and whether they work offline")
    b.set_defaults(func=_cmd_backbones)

    e = sub.add_parser("embed", help="embed a folder of images into an .npz (vectors, paths)")
    e.add_argument("folder")
    e.add_argument("--backbone", default="efficientnet_lite0")
    e.add_argument("--out", required=True, help="output .npz file")
    e.add_argument("--batch-size", type=int, default=32)
    e.add_argument("--resize", default="center_crop", choices=["center_crop", "squash", "pad"])
    e.add_argument("--cache-dir", default=None)
    e.add_argument("--no-cache", action="store_true")
    e.add_argument("--no-labels", action="store_true", help="do not take labels from sub-folder names")
    e.set_defaults(func=_cmd_embed)

    c = sub.add_parser("cache", help="show or clear the embedding cache")
    c.add_argument("action", choices=["info", "clear"])
    c.add_argument("--cache-dir", default=None)
    c.add_argument("--backbone", default=None, help="with clear: only this backbone")
    c.set_defaults(func=_cmd_cache)
    return p


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    return args.func(args)
