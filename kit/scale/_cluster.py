"""Clustering an :class:`~kit.scale.EmbeddingStore` too large to hold in memory: k-means trained on a sample and
assigned partition by partition, a uniform sample for scores and K, projections fitted on a sample and applied to
every row.

The layers, each usable alone:

* :func:`write_vectors`: vectors made elsewhere (another model, generated data) into a store;
* :func:`iter_partitions`: the rows of a store one Parquet partition at a time (never all at once);
* :func:`sample`: a uniform random sample of rows as :class:`kit.Embeddings` (for ``kit.k.estimate``,
  ``kit.metrics``, fitting anything that does not need every row);
* :func:`assign`: each row's nearest centroid, partition by partition, written as a labels dataset beside the
  store (or returned as a table), optionally on Dask;
* :func:`kmeans`: the composition: :func:`sample`, ``kit.cluster.KMeans(backend="faiss")`` on it, :func:`assign`;
* :func:`score_labels`: external scores of a labels dataset against the store's ``label`` column, on every row;
* :func:`project_store`: a PCA / UMAP / t-SNE map fitted on a sample, every row placed on it partition by partition.

kNN graphs of many rows (approximate indexes and their recall) are in :func:`kit.scale.knn_graph`.

Labels datasets live inside the store's own folder (it must carry the ``.kit-store`` marker), under
``<store>/_labels/<namespace>/<name>/``: one ``part-<6 digits>.parquet`` per store partition (``path``, ``hash``,
``cluster``, ``distance``: the squared L2 distance to the centroid), ``_centroids.npy`` and ``_kit_labels.json``.
A name starting with ``_`` keeps them out of ``pd.read_parquet(store)``; ``pd.read_parquet(result.labels_path)``
reads one. A run writes into a hidden ``.tmp-<32 hex>`` folder and swaps it into place; replacing a labels set
deletes only the files of that layout (a folder holding anything else is refused and left as it is).

Dask is imported only when ``client=`` is given; faiss, scikit-learn and pyarrow when a function runs.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path

import numpy as np
import pandas as pd

from .._utils.config import __version__
from .._utils.files import RemotePath, is_plain_dir, is_plain_file, read_metadata, read_table
from .._utils.validation import Interval, StrOptions, validate_params
from ..embedding import Embeddings
from ..io import empty_unreadable
from ..progress import report
from ._store import _TMP, STALE_SECONDS, EmbeddingStore, _vectors_of, write_parquet_atomic

__all__ = ["StoreKMeans", "StoreProjection", "assign", "default_sample_size", "iter_partitions", "kmeans",
           "project_store", "read_labels", "sample", "score_labels", "write_vectors"]

LABELS = "_labels"
LABELS_META = "_kit_labels.json"
CENTROIDS = "_centroids.npy"
_LABEL_PART = re.compile(r"part-[0-9]{6}\.parquet")
_LABEL_TMP = re.compile(r"\.(tmp|old)-[0-9a-f]{32}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_POSITIVE_INT = Interval(Integral, 1, None, closed="left")


# ------------------------------------------------------------------ writing vectors made elsewhere
def write_vectors(store, vectors, *, paths=None, labels=None, name: str = "vectors", partition_rows: int = 100_000,
                  dtype: str = "float32") -> EmbeddingStore:
    """Write vectors that did not come from ``kit.embed`` (another model, generated data) into a store, as
    namespace ``name`` (backbone key ``external:<name>``), ``partition_rows`` rows per Parquet file.

    ``paths`` default to ``row-<n>`` and stand in for content hashes too; ``vectors`` may be an array or an
    iterable of arrays (chunks), so a store larger than memory can be written chunk by chunk.
    Returns the store.
    """
    from ._store import Namespace

    validate_params({"name": [str], "partition_rows": [_POSITIVE_INT]}, {"name": name,
                                                                         "partition_rows": partition_rows},
                    "write_vectors")
    store = store if isinstance(store, EmbeddingStore) else EmbeddingStore(store, dtype=dtype)
    chunks = [vectors] if isinstance(vectors, np.ndarray) else vectors
    ns, start, part = None, 0, 0
    for chunk in chunks:
        chunk = np.asarray(chunk, dtype=np.float32)
        if ns is None:
            ns = store.register(Namespace.of(name, f"external:{name}", {}, chunk.shape[1], store.dtype or dtype))
        for lo in range(0, len(chunk), int(partition_rows)):
            rows = chunk[lo:lo + int(partition_rows)]
            at = np.arange(start + lo, start + lo + len(rows))
            ids = [f"row-{i:09d}" for i in at] if paths is None else [str(paths[i]) for i in at]
            store.write_rows(ns, ids, ids, rows, labels=None if labels is None else [labels[i] for i in at],
                             index=part)
            part += 1
        start += len(chunk)
    store.refresh_manifest()
    return store


# ------------------------------------------------------------------ reading
def _store(store) -> EmbeddingStore:
    if isinstance(store, EmbeddingStore):
        out = store
    elif isinstance(store, (str, os.PathLike)):
        out = EmbeddingStore(store)
    else:
        raise TypeError(f"store={type(store).__name__} must be a kit.scale.EmbeddingStore or the path of one")
    if not out._require_store():
        raise FileNotFoundError(f"store={str(out.root)!r} does not exist; write to it first "
                                f"(kit.embed(..., store=...) or EmbeddingStore.write)")
    return out


def _partition_files(store: EmbeddingStore, backbone):
    """``(namespace, [(file, rows), ...])`` from the Parquet footers (no vector is read)."""
    ns = store.namespace(backbone)
    files = [(f, read_metadata(f).num_rows) for f in store._part_files(ns.name)]
    if not files or not sum(r for _, r in files):
        raise ValueError(f"store={str(store.root)!r} holds no rows for {ns.name}; embed into it first")
    return ns, files


def _read_partition(path, columns):
    """One partition file as an Arrow table (the only place this module reads vectors from disk)."""
    return read_table(path, columns=columns)


def iter_partitions(store, backbone=None, columns=("path", "hash", "label")):
    """Yield ``(file name, DataFrame of columns, float32 vectors)`` for each partition of one namespace, in the
    store's order, reading one partition at a time.

    Examples
    --------
    >>> from kit.scale import iter_partitions
    >>> for name, rows, vectors in iter_partitions("photos.store"):  # doctest: +SKIP
    ...     print(name, len(rows), vectors.shape)
    """
    store = _store(store)
    ns, files = _partition_files(store, backbone)
    columns = list(columns)
    for f, _ in files:
        table = _read_partition(f, [*columns, "vector"])
        yield f.name, table.select(columns).to_pandas(), _vectors_of(table, ns.dim)


def _seed(random_state) -> int:
    from .._utils.arrays import as_seed as seed

    return seed(random_state)


def _choose(n_rows: int, size: int, random_state) -> np.ndarray:
    """Sorted positions of a uniform sample of ``size`` rows out of ``n_rows`` (all when size >= n_rows)."""
    if size >= n_rows:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(_seed(random_state)).choice(n_rows, size, replace=False))


def sample(store, n: int, random_state=0, backbone=None) -> Embeddings:
    """A uniform random sample of ``n`` rows of a store (all rows when it holds fewer), in the store's order.

    Reads the partitions one at a time and keeps only the sampled rows, so memory is the sample plus one
    partition. Use it for what does not need every row: ``kit.k.estimate(s.vectors)``, internal scores
    (``kit.metrics.silhouette``), external ones on the sample's ``labels`` (the store's ``label`` column, None when
    a row has none), fitting a projection or k-means.

    Returns
    -------
    Embeddings
        ``vectors`` (n, D) float32, ``paths``, ``hashes``, ``labels``; ``stats`` holds ``sampled``, ``rows`` (the
        store's row count), ``store``, ``namespace``.

    Examples
    --------
    >>> from kit.scale import sample
    >>> s = sample("photos.store", 20_000, random_state=0)  # doctest: +SKIP
    >>> kit.k.estimate(s.vectors).k  # doctest: +SKIP
    """
    validate_params({"n": [_POSITIVE_INT], "random_state": ["random_state"]},
                    {"n": n, "random_state": random_state}, "sample")
    import pyarrow as pa

    store = _store(store)
    ns, files = _partition_files(store, backbone)
    total = sum(r for _, r in files)
    chosen = _choose(total, int(n), random_state)
    tables, start = [], 0
    for f, rows in files:
        lo, hi = np.searchsorted(chosen, [start, start + rows])
        if hi > lo:
            tables.append(_read_partition(f, ["path", "hash", "label", "vector"]).take(chosen[lo:hi] - start))
        start += rows
    t = pa.concat_tables(tables)
    labels = t.column("label").to_pylist()
    return Embeddings(vectors=np.ascontiguousarray(_vectors_of(t, ns.dim)), paths=t.column("path").to_pylist(),
                      labels=labels if all(v is not None for v in labels) else None, backbone=ns.backbone,
                      preprocessing=dict(ns.preprocessing), unreadable=empty_unreadable(),
                      hashes=t.column("hash").to_pylist(),
                      stats={"sampled": t.num_rows, "rows": total, "store": str(store.root), "namespace": ns.name})


# ------------------------------------------------------------------ k-means: assignment
@dataclass
class StoreKMeans:
    """k-means of a store: trained on a sample, every row assigned to its nearest centroid.

    Attributes
    ----------
    centroids : ndarray (k, D) float32
    k : int
    sample_size : int
        Rows the centroids were trained on (0 when :func:`assign` was given centroids).
    n_rows : int
        Rows assigned (every row of the namespace).
    inertia : float
        Sum over every row of the squared L2 distance to its centroid.
    seconds : float
        Wall time of the whole call; ``timings`` splits it (``sample``, ``train``, ``assign``).
    labels_path : Path or None
        The labels dataset (``pd.read_parquet(labels_path)``: path, hash, cluster, distance); None with
        ``write=False``.
    labels : DataFrame or None
        With ``write=False``: the same columns in memory, in the store's order.
    """

    centroids: np.ndarray
    k: int
    sample_size: int
    n_rows: int
    inertia: float
    seconds: float
    labels_path: Path | None = None
    labels: pd.DataFrame | None = None
    namespace: str = ""
    partitions: int = 0
    timings: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    def predict(self, X) -> np.ndarray:
        """The nearest centroid of each row of ``X`` (array or Embeddings), as int64."""
        return _nearest(_index(self.centroids), _matrix(X, self.centroids.shape[1]))[0].astype(np.int64)

    def read_labels(self) -> pd.DataFrame:
        """The labels as a plain DataFrame (path, hash, cluster, distance), in the store's order."""
        if self.labels is not None:
            return self.labels
        return read_labels(self.labels_path)


def _matrix(X, dim: int) -> np.ndarray:
    X = np.ascontiguousarray(X.vectors if isinstance(X, Embeddings) else X, dtype=np.float32)
    if X.ndim != 2 or X.shape[1] != dim:
        raise ValueError(f"X has shape {X.shape}; the centroids need (N, {dim}) vectors of the same backbone")
    return X


def _index(centroids):
    import faiss

    index = faiss.IndexFlatL2(centroids.shape[1])
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    return index


def _nearest(index, X):
    dist, lab = index.search(X, 1)
    return lab[:, 0].astype(np.int32), dist[:, 0].astype(np.float32)


def _label_schema(meta: dict):
    import pyarrow as pa

    return pa.schema([("path", pa.string()), ("hash", pa.string()), ("cluster", pa.int32()),
                      ("distance", pa.float32())], metadata={b"kit": json.dumps(meta).encode()})


def _assign_file(source, dim, centroids, folder, index, meta):
    """Label one store partition (what each Dask task runs): returns ``(rows, inertia, table or file name)``.

    With ``folder``, the labels are written there atomically (temporary name, flush, rename) as
    ``part-<index>.parquet``; without, the Arrow table is returned."""
    import pyarrow as pa

    table = _read_partition(source, ["path", "hash", "vector"])
    lab, dist = _nearest(_index(centroids), np.ascontiguousarray(_vectors_of(table, dim)))
    out = pa.Table.from_arrays([table.column("path"), table.column("hash"), pa.array(lab, pa.int32()),
                                pa.array(dist, pa.float32())],
                               schema=_label_schema({**meta, "source": source.name if isinstance(source, RemotePath)
                                                     else Path(source).name}))
    inertia = float(dist.astype(np.float64).sum())
    if folder is None:
        return table.num_rows, inertia, out
    name = f"part-{int(index):06d}.parquet"
    write_parquet_atomic(Path(folder), name, out)
    return table.num_rows, inertia, name


def _own_labels_files(folder: Path) -> list:
    """Every entry of a labels set folder, refusing the folder when one is not of the kit's layout."""
    entries = list(folder.iterdir())
    foreign = [p.name for p in entries
               if not (is_plain_file(p) and (_LABEL_PART.fullmatch(p.name) or p.name in (LABELS_META, CENTROIDS)))]
    if foreign:
        raise ValueError(f"{str(folder)!r} holds files the kit did not write (e.g. {sorted(foreign)[0]!r}); it was "
                         f"left as it is: pass another name= or move them away")
    return entries


def _remove_labels_folder(folder: Path) -> None:
    for p in _own_labels_files(folder):
        p.unlink(missing_ok=True)
    folder.rmdir()


def _clean_stale(parent: Path) -> None:
    """Hidden work folders of runs that died (``.tmp-``/``.old-`` + 32 hex, older than STALE_SECONDS)."""
    now = time.time()
    for p in parent.iterdir():
        if _LABEL_TMP.fullmatch(p.name) and is_plain_dir(p) and now - p.stat().st_mtime >= STALE_SECONDS:
            for f in p.iterdir():
                if is_plain_file(f) and (_LABEL_PART.fullmatch(f.name) or f.name in (LABELS_META, CENTROIDS)
                                       or _TMP.fullmatch(f.name)):
                    f.unlink(missing_ok=True)
            try:
                p.rmdir()
            except OSError:
                pass


def _labels_parent(store: EmbeddingStore, ns_name: str) -> Path:
    if not store.is_store():  # _store() checked it exists; never write into a folder that is not the kit's
        raise ValueError(f"store={str(store.root)!r} is not a kit embedding store")
    parent = store.root / LABELS / ns_name
    for p in (store.root / LABELS, parent):
        if p.exists() and not is_plain_dir(p):
            raise ValueError(f"{str(p)!r} is not a folder the kit made; move it away to write labels")
        p.mkdir(exist_ok=True)
    return parent


def _target(store: EmbeddingStore, ns_name: str, name: str, write: bool):
    """The labels set's folder (None without ``write``), refused before any work when ``name`` is not a plain
    folder name or the folder holds anything the kit did not write."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"name={name!r} must be 1 to 64 letters, digits, '_', '.' or '-', not starting with "
                         f"'.' or '_' (it names a folder)")
    if not write:
        return None
    if isinstance(store.root, RemotePath):
        raise ValueError(f"store={str(store.root)!r} is on a URL: labels datasets are written beside local stores "
                         f"only; pass write=False (the labels come back in result.labels) or copy the store to a "
                         f"local folder")
    final = _labels_parent(store, ns_name) / name
    if final.exists():
        if not is_plain_dir(final):
            raise ValueError(f"{str(final)!r} is not a folder the kit made; pass another name=")
        _own_labels_files(final)
    return final


def read_labels(path) -> pd.DataFrame:
    """A labels dataset written by :func:`assign` / :func:`kmeans` as a plain DataFrame (path, hash, cluster,
    distance), partition by partition in the store's order."""
    import pyarrow as pa

    folder = Path(path)
    files = sorted(p for p in folder.iterdir() if _LABEL_PART.fullmatch(p.name)) if is_plain_dir(folder) else []
    if not files:
        raise FileNotFoundError(f"path={str(path)!r} holds no labels dataset; run kit.scale.kmeans first")
    return pa.concat_tables([_read_partition(f, ["path", "hash", "cluster", "distance"]) for f in files]).to_pandas()


#: What :func:`score_labels` computes (kit.metrics names; AMI is left out: its expected-MI term is slow at
#: a thousand classes by a thousand clusters).
SCORES = ("nmi", "ari", "homogeneity", "completeness", "v_measure", "purity", "hungarian_accuracy", "pairwise_f",
          "bcubed_f")


def score_labels(labels) -> dict:
    """External scores of a labels dataset against the store's own ``label`` column, on every row.

    Streams the store's partitions with their labels files (each labels file names the partition it labels) and
    keeps only two int32 codes per row, so a few hundred million rows fit; then :mod:`kit.metrics` computes
    :data:`SCORES`. Returns a dict of floats with ``rows``.

    Parameters
    ----------
    labels : StoreKMeans or path
        A result written by :func:`kmeans` / :func:`assign`, or its ``labels_path``.
    """
    from .. import metrics

    if isinstance(labels, StoreKMeans) and labels.labels_path is None:
        raise ValueError("labels was computed with write=False: score labels.labels with kit.metrics.score and the "
                         "store's labels (store.table(columns=['path', 'label']))")
    folder = Path(labels.labels_path if isinstance(labels, StoreKMeans) else labels)
    files = sorted(p for p in folder.iterdir() if _LABEL_PART.fullmatch(p.name)) if is_plain_dir(folder) else []
    if not files:
        raise FileNotFoundError(f"labels={str(folder)!r} holds no labels dataset; run kit.scale.kmeans first")
    import pyarrow.parquet as pq

    source_dir = folder.parents[2] / folder.parent.name  # <store>/<namespace>: the partitions labelled
    codes: dict = {}
    truth, pred = [], []
    for f in files:
        source = source_dir / json.loads(pq.read_schema(f).metadata[b"kit"])["source"]
        if not is_plain_file(source):
            raise FileNotFoundError(f"{f.name} of labels={str(folder)!r} labels {str(source)!r}, which is gone; "
                                    f"assign the store again")
        rows, mine = _read_partition(source, ["path", "label"]), _read_partition(f, ["path", "cluster"])
        if not rows.column("path").equals(mine.column("path")):
            raise ValueError(f"{f.name} of labels={str(folder)!r} does not match the rows of {source.name}")
        names = rows.column("label").to_pylist()
        if any(v is None for v in names):
            raise ValueError(f"the store's partition {source.name} has rows without a label: external scores need "
                             f"the truth for every row")
        truth.append(np.array([codes.setdefault(v, len(codes)) for v in names], np.int32))
        pred.append(mine.column("cluster").to_numpy())
    t, p = np.concatenate(truth), np.concatenate(pred)
    out = {name: float(getattr(metrics, name)(t, p)) for name in SCORES}
    return {**out, "rows": float(len(t))}


_ASSIGN_CONSTRAINTS = {"name": [str, None], "write": ["boolean"], "progress": [callable, None]}


def assign(store, centroids, *, backbone=None, name: str | None = None, write: bool = True, client=None,
           progress=None, _meta=None) -> StoreKMeans:
    """Assign every row of a store to its nearest centroid (squared L2), one partition at a time.

    Parameters
    ----------
    store : EmbeddingStore or path
    centroids : array (k, D)
    backbone : optional
        The namespace, when the store holds several (see :meth:`EmbeddingStore.namespace`).
    name : str, optional
        The labels set's name (default ``kmeans-<k>``): written to ``<store>/_labels/<namespace>/<name>/``,
        replacing a previous set of that name once the new one is complete.
    write : bool, default True
        False keeps the labels in memory (``result.labels``) instead: fine up to a few million rows.
    client : distributed.Client, optional
        Assign the partitions as Dask tasks (every worker must see the store's folder); None: in this process.
    progress : callable(done, total, stage), optional
        Stage ``"assign"``, ``done`` counting rows.

    Returns
    -------
    StoreKMeans
        ``sample_size`` 0 (the centroids came from elsewhere).
    """
    validate_params(_ASSIGN_CONSTRAINTS, {"name": name, "write": write, "progress": progress}, "assign")
    t0 = time.perf_counter()
    store = _store(store)
    ns, files = _partition_files(store, backbone)
    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    if centroids.ndim != 2 or centroids.shape[1] != ns.dim or not len(centroids):
        raise ValueError(f"centroids has shape {centroids.shape}; {ns.name} needs (k, {ns.dim}) with k >= 1")
    k = len(centroids)
    name = f"kmeans-{k}" if name is None else name
    meta = {"kind": "labels", "kit_version": __version__, "namespace": ns.name, "k": k, **(_meta or {})}
    final = _target(store, ns.name, name, write)
    tmp = None
    if write:
        _clean_stale(final.parent)
        tmp = final.parent / f".tmp-{secrets.token_hex(16)}"
        tmp.mkdir()
    total = sum(r for _, r in files)
    try:
        results = _run_assign(files, ns.dim, centroids, tmp, meta, client, progress, total)
        if write:
            np.save(tmp / CENTROIDS, centroids)
            (tmp / LABELS_META).write_text(json.dumps({**meta, "rows": total, "partitions": len(files)}, indent=1))
            if final.exists():
                old = final.parent / f".old-{secrets.token_hex(16)}"
                os.replace(final, old)
                os.replace(tmp, final)
                _remove_labels_folder(old)
            else:
                os.replace(tmp, final)
    except BaseException:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)  # a hidden folder this call made, of its own files only
        raise
    labels = None
    if not write:
        import pyarrow as pa

        labels = pa.concat_tables([r[2] for r in results]).to_pandas()
    return StoreKMeans(centroids=centroids, k=k, sample_size=0, n_rows=int(sum(r[0] for r in results)),
                       inertia=float(sum(r[1] for r in results)), seconds=time.perf_counter() - t0,
                       labels_path=final, labels=labels, namespace=ns.name, partitions=len(files),
                       timings={"assign": time.perf_counter() - t0}, params={"name": name})


