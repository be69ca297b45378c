"""An embedding store: a folder of Parquet files, one row per photo, that grows partition by partition.

Layout (a local folder, or a folder on any fsspec URL: ``s3://bucket/store``, ``gs://...``, ``memory://...``)::

    <root>/.kit-store                         the kit's marker (JSON: kind, format): the folder is the kit's
    <root>/_kit_manifest.json                 what the store holds (derived from the files, rewritten after writes)
    <root>/<backbone>-<12 hex>/part-*.parquet one folder per namespace (backbone weights + preprocessing)

A row is ``path, hash, backbone_key, label, size, mtime_ns, vector``: ``hash`` is the file's content hash
(:func:`kit.io.file_hash`), ``backbone_key`` the backbone's cache key, ``size``/``mtime_ns`` what the file looked
like when it was embedded (a later run skips an unchanged file without reading it), ``vector`` a fixed-size list of
float32 (or float16 with ``dtype="float16"``). Each Parquet file also carries its namespace in its metadata (key
``kit``), so the store describes itself even without the manifest.

Every partition is written to a hidden temporary file (``.tmp-<32 hex>.parquet``) in its folder, flushed to disk
and renamed into place: a run killed at any point leaves complete ``part-*`` files and, at worst, a hidden
temporary file that no reader takes for data (pandas, pyarrow and Dask skip names starting with ``.`` or ``_``)
and that :meth:`EmbeddingStore.clean` removes.

The store only ever deletes or replaces what it wrote: it refuses to write into a folder that holds other files
and has no ``.kit-store`` marker (a folder of photos, a kit cache), and inside its own folder it touches only
names of its own layout (namespace folders, ``part-*.parquet``, its temporary files, the manifest).

Reading it without the kit::

    pd.read_parquet("<root>/<namespace>")          # or "<root>" when it holds one namespace
    dask.dataframe.read_parquet("<root>/<namespace>")
    duckdb.sql("SELECT path, hash FROM '<root>/<namespace>/*.parquet'")   # (DuckDB is not a kit dependency)

With several namespaces in one store, read one namespace's folder: their vectors differ in size.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from .._utils.config import __version__
from .._utils.files import (RemotePath, as_location, atomic_file, atomic_write, is_plain_dir, is_plain_file,
                            marker_kind, read_metadata, read_schema, read_table)
from .._utils.validation import StrOptions, validate_params
from ..embedding import Embeddings
from ..io import empty_unreadable

__all__ = ["EmbeddingStore", "Namespace", "STORE_FORMAT"]

STORE_FORMAT = 1
MARKER = ".kit-store"
MANIFEST = "_kit_manifest.json"
LOCK = ".kit-store.lock"
KIND = "embedding-store"
DTYPES = ("float32", "float16")
COLUMNS = ("path", "hash", "backbone_key", "label", "size", "mtime_ns", "vector")
_PART = re.compile(r"part-[0-9a-f]{20}-[0-9]{6}\.parquet")
_TMP = re.compile(r"\.tmp-(?:[a-z0-9_]{8}|[0-9a-f]{32})\.parquet")  # atomic_file: local (mkstemp) or on a URL
_NS = re.compile(r"[a-z0-9_.-]{1,40}-[0-9a-f]{12}")
#: A temporary file older than this (seconds) belongs to a run that died: :meth:`EmbeddingStore.clean` removes it.
STALE_SECONDS = 600


@dataclass(frozen=True)
class Namespace:
    """Where the vectors of one backbone (weights + preprocessing) live in a store, and their shape.

    ``name`` is the folder: the backbone's name (lower-cased, safe characters) and 12 hex digits of a hash of
    ``backbone_key`` and ``preprocessing``.
    """

    name: str
    backbone: str
    backbone_key: str
    preprocessing: dict = field(hash=False)
    dim: int
    dtype: str = "float32"

    @classmethod
    def of(cls, backbone: str, backbone_key: str, preprocessing: dict, dim: int, dtype: str = "float32"):
        ident = json.dumps({"backbone_key": backbone_key, "preprocessing": preprocessing}, sort_keys=True,
                           default=str)
        digest = hashlib.blake2b(ident.encode(), digest_size=6).hexdigest()
        slug = re.sub(r"[^a-z0-9_.-]+", "_", backbone.lower())[:40].strip("._-") or "backbone"
        prep = json.loads(json.dumps(preprocessing, default=str))  # as the manifest gives it back
        return cls(f"{slug}-{digest}", backbone, backbone_key, prep, int(dim), dtype)

    @classmethod
    def of_spec(cls, spec, resize: str = "center_crop", dim: int | None = None, dtype: str = "float32"):
        """The namespace of ``spec`` (a :class:`kit.backbones.BackboneSpec`) with ``resize``."""
        from ..backbones import EmbedOptions, kind_of

        kind = kind_of(spec)
        return cls.of(spec.name, kind.cache_key(spec), kind.preprocessing(spec, EmbedOptions(resize=resize)),
                      dim if dim is not None else (spec.feature_dim or 0), dtype)

    def to_json(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------ files
def _schema(ns: Namespace):
    import pyarrow as pa

    value = pa.float16() if ns.dtype == "float16" else pa.float32()
    return pa.schema([("path", pa.string()), ("hash", pa.string()), ("backbone_key", pa.string()),
                      ("label", pa.string()), ("size", pa.int64()), ("mtime_ns", pa.int64()),
                      ("vector", pa.list_(value, ns.dim))],
                     metadata={b"kit": json.dumps({**ns.to_json(), "format": STORE_FORMAT,
                                                   "kit_version": __version__}).encode()})


def _vectors_of(table, dim: int) -> np.ndarray:
    """The ``vector`` column of an Arrow table as an (N, dim) float32 array."""
    col = table.column("vector")
    parts = [chunk.flatten().to_numpy(zero_copy_only=False) for chunk in col.chunks if len(chunk)]
    flat = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return flat.astype(np.float32, copy=False).reshape(-1, dim)


def _file_stat(path: str):
    try:
        st = os.stat(path)
    except OSError:
        return None, None
    return int(st.st_size), int(st.st_mtime_ns)


def write_parquet_atomic(folder, name: str, table) -> None:
    """Write an Arrow table as ``folder/name`` atomically (``kit._utils.files.atomic_file``): locally through a
    temporary file of its own, ``fsync`` and ``os.replace``; on a URL written under a hidden name, then moved (an
    object store shows the file only once it is whole). Pages carry CRC checksums, verified on reading."""
    import pyarrow.parquet as pq

    with atomic_file(folder / name, suffix=".parquet") as f:
        pq.write_table(table, f, write_page_checksum=True)  # a damaged page is refused on reading, never read


def _age(path, now: float) -> float:
    """Seconds since ``path`` changed; 0 when the file system does not tell (such a file is never stale)."""
    mtime = path.stat().st_mtime
    return 0.0 if mtime is None else now - mtime


# Per process: which hashes each partition file holds (read once per file), for lookups from Dask workers.
_HASH_INDEX: dict = {}
_HASH_INDEX_LOCK = threading.Lock()


class EmbeddingStore:
    """A folder of Parquet files holding embedding vectors, one row per photo (see the module docstring).

    Creating the object reads and writes nothing; the first write marks the folder as the kit's (``.kit-store``)
    and refuses a folder that already holds other files.

    Parameters
    ----------
    root : str or Path
        The store's folder: a local path, or an fsspec URL (``s3://bucket/photos-store``, ``gs://...``,
        ``memory://...``; the protocol's package, e.g. s3fs, must be installed). On a Dask cluster, every worker
        must see it: a shared folder or an object store.
    dtype : {"float32", "float16"}, optional
        How vectors of a *new* namespace are stored (default float32; float16 halves the size, to about 1e-3
        relative precision). Writing to an existing namespace with another dtype raises.

    Examples
    --------
    >>> import kit, tempfile
    >>> from kit.scale import EmbeddingStore
    >>> store = EmbeddingStore(tempfile.mkdtemp() + "/store")
    >>> emb = kit.embed(kit.datasets.clothing(), backbone="color_hist", use_cache=False)  # doctest: +SKIP
    >>> store.write(emb)  # doctest: +SKIP
    500
    >>> store.read().vectors.shape  # doctest: +SKIP
    (500, 128)
    """

    def __init__(self, root, dtype: str | None = None):
        self.root = as_location(root)
        self.dtype = dtype

    def __repr__(self) -> str:
        return f"EmbeddingStore({str(self.root)!r})"

    def __reduce__(self):
        return (EmbeddingStore, (self.root if isinstance(self.root, RemotePath) else str(self.root), self.dtype))

    # -------------------------------------------------------------- ownership
    def is_store(self) -> bool:
        """True when ``root`` carries the kit's store marker."""
        return marker_kind(self.root, MARKER) == KIND

    def _require_store(self) -> bool:
        """Before reading: False when there is nothing yet; raises for a folder that is not a kit store."""
        if not self.root.exists():
            return False
        if self.is_store():
            return True
        raise ValueError(f"store={str(self.root)!r} is not a kit embedding store (no {MARKER} marker); pass the "
                         f"folder a kit.embed(..., store=...) run wrote, or a new folder")

    def _lock(self):
        """The store's writer lock (``filelock`` on ``<root>/.kit-store.lock``, released by the operating system
        if a process dies): two processes adding the same photos write each row once. One instance per store
        object (it is re-entrant); none on a URL, where object stores offer no lock (one writer at a time)."""
        import contextlib

        if isinstance(self.root, RemotePath):
            return contextlib.nullcontext()
        if getattr(self, "_file_lock", None) is None:
            from filelock import FileLock

            self._file_lock = FileLock(str(self.root / LOCK))
        return self._file_lock

    def _claim(self) -> None:
        """Make ``root`` a store before the first write: a new or empty folder is marked; a folder holding
        anything else (photos, a kit cache) is refused and left as it is."""
        if self.is_store():
            return
        root = self.root
        if root.exists() and not root.is_dir():
            raise ValueError(f"store={str(root)!r} is a file; pass a folder for the embedding store")
        if root.is_dir():
            other = marker_kind(root, ".kit-cache")
            if other is not None:
                raise ValueError(f"store={str(root)!r} is the kit's {other} cache; keep the embedding store in a "
                                 f"folder of its own")
            foreign = sorted(p.name for p in root.iterdir() if not p.name.startswith("."))
            if foreign:
                raise ValueError(f"store={str(root)!r} already holds files that are not a kit embedding store "
                                 f"(e.g. {foreign[0]!r}) and has no {MARKER} marker; pass a new or empty folder "
                                 f"(the kit never writes into a folder of photos)")
        root.mkdir(parents=True, exist_ok=True)
        atomic_write(root / MARKER, json.dumps({"kind": KIND, "format": STORE_FORMAT,
                                                 "kit_version": __version__}, indent=1).encode())

    # -------------------------------------------------------------- namespaces
    def _ns_dirs(self):
        if not self.root.is_dir():
            return []
        return [p for p in sorted(self.root.iterdir()) if _NS.fullmatch(p.name) and is_plain_dir(p)]

    def _part_files(self, ns: str) -> list:
        folder = self.root / ns
        if not is_plain_dir(folder):
            return []
        return [p for p in sorted(folder.iterdir()) if _PART.fullmatch(p.name) and is_plain_file(p)]

    def _manifest(self) -> dict:
        try:
            data = json.loads((self.root / MANIFEST).read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _namespaces(self) -> dict:
        """``{folder name: Namespace}`` from the partition files' own metadata (the record the vectors were written
        with), completed from the manifest for namespaces without a readable partition yet (a damaged or edited
        manifest never changes how vectors are read)."""

        def parse(info):
            try:
                ns = Namespace(**{k: info[k] for k in ("name", "backbone", "backbone_key", "preprocessing", "dim",
                                                       "dtype")})
            except (KeyError, TypeError):
                return None
            ok = (all(isinstance(getattr(ns, k), str) for k in ("name", "backbone", "backbone_key"))
                  and isinstance(ns.preprocessing, dict) and type(ns.dim) is int and ns.dim > 0
                  and ns.dtype in DTYPES)
            return ns if ok else None

        known = {}
        for folder in self._ns_dirs():
            for f in self._part_files(folder.name):
                try:
                    ns = parse(json.loads(read_schema(f).metadata[b"kit"]))
                except (OSError, ValueError, KeyError, TypeError):
                    continue
                if ns is not None and ns.name == folder.name:
                    known[folder.name] = ns
                    break
        listed = self._manifest().get("namespaces")
        for name, info in (listed if isinstance(listed, dict) else {}).items():
            ns = parse(info)
            if name not in known and ns is not None and ns.name == name and _NS.fullmatch(name):
                known[name] = ns
        return known

    def register(self, ns: Namespace) -> Namespace:
        """Claim the folder and record ``ns`` in the manifest (before the first partition of ``ns`` is written).

        Raises when ``ns`` is already there with another vector size or dtype.
        """
        validate_params({"dtype": [StrOptions(set(DTYPES))]}, {"dtype": ns.dtype}, "EmbeddingStore")
        self._claim()
        existing = self._namespaces().get(ns.name)
        if existing is not None:
            if existing.dim != ns.dim:
                raise ValueError(f"store={str(self.root)!r} holds {existing.dim}-d vectors for {ns.backbone!r} "
                                 f"({ns.name}); got {ns.dim}-d ones: the same backbone must give the same size")
            if existing.dtype != ns.dtype:
                raise ValueError(f"store={str(self.root)!r} keeps {ns.backbone!r} as {existing.dtype}; got "
                                 f"dtype={ns.dtype!r}: open it with EmbeddingStore(root, dtype={existing.dtype!r}) "
                                 f"or use another folder")
            return existing
        (self.root / ns.name).mkdir(exist_ok=True)
        self._write_manifest({**self._namespaces(), ns.name: ns})
        return ns

    def namespace(self, backbone=None, resize: str | None = None) -> Namespace:
        """The stored namespace of ``backbone``: None (the only one), a folder name, a backbone name or cache key,
        or a ``BackboneSpec``; ``resize`` picks among several preprocessings of one backbone."""
        found = self._namespaces()
        if isinstance(backbone, str) and backbone in found:
            return found[backbone]
        if backbone is None:
            matches = list(found.values())
        elif isinstance(backbone, str):
            matches = [ns for ns in found.values() if backbone in (ns.backbone, ns.backbone_key)]
        else:
            from ..backbones import kind_of

            key = kind_of(backbone).cache_key(backbone)
            matches = [ns for ns in found.values() if ns.backbone_key == key]
        if resize is not None:
            matches = [ns for ns in matches if ns.preprocessing.get("resize") == resize]
        if len(matches) == 1:
            return matches[0]
        names = sorted(found)
        if not matches:
            what = "nothing yet" if not names else f"only {names}"
            raise ValueError(f"backbone={getattr(backbone, 'name', backbone)!r}"
                             f"{'' if resize is None else f' with resize={resize!r}'}: store={str(self.root)!r} "
                             f"holds {what}; embed into it first (kit.embed(..., store=...))")
        raise ValueError(f"backbone={getattr(backbone, 'name', backbone)!r}: store={str(self.root)!r} holds several "
                         f"namespaces {sorted(ns.name for ns in matches)}; pass one of these names as backbone=")

    def _write_manifest(self, namespaces: dict | None = None) -> None:

        namespaces = self._namespaces() if namespaces is None else namespaces
        out = {}
        for name, ns in sorted(namespaces.items()):
            files = self._part_files(name)
            rows = 0
            for f in files:
                try:
                    rows += read_metadata(f).num_rows
                except (OSError, ValueError):  # deleted since, or damaged (reading it says so)
                    continue
            out[name] = {**ns.to_json(), "partitions": len(files), "rows": rows}
        atomic_write(self.root / MANIFEST, json.dumps({
            "kind": KIND, "format": STORE_FORMAT, "kit_version": __version__,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "namespaces": out}, indent=1).encode())

    def refresh_manifest(self) -> None:
        """Rewrite the manifest from the partition files (after a run, or to repair it)."""
        if self._require_store():
            with self._lock():
                self._write_manifest()

    # -------------------------------------------------------------- writing
    def write_rows(self, ns: Namespace, paths, hashes, vectors, labels=None, sizes=None, mtimes=None,
                   index: int = 0) -> str:
        """Write one partition of ``ns`` atomically (temporary file, flush, rename) and return its file name.

        The low-level step under :meth:`write` and the Dask engine: no de-duplication, no manifest update
        (call :meth:`register` once before, :meth:`refresh_manifest` after).
        """
        import pyarrow as pa

        vectors = np.asarray(vectors, dtype=np.float32)
        n = len(paths)
        if vectors.shape != (n, ns.dim) or len(hashes) != n:
            raise ValueError(f"write_rows got {n} paths, {len(hashes)} hashes and vectors of shape "
                             f"{vectors.shape}; namespace {ns.name} needs ({n}, {ns.dim})")
        value = np.float16 if ns.dtype == "float16" else np.float32
        columns = [pa.array([str(p) for p in paths], pa.string()), pa.array(list(hashes), pa.string()),
                   pa.array([ns.backbone_key] * n, pa.string()),
                   pa.array([None if v is None else str(v) for v in labels] if labels is not None else [None] * n,
                            pa.string()),
                   pa.array(sizes if sizes is not None else [None] * n, pa.int64()),
                   pa.array(mtimes if mtimes is not None else [None] * n, pa.int64()),
                   pa.FixedSizeListArray.from_arrays(pa.array(vectors.astype(value).ravel()), ns.dim)]
        table = pa.Table.from_arrays(columns, schema=_schema(ns))
        folder = self.root / ns.name
        name = f"part-{time.time_ns():016x}{secrets.token_hex(2)}-{int(index):06d}.parquet"
        write_parquet_atomic(folder, name, table)
        return name

    def write(self, embeddings: Embeddings, backbone=None, partition_rows: int = 100_000) -> int:
        """Add the rows of ``embeddings`` (from :func:`kit.embed`) that the store does not hold yet.

        A row is new when its (path, content hash) pair is not in the store: writing the same result twice
        writes nothing the second time; an edited file (new hash) adds a row. Returns the number of rows written.

        Parameters
        ----------
        embeddings : Embeddings
            One vector per photo (face embeddings, several rows per photo, are not stored here).
        backbone : str or BackboneSpec, optional
            The backbone that made them, when ``embeddings.backbone`` is not a registered name (a variant such
            as ``kit.backbones.color_hist("lab")``).
        partition_rows : int
            Rows per Parquet file.
        """
        from .. import backbones as _bb

        if not isinstance(embeddings, Embeddings):
            raise TypeError(f"embeddings={type(embeddings).__name__} must be a kit.Embeddings (from kit.embed)")
        if embeddings.faces is not None:
            raise ValueError("embeddings has several rows per photo (faces); the store keeps one vector per photo: "
                             "save face embeddings with Embeddings.save instead")
        try:
            spec = _bb.get(backbone if backbone is not None else embeddings.backbone)
        except ValueError as exc:
            raise ValueError(f"embeddings.backbone={embeddings.backbone!r} is not a registered backbone name; pass "
                             f"the spec that made them as backbone= ({exc})") from None
        if spec.name != embeddings.backbone:
            raise ValueError(f"backbone={spec.name!r} does not match embeddings.backbone={embeddings.backbone!r}")
        from ..backbones import kind_of

        ns = Namespace.of(spec.name, kind_of(spec).cache_key(spec), embeddings.preprocessing,
                          embeddings.vectors.shape[1], self.dtype or "float32")
        self._claim()
        with self._lock():  # what is there, then what is new, then the writes: one writer at a time
            return self._write_new(embeddings, ns, partition_rows)

    def _write_new(self, embeddings: Embeddings, ns: Namespace, partition_rows: int) -> int:
        existing = self._namespaces().get(ns.name) if self.is_store() else None
        if existing is not None and self.dtype is None:
            ns = existing
        ns = self.register(ns)
        have = set()
        if existing is not None:
            t = self.table(ns.name, columns=["path", "hash"])
            have = set(zip(t["path"], t["hash"]))
        keep = []
        for i, pair in enumerate(zip(embeddings.paths, embeddings.hashes)):
            if pair not in have:
                have.add(pair)
                keep.append(i)
        for k, start in enumerate(range(0, len(keep), int(partition_rows))):
            idx = keep[start:start + int(partition_rows)]
            stats = [_file_stat(embeddings.paths[i]) for i in idx]
            self.write_rows(ns, [embeddings.paths[i] for i in idx], [embeddings.hashes[i] for i in idx],
                            embeddings.vectors[idx],
                            labels=None if embeddings.labels is None else [embeddings.labels[i] for i in idx],
                            sizes=[s for s, _ in stats], mtimes=[m for _, m in stats], index=k)
        self._write_manifest()
        return len(keep)

    # -------------------------------------------------------------- reading
    def partitions(self, backbone=None) -> pd.DataFrame:
        """One row per partition file: namespace, backbone, file, rows, bytes (all namespaces when
        ``backbone`` is None)."""

        rows = []
        if self._require_store():
            spaces = self._namespaces()
            names = sorted(spaces) if backbone is None else [self.namespace(backbone).name]
            for name in names:
                for f in self._part_files(name):
                    rows.append((name, spaces[name].backbone, f.name, read_metadata(f).num_rows,
                                 f.stat().st_size))
        return pd.DataFrame(rows, columns=["namespace", "backbone", "file", "rows", "bytes"]).astype(
            {"rows": "int64", "bytes": "int64"})

    def backbones(self) -> pd.DataFrame:
        """One row per namespace: namespace, backbone, backbone_key, resize, dim, dtype, partitions, rows."""
        parts = self.partitions()
        rows = []
        if self._require_store():
            for name, ns in sorted(self._namespaces().items()):
                mine = parts[parts["namespace"] == name]
                rows.append((name, ns.backbone, ns.backbone_key, ns.preprocessing.get("resize"), ns.dim, ns.dtype,
                             len(mine), int(mine["rows"].sum())))
        return pd.DataFrame(rows, columns=["namespace", "backbone", "backbone_key", "resize", "dim", "dtype",
                                           "partitions", "rows"])

    def table(self, backbone=None, columns=None) -> pd.DataFrame:
        """The rows of one namespace as a plain DataFrame (``columns``: any of ``COLUMNS``; default all but
        ``vector``), partition by partition in the order they were written."""
        import pyarrow as pa

        columns = [c for c in COLUMNS if c != "vector"] if columns is None else list(columns)
        bad = [c for c in columns if c not in COLUMNS]
        if bad:
            raise ValueError(f"columns={columns!r}: {bad} are not store columns; choose from {list(COLUMNS)}")
        if not self._require_store():
            return pd.DataFrame({c: [] for c in columns})
        ns = self.namespace(backbone)
        tables = [read_table(f, columns=columns) for f in self._part_files(ns.name)]
        if not tables:
            return pd.DataFrame({c: [] for c in columns})
        return pa.concat_tables(tables).to_pandas()

    def hashes(self, backbone=None) -> set:
        """Content hashes stored for ``backbone`` (empty when the store or the namespace does not exist yet)."""
        if not self._require_store() or not self._namespaces():
            return set()
        try:
            ns = self.namespace(backbone)
        except ValueError:
            if backbone is None:
                raise
            return set()
        return set(self.table(ns.name, columns=["hash"])["hash"])

    def read(self, backbone=None, paths=None, hashes=None) -> Embeddings:
        """The stored vectors of one namespace as :class:`kit.Embeddings` (float32, one row per (path, hash)).

        Parameters
        ----------
        backbone : None, str or BackboneSpec
            None when the store holds one namespace; else a namespace folder name, a backbone name or spec.
        paths, hashes : iterable of str, optional
            Only these photos (rows whose path, or content hash, is listed), in the store's order.
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        if not self._require_store():
            raise FileNotFoundError(f"store={str(self.root)!r} does not exist; write to it first "
                                    f"(kit.embed(..., store=...) or EmbeddingStore.write)")
        ns = self.namespace(backbone)
        want_p = None if paths is None else pa.array(sorted({str(p) for p in paths}), pa.string())
        want_h = None if hashes is None else pa.array(sorted(set(hashes)), pa.string())
        tables = []
        for f in self._part_files(ns.name):
            t = read_table(f, columns=["path", "hash", "label", "vector"])
            if want_p is not None:
                t = t.filter(pc.is_in(t.column("path"), value_set=want_p))
            if want_h is not None:
                t = t.filter(pc.is_in(t.column("hash"), value_set=want_h))
            if t.num_rows:
                tables.append(t)
        if tables:
            t = pa.concat_tables(tables)
            path_col, hash_col = t.column("path").to_pylist(), t.column("hash").to_pylist()
            label_col = t.column("label").to_pylist()
            vectors = _vectors_of(t, ns.dim)
        else:
            path_col, hash_col, label_col, vectors = [], [], [], np.zeros((0, ns.dim), np.float32)
        first = {}
        for i, pair in enumerate(zip(path_col, hash_col)):
            first.setdefault(pair, i)  # a row written twice (two runs racing) is read once
        keep = sorted(first.values())
        if len(keep) != len(path_col):
            path_col = [path_col[i] for i in keep]
            hash_col = [hash_col[i] for i in keep]
            label_col = [label_col[i] for i in keep]
            vectors = vectors[keep]
        labels = label_col if label_col and all(v is not None for v in label_col) else None
        return Embeddings(vectors=np.ascontiguousarray(vectors, dtype=np.float32), paths=path_col, labels=labels,
                          backbone=ns.backbone, preprocessing=dict(ns.preprocessing), unreadable=empty_unreadable(),
                          hashes=hash_col, stats={"cached": len(path_col), "computed": 0, "photos": len(path_col),
                                                  "rows": len(path_col), "store": str(self.root),
                                                  "namespace": ns.name})

    def vectors_for(self, hashes, backbone) -> dict:
        """``{hash: float32 vector}`` for the given content hashes found in the namespace ``backbone``.

        Used by workers to reuse a vector when the same photo comes back under another path; the file -> hashes
        index is kept per process and only new partition files are read on each call.
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        wanted = set(hashes)
        if not wanted or not self.root.is_dir():
            return {}
        ns = backbone if isinstance(backbone, Namespace) else self.namespace(backbone)
        key = (str(self.root.resolve()), ns.name)
        files = self._part_files(ns.name)
        with _HASH_INDEX_LOCK:
            seen, where = _HASH_INDEX.setdefault(key, (set(), {}))
            for f in files:
                if f.name not in seen:
                    try:
                        for h in read_table(f, columns=["hash"]).column("hash").to_pylist():
                            where.setdefault(h, f.name)
                    except OSError:
                        continue
                    seen.add(f.name)
            by_file: dict = {}
            for h in wanted:
                if h in where:
                    by_file.setdefault(where[h], []).append(h)
        out = {}
        for name, hs in by_file.items():
            try:
                t = read_table(self.root / ns.name / name, columns=["hash", "vector"])
            except OSError:  # the partition was deleted since: those photos are computed again
                continue
            t = t.filter(pc.is_in(t.column("hash"), value_set=pa.array(hs, pa.string())))
            for h, v in zip(t.column("hash").to_pylist(), _vectors_of(t, ns.dim)):
                out.setdefault(h, v)
        return out

    # -------------------------------------------------------------- deleting (only the kit's own files)
    def clean(self, older_than: float = STALE_SECONDS) -> int:
        """Remove temporary files left by killed runs (the kit's ``.tmp-<32 hex>.parquet`` names only, older
        than ``older_than`` seconds so that a run still writing keeps its own). Returns how many."""
        if not self._require_store():
            return 0
        removed = 0
        now = time.time()
        for folder in self._ns_dirs():
            for f in folder.iterdir():
                if _TMP.fullmatch(f.name) and is_plain_file(f) and _age(f, now) >= older_than:
                    f.unlink(missing_ok=True)
                    removed += 1
        return removed

    def clear(self, backbone=None) -> int:
        """Delete stored partitions (all namespaces, or the one of ``backbone``) and return how many files.

        The folder must carry the ``.kit-store`` marker (else ``ValueError`` and nothing is deleted); only the
        kit's partition and temporary files are removed, then namespace folders that became empty. Anything
        else in the folder stays, and so do the marker and the manifest.
        """
        if not self.root.exists():
            return 0
        if not self.is_store():
            raise ValueError(f"store={str(self.root)!r} is not a kit embedding store (no {MARKER} marker), so "
                             f"nothing was deleted; pass the folder the kit wrote")
        names = [self.namespace(backbone).name] if backbone is not None else [p.name for p in self._ns_dirs()]
        removed = 0
        for name in names:
            folder = self.root / name
            for f in self._part_files(name):
                f.unlink(missing_ok=True)
                removed += 1
            if is_plain_dir(folder):
                for f in folder.iterdir():
                    if _TMP.fullmatch(f.name) and is_plain_file(f):
                        f.unlink(missing_ok=True)
                try:
                    folder.rmdir()  # stays when something the kit did not write is in it
                except OSError:
                    pass
        with _HASH_INDEX_LOCK:
            for key in [k for k in _HASH_INDEX if k[0] == str(self.root.resolve())]:
                del _HASH_INDEX[key]
        self._write_manifest({k: v for k, v in self._namespaces().items() if (self.root / k).is_dir()})
        return removed
