"""On-disk cache of embeddings.

An entry is keyed by the image file's *content* hash inside a namespace that is itself a hash of
(backbone weights identity, preprocessing, cache format version). Two files with the same name in
different folders never share an entry; an edited file gets a new key; identical files share one.

Layout: ``<cache_dir>/<namespace>/meta.json`` and ``<cache_dir>/<namespace>/<hh>/<hash>.f32`` (raw
little-endian float32). Every write goes to a temporary file in the same folder and is renamed into
place, so a crash never leaves a half-written entry.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from ._config import __version__, kit_home

CACHE_FORMAT = 1


def default_cache_dir() -> Path:
    """``$KIT_HOME/embeddings`` (``~/.cache/kit/embeddings`` by default)."""
    return kit_home() / "embeddings"


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class EmbeddingCache:
    """Embeddings of one (backbone, preprocessing) pair, stored under ``cache_dir``.

    Parameters
    ----------
    backbone_key : str
        Identity of the network's weights (``BackboneSpec.cache_key``).
    preprocessing : dict
        Everything that changes the pixels fed to the network (input size, resize mode...).
    cache_dir : str or Path, optional
        Defaults to ``default_cache_dir()``.
    """

    def __init__(self, backbone_key: str, preprocessing: dict, cache_dir=None):
        self.backbone_key = backbone_key
        self.preprocessing = dict(preprocessing)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        ident = json.dumps({"backbone": backbone_key, "preprocessing": self.preprocessing,
                            "format": CACHE_FORMAT}, sort_keys=True)
        self.namespace = hashlib.blake2b(ident.encode(), digest_size=12).hexdigest()
        self.folder = self.cache_dir / self.namespace

    def _entry(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.f32"

    def get(self, keys) -> dict:
        """Return ``{key: vector}`` for the keys present (missing keys are simply absent)."""
        out = {}
        if not self.folder.is_dir():
            return out
        for key in keys:
            try:
                with open(self._entry(key), "rb") as f:
                    out[key] = np.frombuffer(f.read(), dtype="<f4")
            except FileNotFoundError:
                continue
        return out

    def put(self, keys, vectors: np.ndarray) -> None:
        """Store one vector per key (atomically, one file each)."""
        vectors = np.asarray(vectors, dtype="<f4")
        if len(keys) != len(vectors):
            raise ValueError(f"put() got {len(keys)} keys and {len(vectors)} vectors; they must match")
        meta = self.folder / "meta.json"
        if not meta.exists():
            _atomic_write(meta, json.dumps({
                "backbone": self.backbone_key, "preprocessing": self.preprocessing, "format": CACHE_FORMAT,
                "kit_version": __version__, "dim": int(vectors.shape[1]) if vectors.ndim == 2 else None,
            }, indent=1).encode())
        for key, vec in zip(keys, vectors):
            _atomic_write(self._entry(key), vec.tobytes())


def info(cache_dir=None) -> pd.DataFrame:
    """One row per namespace: backbone, preprocessing, entries, megabytes, path."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    rows = []
    if root.is_dir():
        for ns in sorted(p for p in root.iterdir() if p.is_dir()):
            try:
                meta = json.loads((ns / "meta.json").read_text())
            except (OSError, ValueError):
                meta = {}
            files = list(ns.glob("*/*.f32"))
            rows.append(dict(
                backbone=meta.get("backbone", "?"), preprocessing=json.dumps(meta.get("preprocessing", {})),
                entries=len(files), megabytes=sum(f.stat().st_size for f in files) / 1e6, path=str(ns),
            ))
    return pd.DataFrame(rows, columns=["backbone", "preprocessing", "entries", "megabytes", "path"])


def clear(cache_dir=None, backbone: str | None = None) -> int:
    """Delete cached embeddings (all, or only those whose backbone key contains ``backbone``).

    Returns the number of entries removed. Only folders the cache made are touched.
    """
    table = info(cache_dir)
    removed = 0
    for row in table.itertuples():
        if backbone is not None and backbone not in row.backbone:
            continue
        shutil.rmtree(row.path, ignore_errors=True)
        removed += row.entries
    return removed