def _run_assign(files, dim, centroids, folder, meta, client, progress, total):
    done = 0
    report(progress, 0, total, "assign")
    if client is None:
        out = []
        for i, (f, rows) in enumerate(files):
            out.append(_assign_file(f, dim, centroids, folder, i, meta))
            done += rows
            report(progress, done, total, "assign")
        return out
    from distributed import as_completed

    shared = client.scatter(centroids, broadcast=True)
    futures = {client.submit(_assign_file, f if isinstance(f, RemotePath) else str(f), dim, shared,
                             None if folder is None else str(folder), i, meta, pure=False): i
               for i, (f, _) in enumerate(files)}
    out = [None] * len(files)
    try:
        for fut in as_completed(futures):
            i = futures[fut]
            out[i] = fut.result()
            done += files[i][1]
            report(progress, done, total, "assign")
    except BaseException:
        client.cancel(list(futures))
        raise
    return out


# ------------------------------------------------------------------ k-means: the composition
_KMEANS_CONSTRAINTS = {"n_clusters": [_POSITIVE_INT], "sample_size": [_POSITIVE_INT, None],
                       "n_init": [_POSITIVE_INT], "max_iter": [_POSITIVE_INT], "random_state": ["random_state"]}


def default_sample_size(n_clusters: int, n_rows: int) -> int:
    """``min(N, max(256 K, 100,000))``: faiss's own default of 256 training points per centroid, and at least
    100,000 rows."""
    return int(min(n_rows, max(256 * n_clusters, 100_000)))


