"""Embedding on Dask: many photos over worker processes (or machines), written partition by partition to an
:class:`~kit.scale.EmbeddingStore`.

The layers, each usable alone:

* :func:`list_images`: the photos to embed, from a folder (walked without opening a file), a CSV or Parquet list
  of paths, an ``ImageSet`` or a list of paths;
* :func:`plan`: which of them the store already holds (an unchanged file, same path, size and modification
  time, is not even read again) and the partitions of the rest;
* :func:`embed_partition`: what a worker does with one partition: hash the files, reuse the vectors the store
  already has for a content hash (a moved or copied photo), embed the others through the kit's one embedding
  routine (:func:`kit.embedding.run`, the same as ``kit.embed``), write the partition atomically;
* :func:`embed_dask`: the composition, on a Dask cluster, with progress and a clean stop.

The model is loaded once per worker process and kept there (``kit.backbones.load_backbone``), not once per
task. Dask is imported only when a function here runs: ``import kit`` does not import it.
"""
from __future__ import annotations

import logging
import os
import queue
import secrets
import time
from dataclasses import dataclass, field, replace
from numbers import Integral
from pathlib import Path

import numpy as np
import pandas as pd

from .. import backbones as _bb
from .._utils.files import read_csv_table, read_table
from .._utils.validation import Interval, StrOptions, validate_params
from ..backbones import EmbedOptions, Kind, kind_of
from ..embedding import Embeddings
from ..io import IMAGE_EXTENSIONS, RESIZE_MODES, ImageSet, empty_unreadable, file_hash, walk_images
from ..progress import report
from ._store import DTYPES, EmbeddingStore, Namespace

__all__ = ["Listing", "Plan", "ScaleRun", "embed_dask", "embed_partition", "list_images", "plan", "start_cluster"]

_POSITIVE_INT = Interval(Integral, 1, None, closed="left")
_PATH_COLUMNS = ("path", "file", "filename", "image")
_LABEL_COLUMNS = ("label", "class", "category")
#: Seconds between two progress messages (and stop checks) of one worker.
REPORT_SECONDS = 0.5


class _Stopped(Exception):
    """Raised inside a worker's progress hook when the caller asked the run to stop."""


# ------------------------------------------------------------------ listing
@dataclass
class Listing:
    """The photos of one run: absolute ``paths``, their ``labels`` (or None), the content ``hashes`` already
    known (None each when not computed yet) and the files already found unreadable."""

    paths: list
    labels: list | None
    hashes: list
    unreadable: pd.DataFrame = field(default_factory=empty_unreadable)

    def __len__(self) -> int:
        return len(self.paths)


def _from_table(path: Path) -> Listing:
    parquet = path.suffix.lower() in (".parquet", ".pq")
    table = read_table(path).to_pandas() if parquet else read_csv_table(path, "images")
    cols = {str(c).lower(): c for c in table.columns}
    path_col = next((cols[c] for c in _PATH_COLUMNS if c in cols), None)
    if path_col is None:
        raise ValueError(f"images={str(path)!r}: the list needs a path column ({'/'.join(_PATH_COLUMNS)}); found "
                         f"columns {list(table.columns)}")
    label_col = next((cols[c] for c in _LABEL_COLUMNS if c in cols), None)
    missing = table[path_col].isna() | (table[label_col].isna() if label_col is not None else False)
    if missing.any():
        row = int(missing.to_numpy().argmax())
        raise ValueError(f"images={str(path)!r}: data row {row + 1} has no path or no label (a cut or hand-edited "
                         f"file?); give every row a path (and a label), or remove the row")
    base = path.resolve().parent
    paths = [os.path.abspath(p if os.path.isabs(p) else base / p) for p in table[path_col].astype(str)]
    labels = None if label_col is None else [str(v) for v in table[label_col]]
    return Listing(paths, labels, [None] * len(paths))


