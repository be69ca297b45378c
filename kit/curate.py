"""Curation after clustering: near-duplicates, outliers and representatives, hand edits, new photos.

* :func:`near_duplicates` -- groups of different files whose embeddings are within a cosine threshold (faiss
  kNN, then connected components), with a suggested photo to keep in each group. Byte-identical files are not
  listed here: they share a content hash, are embedded once, and ``ImageSet.duplicates`` lists them exactly.
* :func:`outlier_scores` -- per photo: cosine distance to its k-th neighbour and to its cluster's centre, its
  rank in the cluster (0 = most typical) and an outlier flag.
* :class:`ClusterEdits` -- move photos, merge, split, rename clusters, with undo and a log; the same operations
  are plain functions on a labels array (:func:`move`, :func:`merge`, :func:`split`).
* :func:`assign` -- place new photos in existing clusters (nearest centre or kNN vote) with the same cluster ids,
  flagging those far from every cluster as candidates for a new one.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import pandas as pd

from ._utils.arrays import l2_normalize
from ._utils.validation import Interval, StrOptions, validate_params

#: Default cosine similarity for near-duplicates, chosen for precision (a suggested drop must be a real near-copy)
#: on every labelled set: efficientnet_lite0, near-copies (half size, JPEG quality 30, 90% crop) of 60 photos mixed
#: with 500 of each set (``bench/curate.py``). At 0.92 the precision is 1.000 on the built-in photos, imagenette10
#: and scenes6 and 0.965 on clothing10 (recall 0.67, 0.48, 0.15, 0.92); at 0.88 it was 0.946, 0.870, 0.840 and 0.831:
#: different garments and similar scenes were offered as copies. Tight face crops need a face backbone (0.87 here).
NEAR_DUPLICATE_THRESHOLD = 0.92
NEAR_DUPLICATE_COLUMNS = ["group", "path", "keep", "similarity", "width", "height", "sharpness"]


def _vectors_and_paths(embeddings):
    X = getattr(embeddings, "vectors", None)
    paths = getattr(embeddings, "paths", None)
    if X is None or paths is None:
        raise TypeError(f"embeddings={type(embeddings).__name__} must be kit.Embeddings (vectors and paths); "
                        f"embed the photos first: kit.embed(folder)")
    return np.asarray(X, dtype=np.float32), list(paths)


def _image_stats(path: str) -> tuple:
    """(width, height, sharpness): size from the header; sharpness = variance of the Laplacian of the grey photo
    at most 256 px (NaN when it cannot be decoded)."""
    from PIL import ImageOps

    from .io import open_image

    try:
        with open_image(path) as im:
            w, h = ImageOps.exif_transpose(im).size if im.getexif().get(0x0112, 1) in (5, 6, 7, 8) else im.size
            im.draft("L", (256, 256))
            grey = im.convert("L")
            grey.thumbnail((256, 256))
            g = np.asarray(grey, dtype=np.float32)
    except (ValueError, OSError):  # cannot be decoded (open_image's reason): unknown size and sharpness, listed
        return 0, 0, float("nan")
    if min(g.shape) < 3:
        return w, h, 0.0
    lap = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4 * g[1:-1, 1:-1]
    return int(w), int(h), float(lap.var())


def near_duplicates(embeddings, threshold: float = NEAR_DUPLICATE_THRESHOLD, k: int = 10) -> pd.DataFrame:
    """Groups of different files whose embeddings have cosine similarity >= ``threshold``.

    Each photo is linked to those of its ``k`` nearest neighbours (faiss, cosine) above the threshold, and the
    groups are the connected components with at least two files. In each group the photo to keep is the one with
    the most pixels, then the sharpest (variance of the Laplacian). Byte-identical files (same content hash) count
    as one: ``ImageSet.duplicates`` lists them exactly.

    Parameters
    ----------
    embeddings : kit.Embeddings
    threshold : float in (0, 1]
        Cosine similarity; the default is measured (``NEAR_DUPLICATE_THRESHOLD``). Other backbones may need
        another value: look at ``similarity`` in the table.
    k : int
        Neighbours looked at per photo (a group can still be larger, through its members' neighbours).

    Returns
    -------
    DataFrame with columns ``group`` (0, 1, ... largest group first), ``path``, ``keep`` (bool, one per group),
    ``similarity`` (cosine to the photo to keep; 1 for it), ``width``, ``height``, ``sharpness``.

    Examples
    --------
    >>> import kit
    >>> table = kit.curate.near_duplicates(kit.embed("photos/"))   # doctest: +SKIP
    >>> table[table.keep == False].path.tolist()                   # doctest: +SKIP
    """
    validate_params({"threshold": [Interval(Real, 0, 1, closed="right")], "k": [Interval(Integral, 1, None,
                                                                                          closed="left")]},
                    {"threshold": threshold, "k": k}, "near_duplicates")
    X, paths = _vectors_and_paths(embeddings)
    hashes = list(getattr(embeddings, "hashes", None) or paths)
    first = {}
    for i, h in enumerate(hashes):
        first.setdefault(h, i)
    nodes = np.fromiter(first.values(), dtype=np.int64)
    if len(nodes) < 2:
        return pd.DataFrame(columns=NEAR_DUPLICATE_COLUMNS)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from ._utils.neighbors import knn

    Xn = l2_normalize(X[nodes])
    sims, idx = knn(Xn, min(int(k), len(nodes) - 1))
    rows, cols = np.nonzero(sims >= threshold)
    graph = coo_matrix((np.ones(len(rows)), (rows, idx[rows, cols])), shape=(len(nodes), len(nodes)))
    _, comp = connected_components(graph, directed=False)
    sizes = np.bincount(comp)
    groups = sorted((c for c in np.flatnonzero(sizes >= 2)), key=lambda c: (-sizes[c], np.flatnonzero(comp == c)[0]))
    out = []
    for g, c in enumerate(groups):
        members = np.flatnonzero(comp == c)
        stats = [_image_stats(paths[nodes[m]]) for m in members]
        keeper = max(range(len(members)), key=lambda j: (stats[j][0] * stats[j][1],
                                                        np.nan_to_num(stats[j][2], nan=-1.0), -j))
        sim = Xn[members] @ Xn[members[keeper]]
        for j, m in enumerate(members):
            out.append((g, paths[nodes[m]], j == keeper, 1.0 if j == keeper else float(sim[j]), *stats[j]))
    table = pd.DataFrame(out, columns=NEAR_DUPLICATE_COLUMNS)
    return table.sort_values(["group", "keep", "similarity"], ascending=[True, False, False], ignore_index=True)


def _centres(Xn: np.ndarray, labels: np.ndarray):
    ids = np.unique(labels[labels >= 0])
    centres = np.stack([Xn[labels == c].mean(0) for c in ids]) if len(ids) else np.zeros((0, Xn.shape[1]))
    return ids, l2_normalize(centres)


def outlier_scores(X, labels=None, k: int = 10, z: float = 3.0) -> pd.DataFrame:
    """How typical each photo is: of the collection, and of its cluster.

    Parameters
    ----------
    X : Embeddings or array (N, D)
    labels : cluster of each photo (negative = noise), optional
    k : int
        The neighbour whose cosine distance is ``knn_distance`` (isolated photos have a far k-th neighbour).
    z : float
        A photo is an ``outlier`` when its ``knn_distance`` or its ``centre_distance`` lies more than ``z`` robust
        standard deviations (1.4826 x the median absolute deviation, at least 10% of the median) above the median:
        of all photos for the first, of its cluster's photos for the second (clusters of 10 photos or more).

    Returns
    -------
    DataFrame, one row per photo in input order: ``knn_distance``, ``centre_distance`` (to its cluster's centre;
    noise: to the nearest centre; NaN without labels), ``cluster``, ``rank`` (0 = closest to its centre within its
    cluster), ``outlier`` (bool).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.r_[np.tile([1.0, 0.0], (20, 1)) + 0.01 * np.arange(20)[:, None], [[0.0, 1.0]]]
    >>> outlier_scores(X, k=3)["outlier"].tolist()[-1]
    True
    """
    validate_params({"k": [Interval(Integral, 1, None, closed="left")], "z": [Interval(Real, 0, None,
                                                                                      closed="neither")]},
                    {"k": k, "z": z}, "outlier_scores")
    X = np.asarray(getattr(X, "vectors", X), dtype=np.float32)
    n = len(X)
    if n < 2:
        raise ValueError(f"X has {n} rows; outlier scores need at least 2 photos")
    from ._utils.neighbors import knn

    Xn = l2_normalize(X)
    sims, _ = knn(Xn, min(int(k), n - 1))
    knn_distance = 1.0 - sims[:, -1].astype(np.float64)

    def robust_high(values):
        med = np.nanmedian(values)
        mad = 1.4826 * np.nanmedian(np.abs(values - med))
        return values > med + z * max(mad, 0.1 * med, 1e-6)  # near-equal distances flag no one

    flag = robust_high(knn_distance)
    cluster = np.full(n, -1, np.int64)
    centre_distance = np.full(n, np.nan)
    rank = np.zeros(n, np.int64)
    if labels is not None:
        cluster = np.asarray(labels).astype(np.int64)
        if len(cluster) != n:
            raise ValueError(f"labels has {len(cluster)} entries for {n} photos; pass one label per row")
        ids, centres = _centres(Xn, cluster)
        if len(ids):
            sim = Xn @ centres.T
            own = np.searchsorted(ids, cluster)
            inside = cluster >= 0
            centre_distance[inside] = 1.0 - sim[np.flatnonzero(inside), own[inside]]
            centre_distance[~inside] = 1.0 - sim[~inside].max(1)
            for c in ids:
                members = np.flatnonzero(cluster == c)
                rank[members[np.argsort(centre_distance[members], kind="stable")]] = np.arange(len(members))
                if len(members) >= 10:
                    flag[members] |= robust_high(centre_distance[members])
    return pd.DataFrame({"knn_distance": knn_distance, "centre_distance": centre_distance, "cluster": cluster,
                         "rank": rank, "outlier": flag})


# ------------------------------------------------------------------------------------------ hand edits
def _labels(labels) -> np.ndarray:
    out = np.asarray(labels)
    if out.ndim != 1 or out.dtype.kind not in "iu":
        raise ValueError(f"labels must be a 1-d array of integer cluster ids, got dtype {out.dtype} and shape "
                         f"{out.shape}")
    return out.astype(np.int64)


def _cluster_id(labels: np.ndarray, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or int(value) not in set(labels.tolist()):
        raise ValueError(f"{name}={value!r} is not a cluster of these labels ({sorted(set(labels.tolist()))})")
    return int(value)


def move(labels, indices, to: int) -> np.ndarray:
    """A copy of ``labels`` with the photos at ``indices`` in cluster ``to`` (an existing id, -1 for noise, or a new
    id such as ``labels.max() + 1``)."""
    out = _labels(labels).copy()
    idx = np.asarray(indices, dtype=np.int64).ravel()
    if len(idx) and (idx.min() < 0 or idx.max() >= len(out)):
        raise ValueError(f"indices must be rows between 0 and {len(out) - 1}; got {idx.min()}..{idx.max()}")
    if isinstance(to, bool) or not isinstance(to, Integral) or to < -1:
        raise ValueError(f"to={to!r} must be a cluster id (an int >= 0) or -1 for noise")
    out[idx] = int(to)
    return out


def merge(labels, a: int, b: int) -> np.ndarray:
    """A copy of ``labels`` where cluster ``b`` joins cluster ``a`` (the id ``a`` stays)."""
    out = _labels(labels).copy()
    a, b = _cluster_id(out, "a", a), _cluster_id(out, "b", b)
    out[out == b] = a
    return out


def split(labels, X, cluster: int, n_clusters: int = 2, random_state=0) -> np.ndarray:
    """A copy of ``labels`` where ``cluster`` is re-clustered into ``n_clusters`` by k-means on its own photos; the
    first part keeps the id, the others get new ids after the largest one."""
    from .cluster import KMeans

    out = _labels(labels).copy()
    c = _cluster_id(out, "cluster", cluster)
    members = np.flatnonzero(out == c)
    if len(members) < n_clusters:
        raise ValueError(f"cluster {c} has {len(members)} photos; it cannot be split into n_clusters={n_clusters}")
    X = np.asarray(getattr(X, "vectors", X), dtype=np.float32)
    parts = KMeans(n_clusters=n_clusters, random_state=random_state).fit(X[members]).labels_
    new_ids = {0: c, **{p: out.max() + p for p in range(1, n_clusters)}}
    out[members] = [new_ids[p] for p in parts]
    return out


@dataclass
class ClusterEdits:
    """A clustering being edited by hand: ``labels``, ``names`` {id: name}, with ``undo`` and a ``log``.

    Every operation returns ``self`` (so calls chain) and appends a line to ``log`` (time, operation, details).

    Examples
    --------
    >>> e = ClusterEdits([0, 0, 1, 1, 2])
    >>> e.move([4], 1).merge(0, 1).labels.tolist()
    [0, 0, 0, 0, 0]
    >>> e.undo().labels.tolist()
    [0, 0, 1, 1, 1]
    """

    labels: np.ndarray
    names: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    log: list = field(default_factory=list)

    def __post_init__(self):
        self.labels = _labels(self.labels).copy()
        self.names = {int(k): str(v) for k, v in dict(self.names).items()}

    def _do(self, new_labels, operation: str, details: str, names=None):
        import datetime

        self.history.append((self.labels, dict(self.names)))
        self.labels = new_labels
        if names is not None:
            self.names = names
        self.log.append({"time": datetime.datetime.now().isoformat(timespec="seconds"), "operation": operation,
                         "details": details})
        return self

    def move(self, indices, to: int):
        idx = np.asarray(indices, dtype=np.int64).ravel()
        return self._do(move(self.labels, idx, to), "move", f"{len(idx)} photos to cluster {to}")

    def merge(self, a: int, b: int):
        names = {k: v for k, v in self.names.items() if k != b}
        return self._do(merge(self.labels, a, b), "merge", f"cluster {b} into {a}", names)

    def split(self, X, cluster: int, n_clusters: int = 2, random_state=0):
        return self._do(split(self.labels, X, cluster, n_clusters, random_state), "split",
                        f"cluster {cluster} into {n_clusters} (k-means, random_state={random_state})")

    def rename(self, cluster: int, name: str):
        _cluster_id(self.labels, "cluster", cluster)
        return self._do(self.labels, "rename", f"cluster {cluster} -> {name!r}", {**self.names, int(cluster): str(name)})

    def undo(self):
        """Go back one operation (the log keeps an ``undo`` line); ValueError when there is nothing to undo."""
        if not self.history:
            raise ValueError("nothing to undo: no edit was made")
        self.labels, self.names = self.history.pop()
        self.log.append({"time": self.log[-1]["time"] if self.log else "", "operation": "undo", "details": ""})
        return self

    def table(self, paths) -> pd.DataFrame:
        """``path, cluster, name`` per photo (the labels CSV)."""
        if len(paths) != len(self.labels):
            raise ValueError(f"paths has {len(paths)} entries for {len(self.labels)} labels")
        return pd.DataFrame({"path": list(map(str, paths)), "cluster": self.labels,
                             "name": [self.names.get(int(c), "") for c in self.labels]})

    @classmethod
    def from_table(cls, table: pd.DataFrame, paths) -> "ClusterEdits":
        """Edits saved with :meth:`table` (e.g. read back with ``pd.read_csv``), in the order of ``paths``; a
        photo missing from the table is noise (-1)."""
        by_path = dict(zip(table["path"].astype(str), table["cluster"].astype(np.int64)))
        names = {int(c): str(n) for c, n in zip(table["cluster"], table.get("name", pd.Series(dtype=str)))
                 if isinstance(n, str) and n}
        return cls(np.asarray([by_path.get(str(p), -1) for p in paths], dtype=np.int64), names)


# ----------------------------------------------------------------------------------------- edits on disk
def _table_ok(table) -> bool:
    """A log entry's table: None (a reset) or ``path`` and whole-number ``cluster`` lists of one length."""
    if table is None:
        return True
    if not isinstance(table, dict) or not isinstance(table.get("path"), list) or \
            not isinstance(table.get("cluster"), list) or len(table["path"]) != len(table["cluster"]):
        return False
    names = table.get("name", [""] * len(table["path"]))
    return isinstance(names, list) and len(names) == len(table["path"]) and \
        all(isinstance(c, int) and not isinstance(c, bool) for c in table["cluster"])


class EditConflict(RuntimeError):
    """Saved edits changed since they were loaded (another tab or process saved first). Nothing is lost: the
    other save stays in effect and these edits are kept beside it, at ``kept``."""

    def __init__(self, message: str, kept: Path, version: int):
        super().__init__(message)
        self.kept = kept
        self.version = version


class EditFile:
    """The hand edits of one clustering on disk, versioned, with an append-only log.

    ``<folder>/<stem>.csv`` holds the labels in effect (``path, cluster, name``); ``<stem>.log.jsonl`` gets one line
    per save (version, time, operation, details and the whole table after it), so the CSV and every earlier state
    can be rebuilt from it (:meth:`rebuild`). A save names the version it started from (:meth:`load` gives it):
    when another save came in between, it raises :class:`EditConflict` and keeps its own table as
    ``<stem>.conflict-<version>-<n>.csv``, so two tabs never overwrite each other silently. Saves are serialised by a
    file lock and written atomically.

    Examples
    --------
    >>> f = EditFile(tmp, "clothing-lite0-kmeans")                                     # doctest: +SKIP
    >>> e, version = f.load(paths) or (ClusterEdits(labels), 0)                        # doctest: +SKIP
    >>> version = f.save(e.merge(0, 1), paths, version)                                # doctest: +SKIP
    """

    def __init__(self, folder, stem: str):
        self.folder = Path(folder)
        self.stem = str(stem)

    @property
    def csv(self) -> Path:
        return self.folder / f"{self.stem}.csv"

    @property
    def log_path(self) -> Path:
        return self.folder / f"{self.stem}.log.jsonl"

    def _lock(self):
        from filelock import FileLock

        self.folder.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.folder / f".{self.stem}.lock"), timeout=30)

    def _entries(self) -> list:
        """The log's complete lines (a line cut by a crash is ignored: the save it began never finished).

        When the log ends with a whole line (newline included, so not cut by a crash) that is damaged, and the CSV
        is not the table of the last good line, that line was a save that did finish (the CSV is written after it):
        ValueError, rather than reading an older state."""
        import json

        if not self.log_path.is_file():
            return []
        out, damaged_tail = [], False
        text = self.log_path.read_bytes().decode("utf-8", errors="replace")
        for line in text.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            if isinstance(entry, dict) and isinstance(entry.get("version"), int) and "table" in entry \
                    and _table_ok(entry["table"]):
                out.append(entry)
                damaged_tail = False
            elif line.strip():
                damaged_tail = True
        if damaged_tail and text.endswith("\n") and out and not self._csv_is(out[-1]["table"]):
            raise ValueError(f"the last line of {self.log_path} is damaged and {self.csv} is not the save before it, "
                             f"so the newest edits cannot be told: keep the one you trust (move the log away to use "
                             f"the CSV, or delete the CSV and call rebuild() to use the log's last good save)")
        return out

    def _csv_is(self, table) -> bool:
        """Whether the CSV holds ``table`` (a log entry's; None: no CSV)."""
        if not self.csv.is_file():
            return table is None
        try:
            old = self._read_csv()
        except ValueError:
            return False
        return table is not None and len(old) == len(table["path"]) and \
            old["path"].astype(str).tolist() == list(map(str, table["path"])) and \
            old["cluster"].tolist() == [int(c) for c in table["cluster"]] and \
            (old["name"].astype(str).tolist() if "name" in old else [""] * len(old)) == \
            [str(n) for n in table.get("name", [""] * len(old))]

    def _read_csv(self) -> pd.DataFrame:
        """The CSV, checked: a ``path`` and an integer ``cluster`` column (ValueError naming it otherwise)."""
        from ._utils.files import read_csv_table

        table = read_csv_table(self.csv, "edits", keep_default_na=False)
        ok = {"path", "cluster"} <= set(table.columns)
        if ok:
            clusters = pd.to_numeric(table["cluster"], errors="coerce")
            ok = not clusters.isna().any() and bool((clusters == clusters.round()).all())
        if not ok:
            raise ValueError(f"edits={str(self.csv)!r} is damaged or not the kit's (it needs columns path and an "
                             f"integer cluster; found {list(table.columns)}): call rebuild() to write it again from "
                             f"{self.log_path.name}, or delete it to go back to the algorithm's clusters")
        return table.assign(cluster=clusters.astype(np.int64))

    @property
    def version(self) -> int:
        """The number of saves so far (0: none); a reset counts as a save."""
        entries = self._entries()
        return entries[-1]["version"] if entries else (1 if self.csv.is_file() else 0)

    def load(self, paths):
        """``(ClusterEdits, version)`` of the saved edits in the order of ``paths``, or None when there are none."""
        entries = self._entries()
        if entries:  # the log is the record: a crash between its line and the CSV loses nothing
            if entries[-1]["table"] is None:
                return None
            table = pd.DataFrame(entries[-1]["table"])
            return ClusterEdits.from_table(table, paths), entries[-1]["version"]
        if not self.csv.is_file():
            return None
        return ClusterEdits.from_table(self._read_csv(), paths), self.version

    def saved_paths(self) -> set:
        """The photos the saved edits cover (photos added to the folder later are not among them)."""
        loaded = self._entries()
        if loaded:
            return set() if loaded[-1]["table"] is None else set(map(str, loaded[-1]["table"]["path"]))
        return set(self._read_csv()["path"].astype(str)) if self.csv.is_file() else set()

    def save(self, edits: "ClusterEdits", paths, expected_version: int, operation: str = "",
             details: str = "") -> int:
        """Write ``edits`` (labels of ``paths``) if the saved version is still ``expected_version``; return the new
        version. Otherwise keep them beside the other save and raise :class:`EditConflict`."""
        return self._write(edits.table(paths), expected_version, operation or (edits.log[-1]["operation"]
                                                                                if edits.log else "save"),
                           details or (edits.log[-1]["details"] if edits.log else ""))

    def reset(self, expected_version: int) -> int:
        """Back to the algorithm's clusters: the CSV goes, the log keeps every earlier state (a ``reset`` line)."""
        return self._write(None, expected_version, "reset", "back to the algorithm's clusters")

    def _write(self, table, expected_version: int, operation: str, details: str) -> int:
        import datetime
        import json

        from ._utils.files import atomic_write

        with self._lock():
            current = self.version
            if current != int(expected_version):
                if table is None:
                    raise EditConflict(f"the edits were saved again (version {current}, not {expected_version}) "
                                       f"since they were loaded; nothing was reset: reload to see them", self.csv,
                                       current)
                n = 1
                while (kept := self.folder / f"{self.stem}.conflict-{current}-{n}.csv").exists():
                    n += 1
                atomic_write(kept, table.to_csv(index=False).encode("utf-8"))
                raise EditConflict(f"another session saved edits of this clustering (version {current}) after these "
                                   f"were loaded (version {expected_version}); theirs stay in effect and these are "
                                   f"kept in {kept}", kept, current)
            version = current + 1
            entry = {"version": version, "time": datetime.datetime.now().isoformat(timespec="seconds"),
                     "operation": operation, "details": details,
                     "table": None if table is None else {c: table[c].tolist() for c in ("path", "cluster", "name")}}
            if not self.log_path.is_file() and self.csv.is_file():  # edits saved before the log existed
                old = self._read_csv()
                first = {"version": 1, "time": "", "operation": "save", "details": "saved before the log",
                         "table": {c: old[c].tolist() for c in ("path", "cluster", "name") if c in old}}
                with open(self.log_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(first) + "\n")
            with open(self.log_path, "a+b") as f:  # appended first: the CSV can be rebuilt from it
                if f.tell():
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":  # a line cut by a crash: end it, so that it stays apart (and is skipped)
                        f.write(b"\n")
                f.write((json.dumps(entry, default=int) + "\n").encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
            if table is None:
                self.csv.unlink(missing_ok=True)
            else:
                atomic_write(self.csv, table.to_csv(index=False).encode("utf-8"))
            return version

    def rebuild(self) -> Path | None:
        """Write the CSV again from the log's last line (after a crash between the two writes); None after a
        reset."""
        from ._utils.files import atomic_write

        entries = self._entries()
        if not entries:
            return self.csv if self.csv.is_file() else None
        table = entries[-1]["table"]
        if table is None:
            self.csv.unlink(missing_ok=True)
            return None
        atomic_write(self.csv, pd.DataFrame(table).to_csv(index=False).encode("utf-8"))
        return self.csv


# ----------------------------------------------------------------------------------------- new photos
@dataclass(frozen=True)
class Assignment:
    """Where :func:`assign` put the new photos: ``labels`` (existing cluster ids), ``similarity`` (cosine to the
    chosen centre, or the mean of the voting neighbours), ``far`` (candidates for a new cluster: for every cluster, much
    less similar to its centre than its own members, see ``z``)."""

    labels: np.ndarray
    similarity: np.ndarray
    far: np.ndarray

    def table(self, paths=None) -> pd.DataFrame:
        out = pd.DataFrame({"cluster": self.labels, "similarity": self.similarity, "far": self.far})
        if paths is not None:
            out.insert(0, "path", list(map(str, paths)))
        return out


def assign(new_vectors, vectors, labels, method: str = "centroid", k: int = 10, z: float = 3.0) -> Assignment:
    """Place new photos in existing clusters, keeping the cluster ids.

    Parameters
    ----------
    new_vectors : Embeddings or array (M, D) -- the new photos
    vectors, labels : the clustered photos and their clusters (negative = noise, never assigned)
    method : {"centroid", "knn"}
        Nearest cluster centre (cosine), or the majority of the ``k`` nearest clustered photos.
    z : float
        A new photo is ``far`` (a candidate for a new cluster) when, for every cluster, its similarity to the
        cluster's centre is more than ``z`` robust standard deviations (1.4826 x the median absolute deviation, at least 10% of the median
        distance) below the median of the cluster's members, as in :func:`outlier_scores`.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], float)
    >>> assign([[0.95, 0.05], [0.05, 0.95]], X, [3, 3, 7, 7]).labels.tolist()
    [3, 7]
    """
    validate_params({"method": [StrOptions({"centroid", "knn"})], "k": [Interval(Integral, 1, None, closed="left")],
                     "z": [Interval(Real, 0, None, closed="neither")]},
                    {"method": method, "k": k, "z": z}, "assign")
    Xn = l2_normalize(np.asarray(getattr(vectors, "vectors", vectors), dtype=np.float32))
    Q = l2_normalize(np.atleast_2d(np.asarray(getattr(new_vectors, "vectors", new_vectors), dtype=np.float32)))
    lab = _labels(labels)
    if len(lab) != len(Xn):
        raise ValueError(f"labels has {len(lab)} entries for {len(Xn)} vectors; pass one label per row")
    if Q.shape[1] != Xn.shape[1]:
        raise ValueError(f"new_vectors have {Q.shape[1]} dimensions and vectors {Xn.shape[1]}; embed the new photos "
                         f"with the same backbone")
    ids, centres = _centres(Xn, lab)
    if not len(ids):
        raise ValueError("labels has no cluster (every photo is noise); cluster the photos first")
    sim_c = Q @ centres.T
    if method == "centroid":
        pick = sim_c.argmax(1)
        similarity = sim_c[np.arange(len(Q)), pick]
    else:
        keep = np.flatnonzero(lab >= 0)
        sims = Q @ Xn[keep].T
        kk = min(int(k), len(keep))
        near = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        votes = lab[keep][near]
        pick = np.empty(len(Q), np.int64)
        similarity = np.empty(len(Q))
        for r in range(len(Q)):
            values, counts = np.unique(votes[r], return_counts=True)
            best = values[counts == counts.max()]
            # ties: the cluster whose voters are most similar
            score = [sims[r, near[r]][votes[r] == v].mean() for v in best]
            chosen = best[int(np.argmax(score))]
            pick[r] = np.searchsorted(ids, chosen)
            similarity[r] = sims[r, near[r]][votes[r] == chosen].mean()
    floor = {}
    for i, c in enumerate(ids):
        distance = 1.0 - Xn[lab == c] @ centres[i]
        med = np.median(distance)
        floor[c] = 1.0 - (med + z * max(1.4826 * np.median(np.abs(distance - med)), 0.1 * med, 1e-6))
    chosen_ids = ids[pick]
    far = (sim_c < np.asarray([floor[c] for c in ids])[None, :]).all(axis=1)  # outside every cluster's reach
    return Assignment(labels=chosen_ids.astype(np.int64), similarity=np.asarray(similarity, np.float64), far=far)
