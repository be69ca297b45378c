"""The one routine every embedder kind goes through.

Hash the files (done by :class:`kit.io.ImageSet`), look up the cache, embed only what is missing (each
identical file once), write each result atomically as it arrives, reassemble the rows in input order, report
unreadable files with their reason, report progress. Nothing here depends on the kind: a kind only supplies
``compute`` (photos -> records), ``rows`` (record -> vectors) and its cache identity (:mod:`kit.backbones`).
"""
from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import costs
from ..backbones import BackboneSpec, EmbedOptions, Kind
from ..io import ImageSet, empty_unreadable
from ..progress import report
from ._cache import EmbeddingCache


@dataclass
class Embeddings:
    """Embedding vectors of a set of images.

    Attributes
    ----------
    vectors : ndarray (N, D) float32, rows L2-normalised (face backbones: dlib's raw descriptors, see kit.faces)
    paths : list of str, one per row (face backbones: the photo each face comes from)
    labels : list of str or None
    backbone : str
    preprocessing : dict
    unreadable : DataFrame (path, reason): images that could not be embedded
    hashes : list of str, content hash per row
    stats : dict: ``cached``, ``computed``, ``seconds``, ``photos``, ``rows``
    faces : DataFrame or None
        Kinds with several rows per photo (faces): one row per vector (path, face, faces_in_photo, left, top,
        right, bottom, score).
    """

    vectors: np.ndarray
    paths: list
    labels: list | None
    backbone: str
    preprocessing: dict
    unreadable: pd.DataFrame = field(default_factory=empty_unreadable)
    hashes: list = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    faces: pd.DataFrame | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def fingerprint(self) -> str:
        """A digest of what results computed from these embeddings depend on: the vectors, the paths, the labels
        and the backbone (32 hex digits). With ``kit.code_digest`` it keys results that persist."""
        h = hashlib.blake2b(np.ascontiguousarray(self.vectors).tobytes(), digest_size=16)
        h.update(f"{self.vectors.shape}|{self.vectors.dtype}|{self.backbone}".encode())
        h.update("\n".join(self.paths).encode())
        h.update(repr(self.labels).encode())
        return h.hexdigest()

    def __repr__(self) -> str:
        return (f"Embeddings({self.vectors.shape[0]} x {self.vectors.shape[1]}, backbone={self.backbone!r}, "
                f"{len(self.unreadable)} unreadable)")

    def save(self, path) -> None:
        """Write an ``.npz`` with arrays ``vectors``, ``paths`` (and ``labels`` when known)."""
        arrays = {"vectors": self.vectors, "paths": np.asarray(self.paths, dtype=str),
                  "backbone": np.asarray(self.backbone)}
        if self.labels is not None:
            arrays["labels"] = np.asarray(self.labels, dtype=str)
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path) -> "Embeddings":
        """Read an ``.npz`` written by ``save`` (or any npz with ``vectors`` and ``paths``)."""
        with np.load(path, allow_pickle=False) as z:
            return cls(vectors=z["vectors"].astype(np.float32), paths=[str(p) for p in z["paths"]],
                       labels=[str(x) for x in z["labels"]] if "labels" in z else None,
                       backbone=str(z["backbone"]) if "backbone" in z else "unknown", preprocessing={})


def cost_key(backbone: str, tta: str | None = None) -> str:
    """The ``kit.costs`` key of embedding with ``backbone`` (test-time augmentation costs more: its own key)."""
    return backbone if not tta else f"{backbone}+{tta}"


def _record_cost(spec: BackboneSpec, count: int, t_start: float, first: list, tta=None) -> None:
    """Remember the per-photo cost of this backbone here (``kit.costs``), the first batch apart (it carries the
    model's loading)."""
    end = time.perf_counter()
    if count < 8:
        return
    if first and count > first[0][1]:
        t_first, done_first = first[0]
        per_item = (end - t_first) / (count - done_first)
        startup = max(0.0, (t_first - t_start) - per_item * done_first)
    else:
        per_item, startup = (end - t_start) / count, 0.0
    costs.record("embed", cost_key(spec.name, tta), count, per_item * count, startup)