def list_images(images) -> Listing:
    """The photos to embed, without opening any of them.

    Parameters
    ----------
    images : folder, CSV or Parquet file, ImageSet, or list of paths
        A folder is walked (sub-folders too, hidden names skipped) for image extensions, in the order of
        ``kit.load_folder``, with labels from the first sub-folder when every photo is in one. A CSV or Parquet
        file lists paths in a ``path`` (or ``file``, ``filename``, ``image``) column, relative to the file's
        folder or absolute, with an optional ``label`` column.

    Examples
    --------
    >>> import kit
    >>> from kit.scale import list_images
    >>> len(list_images(kit.datasets.clothing()))
    500
    """
    if isinstance(images, ImageSet):
        return Listing([os.path.abspath(p) for p in images.paths], images.labels, list(images.hashes),
                       images.unreadable.copy())
    if isinstance(images, (str, os.PathLike)):
        path = Path(images).expanduser()
        if path.is_dir():
            root = Path(os.path.abspath(path))
            found = sorted(f for f in walk_images(root, True) if f.suffix.lower() in IMAGE_EXTENSIONS)
            rel = [f.relative_to(root).parts for f in found]
            labels = [r[0] for r in rel] if found and all(len(r) > 1 for r in rel) else None
            return Listing([str(f) for f in found], labels, [None] * len(found))
        if path.is_file() and path.suffix.lower() in (".csv", ".parquet", ".pq"):
            return _from_table(path)
        raise ValueError(f"images={str(images)!r} is neither a folder nor a .csv/.parquet list of paths")
    if isinstance(images, Embeddings):
        raise TypeError("images is an Embeddings; pass the photos (a folder, a list of paths or an ImageSet)")
    paths = [os.path.abspath(os.fspath(p)) for p in images]
    return Listing(paths, None, [None] * len(paths))


# ------------------------------------------------------------------ planning
@dataclass
class Plan:
    """What a run has to do: ``done`` maps the positions of photos the store already holds to their hash;
    ``partitions`` lists the positions of the others, partition by partition."""

    done: dict
    partitions: list


def plan(listing: Listing, store: EmbeddingStore | None, ns: Namespace | None, partition_size: int) -> Plan:
    """Split ``listing`` into what ``store`` already holds in ``ns`` and partitions of ``partition_size`` photos.

    A photo counts as held when the store has a row with its path and the same file size and modification time
    (the file is not read) or, when its hash is already known, the same path and hash.
    """
    done = {}
    if store is not None and ns is not None and store.is_store() and ns.name in store._namespaces():
        index = store.table(ns.name, columns=["path", "hash", "size", "mtime_ns"])
        by_path: dict = {}
        for p, h, s, m in zip(index["path"], index["hash"], index["size"], index["mtime_ns"]):
            by_path.setdefault(p, []).append((h, s, m))
        for i, (p, known) in enumerate(zip(listing.paths, listing.hashes)):
            rows = by_path.get(p)
            if not rows:
                continue
            if known is not None:
                if any(h == known for h, _, _ in rows):
                    done[i] = known
                continue
            try:
                st = os.stat(p)
            except OSError:
                continue
            for h, s, m in reversed(rows):  # the latest row of that path
                if s == st.st_size and m == st.st_mtime_ns:
                    done[i] = h
                    break
    todo = [i for i in range(len(listing)) if i not in done]
    size = int(partition_size)
    return Plan(done, [todo[k:k + size] for k in range(0, len(todo), size)])


# ------------------------------------------------------------------ one partition (runs on a worker)
def _model_loaded(spec) -> bool:
    return _bb.is_loaded(spec)


