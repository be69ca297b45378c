"""On-disk cache of embeddings.

An entry is keyed by the image file's *content* hash inside a namespace that is itself a hash of
(backbone weights identity, preprocessing, the kit's preprocessing version, cache format version). Two
files with the same name in different folders never share an entry; an edited file gets a new key;
identical files share one.

Layout: ``<cache_dir>/.kit-cache`` (a small JSON marker: ``kind``, ``format``), then
``<cache_dir>/<namespace>/meta.json`` and ``<cache_dir>/<namespace>/<hh>/<hash>.f32`` (raw little-endian
float32), where ``namespace`` is 24 hex digits and ``hh`` the first two digits of ``hash``. Every write
goes to a temporary file in the same folder and is renamed into place, so a crash never leaves a
half-written entry.

The cache only ever deletes what it wrote: `clear` refuses a folder without the ``.kit-cache`` marker,
and inside a marked folder removes only entry files, ``meta.json`` and the folders of that layout once
they are empty; anything else found there (a foreign file, a folder with another name) is left alone.
Caches written by kit versions before the marker existed are adopted (marked) only at the default
location, ``$KIT_HOME/embeddings``; elsewhere such a folder is refused and can be deleted by hand (its
entries are not read by this version anyway: the namespace now includes the preprocessing version).
"""
from __future__ import annotations

import hashlib
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .._utils import config as _config
from .._utils.config import __version__, kit_home
from .._utils.files import atomic_write, claim, is_plain_dir, is_plain_file, require_marker, write_error

CACHE_FORMAT = 1
KIND = "embeddings"
_NAMESPACE = re.compile(r"[0-9a-f]{24}")
_SHARD = re.compile(r"[0-9a-f]{2}")
_KEY = re.compile(r"[0-9a-f]{2,128}")
LOCKS = ".locks"  # work_lock's lock files: removed by clear()
_LOCK = re.compile(r"[0-9a-f]{24}-[0-9a-f]{24}\.lock")
_TMP = re.compile(r"\.tmp-[a-z0-9_]{8}")  # what atomic_write's mkstemp leaves behind after a crash


class CacheNotWrittenWarning(UserWarning):
    """The embedding cache could not be written (a full disk, a read-only folder): the embeddings were computed
    and returned, and will be computed again next time."""


def default_cache_dir() -> Path:
    """``$KIT_HOME/embeddings`` (``~/.cache/kit/embeddings`` by default)."""
    return kit_home() / "embeddings"