def _compute(kind, spec, todo, paths, hashes, options, sub_progress, stats, records, bad, cache, first) -> None:
    """Embed the photos ``todo`` (indices), filling ``records`` (and the cache) and ``bad`` (hash -> reason)."""
    if not todo:
        return
    t_compute = time.perf_counter()
    for j, record, reason in kind.compute(spec, [paths[i] for i in todo], options, sub_progress, stats):
        h = hashes[todo[j]]
        if record is None:
            bad[h] = reason
            continue
        record = np.asarray(record, dtype=np.float32).ravel()
        records[h] = record
        if cache is not None:
            cache.put([h], record.reshape(1, -1))
    _record_cost(spec, len(todo), t_compute, first, options.tta)


def run(imageset: ImageSet, spec: BackboneSpec, kind: Kind, options: EmbedOptions, cache_dir=None,
        use_cache: bool = True, progress=None) -> Embeddings:
    """Embed ``imageset`` with ``spec`` (of ``kind``): see the module docstring. The same for every kind."""
    t0 = time.perf_counter()
    if options.tta and not kind.supports_tta:
        raise ValueError(f"tta={options.tta!r}: backbone {spec.name!r} does not support test-time "
                         f"augmentation; pass tta=None")
    preprocessing = kind.preprocessing(spec, options)
    cache = EmbeddingCache(kind.cache_key(spec), preprocessing, cache_dir) if use_cache else None
    paths, hashes = imageset.paths, imageset.hashes
    n = len(paths)
    records = cache.get(set(hashes)) if cache is not None else {}
    records = {h: r for h, r in records.items() if kind.record_ok(spec, r)}  # a damaged entry is computed again
    first_of_hash: dict = {}
    for i, h in enumerate(hashes):
        if h not in records and h not in first_of_hash:
            first_of_hash[h] = i
    todo = list(first_of_hash.values())  # identical files are embedded once
    cached = sum(h in records for h in hashes)
    report(progress, cached, n, "loading model" if todo else kind.stage)

    first: list = []  # (time, items done) at the first progress report: what a fixed startup cost

    def sub_progress(done, total, stage):
        if not first and done > 0:
            first.append((time.perf_counter(), done))
        report(progress, min(n, cached + done), n, stage)

    bad: dict = {}
    stats: dict = {}
    lock = cache.work_lock([hashes[i] for i in todo]) if todo and cache is not None else contextlib.nullcontext()
    with lock:
        if todo and cache is not None and not isinstance(lock, contextlib.nullcontext):
            done = cache.get([hashes[i] for i in todo])  # another process may have computed them meanwhile
            done = {h: r for h, r in done.items() if kind.record_ok(spec, r)}
            if done:
                records.update(done)
                todo = [i for i in todo if hashes[i] not in done]
        _compute(kind, spec, todo, paths, hashes, options, sub_progress, stats, records, bad, cache, first)

    rows, row_paths, labels, row_hashes, table, unreadable = [], [], [], [], [], []
    empty = 0
    for i, (p, h) in enumerate(zip(paths, hashes)):
        if h not in records:
            unreadable.append((p, bad.get(h, "not embedded")))
            continue
        vectors, extra = kind.rows(spec, records[h])
        if len(vectors) == 0:
            unreadable.append((p, kind.empty_reason))
            empty += 1
            continue
        rows.extend(vectors)
        row_paths.extend([p] * len(vectors))
        row_hashes.extend([h] * len(vectors))
        if imageset.labels is not None:
            labels.extend([imageset.labels[i]] * len(vectors))
        if extra is not None:
            table.extend((p, *r) for r in extra)
    dim = spec.feature_dim or (len(rows[0]) if rows else 0)
    vectors = np.vstack(rows).astype(np.float32) if rows else np.zeros((0, dim), np.float32)
    vectors = kind.finalize(spec, vectors)
    bad_table = pd.DataFrame(unreadable, columns=["path", "reason"])
    bad_table = pd.concat([imageset.unreadable, bad_table], ignore_index=True) if len(bad_table) else \
        imageset.unreadable.copy()
    regions = None
    if kind.table_columns:
        regions = pd.DataFrame(table, columns=["path", *kind.table_columns[0]]).astype(kind.table_columns[1])
    names = {"rows": "rows", "empty": "empty", **kind.stat_names}
    report(progress, n, n, kind.stage)
    return Embeddings(
        vectors=vectors, paths=row_paths, labels=labels if imageset.labels is not None else None,
        backbone=spec.name, preprocessing=preprocessing, unreadable=bad_table, hashes=row_hashes,
        stats={"cached": cached, "computed": len(todo) - len(bad), "seconds": time.perf_counter() - t0,
               "photos": n, names["rows"]: len(rows), names["empty"]: empty, **kind.default_stats, **stats},
        faces=regions,
    )