class _WorkerHook:
    """Progress of one partition, sent to the client as Dask events (at most every ``REPORT_SECONDS``), and the
    stop check (a Dask ``Event`` the client sets)."""

    def __init__(self, topic, stop_name, part):
        self.topic, self.stop_name, self.part = topic, stop_name, part
        self.last = 0.0
        self.worker = None
        self.stop = None
        if topic is not None:
            from distributed import Event, get_worker

            try:
                self.worker = get_worker()
            except ValueError:  # not inside a Dask worker (called directly): no events
                self.worker = None
            if self.worker is not None and stop_name is not None:
                self.stop = Event(stop_name)

    def __call__(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if self.worker is None or (not force and now - self.last < REPORT_SECONDS):
            return
        self.last = now
        self.worker.log_event(self.topic, (self.part, int(done)))
        if self.stop is not None and self.stop.is_set():
            raise _Stopped()


def embed_partition(paths, hashes, labels, spec, options: EmbedOptions, store: EmbeddingStore | None = None,
                    ns: Namespace | None = None, index: int = 0, return_vectors: bool = False, hook=None) -> dict:
    """Embed one partition and write it to ``store`` (what each Dask task runs; also callable directly).

    Hashes the files whose hash is None, reuses the vectors ``store`` has for known hashes, embeds the rest with
    :func:`kit.embedding.run` (no cache: the store is the cache), writes one Parquet file when there
    is a row to write. Returns a small summary: ``pairs`` (path, hash) of the rows, ``unreadable``
    (path, reason), ``computed``, ``reused``, ``file``, ``model_loaded`` (this call loaded the model into this process), ``pid``, ``seconds`` (and
    ``vectors`` with ``return_vectors``).
    """
    from ..embedding import run

    t0 = time.perf_counter()
    kind = kind_of(spec)
    loaded_before = _model_loaded(spec)  # kinds without a network (classical features) never load one
    hook = hook or (lambda done, force=False: None)
    ok_paths, ok_hashes, ok_labels, bad = [], [], [], []
    for p, h, lab in zip(paths, hashes, labels if labels is not None else [None] * len(paths)):
        if h is None:
            try:
                h = file_hash(p)
            except OSError as exc:
                bad.append((p, f"cannot read file: {exc}"))
                continue
        ok_paths.append(p)
        ok_hashes.append(h)
        ok_labels.append(lab)
    reused = store.vectors_for(set(ok_hashes), ns) if store is not None and ns is not None else {}
    todo = [i for i, h in enumerate(ok_hashes) if h not in reused]
    offset = len(ok_paths) - len(todo)
    hook(offset, True)
    vectors = dict(reused)
    computed = 0
    if todo:
        subset = ImageSet(root=Path("."), paths=[ok_paths[i] for i in todo], labels=None,
                          hashes=[ok_hashes[i] for i in todo])
        emb = run(subset, spec, kind, options, use_cache=False,
                  progress=lambda done, total, stage: hook(offset + done))
        for h, v in zip(emb.hashes, emb.vectors):
            vectors.setdefault(h, v)
        bad.extend(emb.unreadable.itertuples(index=False, name=None))
        computed = emb.stats["computed"]
    keep = [i for i, h in enumerate(ok_hashes) if h in vectors]
    dim = ns.dim if ns is not None and ns.dim else (spec.feature_dim or 0)
    matrix = np.stack([vectors[ok_hashes[i]] for i in keep]).astype(np.float32) if keep else \
        np.zeros((0, dim), np.float32)
    name = None
    if store is not None and keep:
        if ns.dim != matrix.shape[1]:
            ns = replace(ns, dim=int(matrix.shape[1]))  # a backbone whose size is known only once it ran
        stats = [_stat(ok_paths[i]) for i in keep]
        name = store.write_rows(ns, [ok_paths[i] for i in keep], [ok_hashes[i] for i in keep], matrix,
                                labels=[ok_labels[i] for i in keep], sizes=[s for s, _ in stats],
                                mtimes=[m for _, m in stats], index=index)
    out = {"index": index, "pairs": [(ok_paths[i], ok_hashes[i]) for i in keep], "unreadable": bad,
           "computed": int(computed), "reused": int(sum(ok_hashes[i] in reused for i in keep)), "file": name,
           "dim": int(matrix.shape[1]), "model_loaded": _model_loaded(spec) and not loaded_before, "pid": os.getpid(),
           "seconds": time.perf_counter() - t0}
    if return_vectors:
        out["vectors"] = matrix
    return out


def _stat(path):
    try:
        st = os.stat(path)
    except OSError:
        return None, None
    return int(st.st_size), int(st.st_mtime_ns)


def _task(job: dict) -> dict:
    """One Dask task: register what the worker process needs, then :func:`embed_partition`."""
    if job["user_fn"] is not None:
        _bb.remember_function(job["spec"].handle, job["user_fn"])
    hook = _WorkerHook(job["topic"], job["stop"], job["index"])
    try:
        return embed_partition(job["paths"], job["hashes"], job["labels"], job["spec"], job["options"],
                               store=job["store"], ns=job["ns"], index=job["index"],
                               return_vectors=job["return_vectors"], hook=hook)
    except _Stopped:
        return {"index": job["index"], "stopped": True}


# ------------------------------------------------------------------ the cluster
def _require_distributed() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"engine='dask' needs Dask's distributed scheduler ({exc}); install it with "
                          f"pip install \"dask[distributed]\"") from None