def kmeans(store, n_clusters: int, *, sample_size: int | None = None, backbone=None, n_init: int = 3,
           max_iter: int = 25, random_state=0, name: str | None = None, write: bool = True, client=None,
           progress=None) -> StoreKMeans:
    """k-means of every row of a store: faiss k-means trained on a uniform sample, then :func:`assign`.

    The vectors are never all in memory: the sample (``sample_size`` x D float32) and one partition at a time.

    Parameters
    ----------
    store : EmbeddingStore or path
    n_clusters : int
    sample_size : int, optional
        Training rows; default :func:`default_sample_size` (``min(N, max(256 K, 100,000))``). Must be at least
        ``n_clusters``. The result's ``sample_size`` says how many were used.
    n_init, max_iter : int
        faiss's ``nredo`` and ``niter`` (``kit.cluster.KMeans(backend="faiss")`` on the sample; the run with the
        lowest inertia on the sample is kept). ``n_init=3`` as ``kit.cluster.KMeans``: faiss's random
        initialisation often merges two blobs (5 blobs, 5,000 x 16, seeds 0-2: NMI 0.865 with 1 run for every
        seed; the best of 3 runs reached 1.0 for one seed of the three).
    random_state : int, RandomState or None
        Seeds the sample and faiss.
    name, write, client, progress, backbone
        As in :func:`assign` (``progress`` also sees stage ``"sample"`` and ``"train"``).

    Returns
    -------
    StoreKMeans

    Examples
    --------
    >>> from kit import scale_cluster
    >>> km = scale_cluster.kmeans("photos.store", 100)  # doctest: +SKIP
    >>> km.read_labels().head()  # doctest: +SKIP
    """
    validate_params(_KMEANS_CONSTRAINTS, {"n_clusters": n_clusters, "sample_size": sample_size, "n_init": n_init,
                                          "max_iter": max_iter, "random_state": random_state}, "kmeans")
    validate_params(_ASSIGN_CONSTRAINTS, {"name": name, "write": write, "progress": progress}, "kmeans")
    from ..cluster import KMeans

    t0 = time.perf_counter()
    store = _store(store)
    ns, files = _partition_files(store, backbone)
    n_rows = sum(r for _, r in files)
    k = int(n_clusters)
    _target(store, ns.name, f"kmeans-{k}" if name is None else name, write)
    size = default_sample_size(k, n_rows) if sample_size is None else min(int(sample_size), n_rows)
    if k > n_rows:
        raise ValueError(f"n_clusters={k} is larger than the store's {n_rows} rows; use n_clusters <= {n_rows}")
    if size < k:
        raise ValueError(f"sample_size={sample_size} is below n_clusters={k}; k-means needs at least one training "
                         f"row per centroid (256 per centroid is faiss's default)")
    report(progress, 0, 1, "sample")
    s = sample(store, size, random_state=random_state, backbone=backbone)
    report(progress, 1, 1, "sample")
    t1 = time.perf_counter()
    report(progress, 0, 1, "train")
    model = KMeans(k, backend="faiss", n_init=int(n_init), max_iter=int(max_iter), max_points_per_centroid=None,
                   random_state=random_state).fit(s.vectors)
    report(progress, 1, 1, "train")
    t2 = time.perf_counter()
    params = {"n_clusters": k, "sample_size": len(s), "n_init": int(n_init), "max_iter": int(max_iter),
              "random_state": random_state if isinstance(random_state, (int, type(None))) else "RandomState"}
    out = assign(store, model.cluster_centers_, backbone=backbone, name=name, write=write, client=client,
                 progress=progress, _meta=params)
    out.sample_size = len(s)
    out.params = {**params, **out.params}
    out.timings = {"sample": t1 - t0, "train": t2 - t1, "assign": out.timings["assign"]}
    out.seconds = time.perf_counter() - t0
    return out