def _read_meta(ns: Path) -> dict | None:
    """``meta.json`` of a namespace folder the kit wrote (24 hex digits, kit keys inside); None otherwise."""
    if not (_NAMESPACE.fullmatch(ns.name) and is_plain_dir(ns) and is_plain_file(ns / "meta.json")):
        return None
    try:
        meta = json.loads((ns / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or not {"backbone", "preprocessing", "format"} <= set(meta):
        return None
    return meta


def _entry_files(ns: Path):
    """``(shard folder, [entry files])`` of a namespace: ``<hh>/<hh...>.f32`` regular files only."""
    for shard in sorted(ns.iterdir()):
        if _SHARD.fullmatch(shard.name) and is_plain_dir(shard):
            yield shard, [f for f in shard.iterdir() if is_plain_file(f) and f.suffix == ".f32"
                          and _KEY.fullmatch(f.stem) and f.stem.startswith(shard.name)]


def _namespaces(root: Path):
    if not root.is_dir():
        return
    for ns in sorted(root.iterdir()):
        meta = _read_meta(ns)
        if meta is not None:
            yield ns, meta


def _looks_legacy(root: Path) -> bool:
    return any(True for _ in _namespaces(Path(root)))


class EmbeddingCache:
    """Embeddings of one (backbone, preprocessing) pair, stored under ``cache_dir``.

    The first `put` marks ``cache_dir`` as a kit embedding cache (``.kit-cache``); a folder that already holds
    other files, or another kind of kit cache, is refused with ``ValueError``.

    Parameters
    ----------
    backbone_key : str
        Identity of the network's weights (``BackboneSpec.cache_key``).
    preprocessing : dict
        Everything that changes the pixels fed to the network (input size, resize mode...). The kit's
        ``PREPROCESSING_VERSION`` (decoding, resizing) is added to the namespace too.
    cache_dir : str or Path, optional
        Defaults to ``default_cache_dir()``.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> c = EmbeddingCache("demo-weights", {"input_size": 224}, tempfile.mkdtemp())
    >>> c.put(["0a1b2c"], np.ones((1, 4), np.float32))
    >>> c.get(["0a1b2c", "ffff"])["0a1b2c"].tolist()
    [1.0, 1.0, 1.0, 1.0]
    """

    def __init__(self, backbone_key: str, preprocessing: dict, cache_dir=None):
        self.backbone_key = backbone_key
        self.preprocessing = dict(preprocessing)
        self.preprocessing_version = _config.PREPROCESSING_VERSION
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        ident = json.dumps({"backbone": backbone_key, "preprocessing": self.preprocessing,
                            "preprocessing_version": self.preprocessing_version, "format": CACHE_FORMAT},
                           sort_keys=True)
        self.namespace = hashlib.blake2b(ident.encode(), digest_size=12).hexdigest()
        self.folder = self.cache_dir / self.namespace
        self._claimed = False
        self.unwritable_ = None  # why the cache could not be written (full disk, read-only folder), once it failed
        self._meta_ok = False

    def _entry(self, key: str) -> Path:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(f"cache key {key!r} must be a lowercase hex content hash (kit.io.file_hash)")
        return self.folder / key[:2] / f"{key}.f32"

    def get(self, keys) -> dict:
        """Return ``{key: vector}`` for the keys present (missing keys are simply absent)."""
        out = {}
        if not self.folder.is_dir():
            return out
        for key in keys:
            try:
                with open(self._entry(key), "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                continue
            if len(data) % 4:
                continue  # not whole float32s (torn by a power cut, or not ours): computed again and rewritten
            out[key] = np.frombuffer(data, dtype="<f4")
        return out

    def work_lock(self, keys):
        """A lock held while computing the entries ``keys``: a second process (or thread) about to compute the
        same set waits, then finds them in the cache instead of computing and writing them again. Different sets
        (other photos) run side by side. An inter-process file lock (``filelock``, released by the operating
        system when a process dies) in ``cache_dir/.locks/``; a cache that cannot be written gives no lock."""
        import contextlib

        from filelock import FileLock

        digest = hashlib.blake2b("\n".join(sorted(keys)).encode(), digest_size=12).hexdigest()
        locks = self.cache_dir / LOCKS
        try:
            if not self._claimed:
                claim(self.cache_dir, KIND, CACHE_FORMAT, "cache_dir", lambda p: _read_meta(p) is not None)
                self._claimed = True
            locks.mkdir(exist_ok=True)
        except OSError:
            return contextlib.nullcontext()  # put() says why the cache cannot be written
        return FileLock(str(locks / f"{self.namespace}-{digest}.lock"))

    def put(self, keys, vectors: np.ndarray) -> None:
        """Store one vector per key (atomically, one file each)."""
        vectors = np.asarray(vectors, dtype="<f4")
        if len(keys) != len(vectors):
            raise ValueError(f"put() got {len(keys)} keys and {len(vectors)} vectors; they must match")
        paths = [self._entry(key) for key in keys]
        if self.unwritable_ is not None:
            return
        try:
            if not self._claimed:
                claim(self.cache_dir, KIND, CACHE_FORMAT, "cache_dir", lambda p: _read_meta(p) is not None)
                self._claimed = True
            if not self._meta_ok:
                if _read_meta(self.folder) is None:  # absent, or damaged: the kit's own file, written again
                    atomic_write(self.folder / "meta.json", json.dumps({
                        "backbone": self.backbone_key, "preprocessing": self.preprocessing, "format": CACHE_FORMAT,
                        "preprocessing_version": self.preprocessing_version, "kit_version": __version__,
                        "dim": int(vectors.shape[1]) if vectors.ndim == 2 else None,
                    }, indent=1).encode())
                self._meta_ok = True
            for path, vec in zip(paths, vectors):
                atomic_write(path, vec.tobytes(), durable=False)  # an atomic rename; get() skips a torn entry
        except OSError as exc:  # a full disk or a read-only folder: the vectors are still returned, not cached
            self.unwritable_ = str(write_error(exc, self.folder))
            warnings.warn(f"The embedding cache cannot be written, so these embeddings will be computed again next "
                          f"time: {self.unwritable_}", CacheNotWrittenWarning, stacklevel=2)


def info(cache_dir=None) -> pd.DataFrame:
    """One row per namespace: backbone, preprocessing, entries, megabytes, path.

    Only folders the kit wrote are listed (a 24-hex-digit name holding the kit's ``meta.json``); anything else
    in ``cache_dir`` is ignored, and nothing is written.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    rows = []
    for ns, meta in _namespaces(root):
        files = [f for _, entries in _entry_files(ns) for f in entries]
        rows.append(dict(
            backbone=meta.get("backbone", "?"), preprocessing=json.dumps(meta.get("preprocessing", {})),
            entries=len(files), megabytes=sum(f.stat().st_size for f in files) / 1e6, path=str(ns),
        ))
    return pd.DataFrame(rows, columns=["backbone", "preprocessing", "entries", "megabytes", "path"])


def clear(cache_dir=None, backbone: str | None = None) -> int:
    """Delete cached embeddings (all, or only those whose backbone key contains ``backbone``).

    Only what the cache wrote is deleted: ``cache_dir`` must carry the ``.kit-cache`` marker (else
    ``ValueError``, nothing deleted); in it, only namespace folders (24 hex digits with the kit's
    ``meta.json``) are visited, and in those only the ``<hh>/<hash>.f32`` entries, leftover temporary files of
    interrupted writes and ``meta.json`` are removed, then the folders that became empty. A foreign file
    stays, and so does the folder holding it. The marker stays too. A cache written before markers existed
    is adopted at the default location only.

    Returns the number of entries removed (0 when ``cache_dir`` does not exist or is empty).

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> EmbeddingCache("demo-weights", {"input_size": 224}, folder).put(["0a1b2c"], np.ones((1, 4)))
    >>> clear(folder)
    1
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if not root.exists() or (root.is_dir() and not any(root.iterdir())):
        return 0  # nothing there to delete
    require_marker(root, KIND, CACHE_FORMAT, default_cache_dir(), _looks_legacy)
    removed = 0
    for ns, meta in list(_namespaces(root)):
        if backbone is not None and backbone not in str(meta.get("backbone", "")):
            continue
        for shard, entries in list(_entry_files(ns)):
            for f in entries:
                f.unlink(missing_ok=True)
                removed += 1
            for f in shard.iterdir():
                if _TMP.fullmatch(f.name) and is_plain_file(f):
                    f.unlink(missing_ok=True)
            _rmdir_if_empty(shard)
        (ns / "meta.json").unlink(missing_ok=True)
        for f in ns.iterdir():
            if _TMP.fullmatch(f.name) and is_plain_file(f):
                f.unlink(missing_ok=True)
        _rmdir_if_empty(ns)
    locks = root / LOCKS
    if backbone is None and is_plain_dir(locks):
        for f in locks.iterdir():
            if _LOCK.fullmatch(f.name) and is_plain_file(f):
                f.unlink(missing_ok=True)
        _rmdir_if_empty(locks)
    return removed


def _rmdir_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()  # fails, and the folder stays, when anything the kit did not write is left in it
    except OSError:
        pass