def start_cluster(n_workers: int | None = None):
    """A local Dask cluster of ``n_workers`` processes (default: one per core), one thread each.

    The workers are started as fresh interpreters (``distributed``'s ``SubprocessCluster``), which never run the
    caller's ``__main__``: a script without ``if __name__ == "__main__":``, ``python -c``, stdin, Jupyter and
    Streamlit all work. Returns ``(cluster, client)``; close both when done.
    """
    from distributed import Client

    n = int(n_workers or os.cpu_count() or 1)
    if os.name == "nt":  # SubprocessCluster is POSIX-only; LocalCluster needs a main guard in scripts there
        from distributed import LocalCluster

        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
    else:
        import shutil
        import tempfile

        from distributed.deploy.subprocess import SubprocessCluster

        # The scheduler tells its address through a file, read once at start: keep it in a folder of our own,
        # removed as soon as the cluster is up (a killed scheduler would otherwise leave it in the temp folder).
        folder = tempfile.mkdtemp(prefix="kit-dask-")
        try:
            cluster = SubprocessCluster(n_workers=n, threads_per_worker=1, dashboard_address=None,
                                        worker_class="distributed.Worker", silence_logs=logging.ERROR,
                                        scheduler_kwargs={"scheduler_file": os.path.join(folder, "scheduler.json")})
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    client = Client(cluster)
    client.wait_for_workers(n, timeout=120)
    return cluster, client


def _connect(client, n_workers):
    """``(client, things to close)`` for the ``client`` argument of :func:`embed_dask`."""
    if client is None:
        cluster, c = start_cluster(n_workers)
        return c, [c, cluster]
    if isinstance(client, str):
        from distributed import Client

        try:
            c = Client(client, timeout="30s")
        except OSError as exc:
            raise OSError(f"client={client!r}: no Dask scheduler answers there ({exc}); start one "
                          f"(`dask scheduler` and `dask worker ADDRESS`) or pass client=None for a local cluster") \
                from None
        return c, [c]
    if hasattr(client, "submit") and hasattr(client, "gather"):
        return client, []
    if hasattr(client, "scheduler_address"):  # a cluster object (LocalCluster, ...)
        from distributed import Client

        c = Client(client)
        return c, [c]
    raise TypeError(f"client={client!r} must be None (a local cluster), a scheduler address 'tcp://host:port', a "
                    f"distributed.Client or a Dask cluster")


# ------------------------------------------------------------------ the whole run
@dataclass
class ScaleRun:
    """What :func:`embed_dask` did when it does not collect the vectors (``collect=False``).

    ``store`` and ``namespace`` say where the vectors are (``store.read(namespace)``); ``pairs`` lists the
    (path, hash) of every embedded photo in input order.
    """

    store: EmbeddingStore | None
    namespace: str | None
    pairs: list
    unreadable: pd.DataFrame
    stats: dict


def _check_kind(spec, kind: Kind) -> None:
    if kind.many_rows:
        raise ValueError(f"backbone={spec.name!r} gives several rows per photo ({kind.source}); engine='dask' "
                         f"embeds one vector per photo: use engine='local' for it")
    if type(kind).finalize is not Kind.finalize:
        probe = np.random.default_rng(0).random((4, spec.feature_dim or 8)).astype(np.float32)
        out = kind.finalize(spec, probe)
        if out.shape != probe.shape or not np.array_equal(out, probe):
            raise ValueError(f"backbone={spec.name!r} transforms all rows together after embedding (e.g. a PCA "
                             f"fitted on them), which partition-by-partition embedding cannot do; embed without it "
                             f"(e.g. pixels without pca) and reduce afterwards (kit.project), or use "
                             f"engine='local'")


def _as_store(store, dtype) -> EmbeddingStore | None:
    if store is None or isinstance(store, EmbeddingStore):
        if isinstance(store, EmbeddingStore) and dtype is not None and store.dtype != dtype:
            return EmbeddingStore(store.root, dtype=dtype)
        return store
    if isinstance(store, (str, os.PathLike)):
        return EmbeddingStore(store, dtype=dtype)
    raise TypeError(f"store={store!r} must be None, a folder path or a kit.scale.EmbeddingStore")