# ------------------------------------------------------------------ projections
@dataclass
class StoreProjection:
    """Every row of a store on a map fitted on a sample.

    ``table`` has one row per store row (path, hash, x, y[, z]) in the store's order; ``projection`` is the
    :class:`kit.project.Projection` fitted on the ``sample_size`` sampled rows (its ``transform`` places more).
    """

    table: pd.DataFrame
    projection: object
    method: str
    sample_size: int
    n_rows: int
    seconds: float

    @property
    def coords(self) -> np.ndarray:
        return self.table[[c for c in ("x", "y", "z") if c in self.table.columns]].to_numpy(np.float32)


def project_store(store, method: str = "pca", *, sample_size: int = 20_000, n_components: int = 2,
                  random_state=0, backbone=None, use_cache: bool = False, progress=None,
                  **params) -> StoreProjection:
    """Fit a projection (:func:`kit.project.project`) on a uniform sample of a store and place every row on it
    with :meth:`~kit.project.Projection.transform`, one partition at a time.

    Every row, the sampled ones too, is placed by ``transform`` (for PCA that is exactly the fitted map; for UMAP
    and t-SNE a sampled row lands near, not exactly at, its fitted position). PCA fitted on 20,000 rows placed
    1,000,000 x 256 in 4-7 s, reading included (``bench/scale.py``); UMAP and t-SNE are much slower per row.

    Parameters
    ----------
    method : {"pca", "umap", "tsne"}
    sample_size : int
        Rows the projection is fitted on (all when the store holds fewer); the result says how many.
    **params
        Passed to :func:`kit.project.project` (``cache_dir``, estimator parameters).
    """
    from ..project import METHODS
    from ..project import project as fit

    method = method.lower() if isinstance(method, str) else method
    validate_params({"method": [StrOptions(set(METHODS))], "sample_size": [_POSITIVE_INT],
                     "n_components": [Interval(Integral, 1, 3, closed="both")], "progress": [callable, None]},
                    {"method": method, "sample_size": sample_size, "n_components": n_components,
                     "progress": progress}, "project_store")
    t0 = time.perf_counter()
    store = _store(store)
    s = sample(store, sample_size, random_state=random_state, backbone=backbone)
    fitted = fit(s.vectors, method=method, n_components=n_components, random_state=random_state,
                 use_cache=use_cache, progress=progress, **params)
    total = s.stats["rows"]
    done, frames = 0, []
    axes = ["x", "y", "z"][:n_components]
    for _, rows, vectors in iter_partitions(store, backbone, columns=("path", "hash")):
        coords = fitted.transform(vectors)
        frames.append(rows.assign(**{a: coords[:, j] for j, a in enumerate(axes)}))
        done += len(rows)
        report(progress, done, total, "place")
    return StoreProjection(pd.concat(frames, ignore_index=True), fitted, method, len(s), total,
                           time.perf_counter() - t0)