def embed_dask(images, backbone=_bb.DEFAULT_BACKBONE, *, client=None, store=None, partition_size: int = 1000,
               batch_size: int = 32, resize: str = "center_crop", num_workers: int | None = None,
               n_workers: int | None = None, dtype: str | None = None, progress=None, collect: bool = True):
    """Embed photos on a Dask cluster, partition by partition, into an embedding store.

    Parameters
    ----------
    images : folder, CSV/Parquet list of paths, ImageSet, or list of paths
        See :func:`list_images`. Paths are made absolute (workers see the same file system).
    backbone : str or BackboneSpec
        Any one-vector-per-photo backbone of ``kit.backbones.available()``.
    client : None, str, distributed.Client or a Dask cluster
        None starts a local cluster (one process per core, or ``n_workers``, one thread each; see
        :func:`start_cluster`) and closes it at the end; an address ``"tcp://host:port"`` or a client uses an
        existing cluster (left running).
    store : folder path, fsspec URL or EmbeddingStore, optional
        Where the vectors go, one Parquet file per partition (a folder every worker can write, or a URL such as
        ``"s3://bucket/store"``). Photos it
        already holds are not embedded again; a run that was stopped or killed resumes where it stopped. Without
        a store the vectors travel back to the caller (for small sets).
    partition_size : int
        Photos per task and per Parquet file.
    batch_size, resize : as in :func:`kit.embed`.
    num_workers : int, optional
        Decoding threads inside each worker (default: as ``kit.embed``).
    n_workers : int, optional
        Worker processes of the local cluster started when ``client`` is None (default: the cores).
    dtype : {"float32", "float16"}, optional
        Storage of the vectors in a new store namespace (see :class:`~kit.scale.EmbeddingStore`).
    progress : callable(done, total, stage), optional
        Called in the caller's thread: ``"starting workers"`` (when a cluster is started), then ``"embedding"``
        with the photos done (those already in the store count as done from the start), ending at
        ``(N, N)``. A callback that raises stops the run: running partitions stop at their next batch and
        write nothing, finished ones stay in the store.
    collect : bool
        Return the vectors as :class:`kit.Embeddings` (rows in input order, read back from the store). False
        returns a :class:`ScaleRun` summary instead (the vectors stay in the store: for millions of photos).

    Returns
    -------
    Embeddings or ScaleRun

    Examples
    --------
    >>> import kit
    >>> emb = kit.embed(kit.datasets.clothing(), backbone="color_hist", engine="dask",
    ...                 store="/tmp/clothing-store")  # doctest: +SKIP
    """
    validate_params({"partition_size": [_POSITIVE_INT], "batch_size": [_POSITIVE_INT],
                     "resize": [StrOptions(set(RESIZE_MODES))], "num_workers": [_POSITIVE_INT, None],
                     "n_workers": [_POSITIVE_INT, None], "dtype": [StrOptions(set(DTYPES)), None],
                     "progress": [callable, None], "collect": ["boolean"]},
                    {"partition_size": partition_size, "batch_size": batch_size, "resize": resize,
                     "num_workers": num_workers, "n_workers": n_workers, "dtype": dtype, "progress": progress,
                     "collect": collect}, "embed_dask")
    t0 = time.perf_counter()
    spec = _bb.get(backbone)
    kind = kind_of(spec)
    _check_kind(spec, kind)
    store = _as_store(store, dtype)
    if store is None and not collect:
        raise ValueError("collect=False keeps the vectors only in the store; pass store= (a folder) or "
                         "collect=True")
    options = EmbedOptions(batch_size=int(batch_size), resize=resize,
                           num_workers=None if num_workers is None else int(num_workers))
    listing = list_images(images)
    n = len(listing)
    ns = None
    if store is not None:
        ns = Namespace.of(spec.name, kind.cache_key(spec), kind.preprocessing(spec, options),
                          spec.feature_dim or 0, store.dtype or "float32")
        existing = store._namespaces().get(ns.name) if store.is_store() else None
        if existing is not None and (store.dtype is None or store.dtype == existing.dtype):
            ns = existing
        if ns.dim:
            ns = store.register(ns)
        else:
            store._claim()
            (store.root / ns.name).mkdir(exist_ok=True)
        store.clean()
    work = plan(listing, store, ns, partition_size)
    done_pairs = {i: (listing.paths[i], h) for i, h in work.done.items()}
    skipped = len(done_pairs)
    results = []
    n_started = 0
    stats = {"engine": "dask", "photos": n, "skipped": skipped, "partitions": len(work.partitions)}
    if work.partitions:
        _require_distributed()
        report(progress, skipped, n, "starting workers" if client is None else "embedding")
        results, n_started = _run_partitions(listing, work, spec, options, store, ns, client, n_workers, progress,
                                             return_vectors=store is None, skipped=skipped)
    if store is not None and store.is_store():
        store.refresh_manifest()
    report(progress, n, n, "embedding")

    bad = [row for r in results for row in r["unreadable"]]
    unreadable = pd.concat([listing.unreadable, pd.DataFrame(bad, columns=["path", "reason"])], ignore_index=True) \
        if bad else listing.unreadable.copy()
    position = {p: i for i, p in enumerate(listing.paths)}
    pairs_at = dict(done_pairs)
    for r in results:
        for p, h in r["pairs"]:
            pairs_at[position[p]] = (p, h)
    order = sorted(pairs_at)
    computed = sum(r["computed"] for r in results)
    reused = sum(r["reused"] for r in results)
    stats.update({"cached": skipped + reused, "computed": computed, "reused": reused, "rows": len(order),
                  "workers": n_started, "model_loads": sum(r["model_loaded"] for r in results),
                  "seconds": time.perf_counter() - t0})
    ns_name = None if ns is None else ns.name
    if not collect:
        return ScaleRun(store, ns_name, [pairs_at[i] for i in order], unreadable, stats)

    preprocessing = kind.preprocessing(spec, options)
    if store is None:
        found = {}
        for r in results:
            for (p, h), v in zip(r["pairs"], r["vectors"]):
                found[(p, h)] = v
        dim = next((r["dim"] for r in results if r["dim"]), spec.feature_dim or 0)
    else:
        stored = store.read(ns_name, paths=[listing.paths[i] for i in order]) if order else None
        found = {} if stored is None else dict(zip(zip(stored.paths, stored.hashes), stored.vectors))
        dim = stored.vectors.shape[1] if stored is not None else (spec.feature_dim or 0)
    rows = [found[pairs_at[i]] for i in order]
    vectors = np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), np.float32)
    stats["seconds"] = time.perf_counter() - t0
    return Embeddings(vectors=vectors, paths=[pairs_at[i][0] for i in order],
                      labels=None if listing.labels is None else [listing.labels[i] for i in order],
                      backbone=spec.name, preprocessing=preprocessing, unreadable=unreadable,
                      hashes=[pairs_at[i][1] for i in order], stats=stats)


def _run_partitions(listing, work, spec, options, store, ns, client, n_workers, progress, return_vectors, skipped):
    """Submit one task per partition, report progress from the workers' events, stop cleanly when asked.
    Returns (summaries, number of workers)."""
    from distributed import Event

    n = len(listing)
    c, to_close = _connect(client, n_workers)
    run_id = secrets.token_hex(6)
    topic, stop_name = f"kit-embed-{run_id}", f"kit-embed-stop-{run_id}"
    events: queue.SimpleQueue = queue.SimpleQueue()
    stop = None
    futures = []
    try:
        workers = len(c.scheduler_info(n_workers=-1)["workers"]) if hasattr(c, "scheduler_info") else 0
        stop = Event(stop_name, client=c)
        c.subscribe_topic(topic, lambda event: events.put(event[1]))
        user_fn = _bb.user_function(spec.handle) if spec.source == "callable" else None
        sizes = {}
        for k, part in enumerate(work.partitions):
            job = {"paths": [listing.paths[i] for i in part], "hashes": [listing.hashes[i] for i in part],
                   "labels": None if listing.labels is None else [listing.labels[i] for i in part],
                   "spec": spec, "options": options, "store": store, "ns": ns, "index": k,
                   "return_vectors": return_vectors, "user_fn": user_fn, "topic": topic, "stop": stop_name}
            sizes[k] = len(part)
            futures.append(c.submit(_task, job, key=f"kit-embed-{run_id}-{k:06d}", pure=False))
        partial = {k: 0 for k in sizes}
        finished = set()
        results = []
        shown = skipped
        pending = list(futures)
        report(progress, skipped, n, "embedding")
        while pending:
            still = []
            for f in pending:
                if f.done():
                    r = f.result()  # re-raises a worker's error here
                    if r.get("stopped"):
                        raise RuntimeError("a partition stopped without being asked to; run again to resume")
                    results.append(r)
                    finished.add(r["index"])
                    partial[r["index"]] = sizes[r["index"]]
                else:
                    still.append(f)
            pending = still
            while True:
                try:
                    part, done = events.get_nowait()
                except queue.Empty:
                    break
                if part not in finished and part in partial:
                    partial[part] = max(partial[part], min(done, sizes[part]))
            now_done = skipped + sum(partial.values())
            if now_done > shown or not pending:
                shown = max(shown, now_done)
                report(progress, min(shown, n), n, "embedding")
            if pending:
                time.sleep(0.05)
        return results, workers
    except BaseException:
        if stop is not None:  # running partitions stop at their next batch and write nothing
            try:
                stop.set()
                from distributed import wait

                wait(futures, timeout=60)
            except Exception:  # noqa: BLE001 - best effort: the original error is what the caller must see
                pass
        for f in futures:
            f.cancel()
        raise
    finally:
        try:
            c.unsubscribe_topic(topic)
        except Exception:  # noqa: BLE001 - the client may already be closing
            pass
        for thing in to_close:
            thing.close()
