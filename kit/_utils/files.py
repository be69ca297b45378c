"""The kit's files: the one atomic write, the one ownership marker, and paths on fsspec file systems.

* :func:`atomic_file` / :func:`atomic_write`: every file the kit writes goes to a temporary file of its own in the
  same folder (``mkstemp``: a name no one else has), is flushed and ``fsync``-ed, then renamed into place, so a
  crash never leaves a half-written file under the real name, and only the temporary file this call made is
  removed on failure. On a URL the file is written under a hidden name, then moved.
* :func:`marker_kind`, :func:`write_marker`, :func:`claim`, :func:`require_marker`: a folder the kit writes into
  (the embedding cache, the projection cache, an embedding store) carries a small JSON marker naming its kind;
  the kit writes only into a folder it claimed and deletes only in a folder carrying its marker.

Paths of an embedding store on any fsspec file system (``s3://``, ``gs://``, ``memory://``, ``file://``...).

:class:`RemotePath` gives a store on a URL the small part of :class:`pathlib.Path` that :mod:`kit.scale` uses
(``/``, ``name``, ``parent``, ``exists``, ``is_dir``, ``is_file``, ``iterdir``, ``read_text``, ``mkdir``,
``unlink``, ``rmdir``, ``stat``, ``open``), so the store's code is the same for a local folder and a URL. Local
folders stay plain :class:`pathlib.Path` objects: there the store keeps the guarantees of the operating system
(an exclusive create, ``fsync``, an atomic ``os.replace``, symbolic links refused) that a generic layer would hide.
That is why this is not ``universal_pathlib``: it would route local folders through fsspec too.

On an object store a file becomes visible only once it is completely uploaded, so the store's "write a hidden
temporary file, then move it into place" stays safe there: a reader never takes a half-written file for data.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import tempfile
from pathlib import Path

from .config import __version__

_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]+://")  # two letters at least: "C://" is not a URL


def is_url(value) -> bool:
    """True for a string such as ``"s3://bucket/store"`` or ``"memory://store"`` (not a local path)."""
    return isinstance(value, str) and bool(_URL.match(value))


class _Stat:
    def __init__(self, size: int, mtime):
        self.st_size = size
        self.st_mtime = mtime  # None when the file system does not tell
        self.st_mtime_ns = None if mtime is None else int(mtime * 1e9)


class RemotePath:
    """A file or folder on an fsspec file system, with the subset of the ``pathlib`` API the store uses.

    Pickles with its file system (Dask workers get an equal one), compares and hashes by URL.
    """

    def __init__(self, fs, path: str, protocol: str):
        self.fs = fs
        self.path = path.rstrip("/") or "/"
        self.protocol = protocol

    @classmethod
    def from_url(cls, url: str) -> "RemotePath":
        import fsspec

        try:
            fs, path = fsspec.core.url_to_fs(url)
        except (ImportError, ValueError) as exc:
            raise ValueError(f"store={url!r}: fsspec cannot open this URL ({exc}); install the package for its "
                             f"protocol (s3fs for s3://, gcsfs for gs://, adlfs for az://) or pass a local folder"
                             ) from None
        protocol = url.split("://", 1)[0]
        return cls(fs, path, protocol)

    # -------------------------------------------------------------- naming
    def __str__(self) -> str:
        return f"{self.protocol}://{self.path}"

    def __repr__(self) -> str:
        return f"RemotePath({str(self)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, RemotePath) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __lt__(self, other) -> bool:
        return str(self) < str(other)

    def __truediv__(self, name) -> "RemotePath":
        return RemotePath(self.fs, f"{self.path.rstrip('/')}/{name}", self.protocol)

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    @property
    def parent(self) -> "RemotePath":
        head = self.path.rstrip("/").rsplit("/", 1)[0]
        return RemotePath(self.fs, head or "/", self.protocol)

    def resolve(self) -> "RemotePath":
        return self

    def expanduser(self) -> "RemotePath":
        return self

    # -------------------------------------------------------------- queries
    def exists(self) -> bool:
        return self.fs.exists(self.path)

    def is_dir(self) -> bool:
        return self.fs.isdir(self.path)

    def is_file(self) -> bool:
        return self.fs.isfile(self.path)

    def is_symlink(self) -> bool:
        return False

    def iterdir(self):
        if not self.is_dir():
            return iter(())
        names = sorted(entry.rstrip("/").rsplit("/", 1)[-1] for entry in self.fs.ls(self.path, detail=False))
        return iter([self / n for n in names if n])

    def stat(self) -> _Stat:
        info = self.fs.info(self.path)
        try:
            mtime = self.fs.modified(self.path).timestamp()
        except (NotImplementedError, AttributeError, OSError, ValueError):
            mtime = None
        return _Stat(int(info.get("size") or 0), mtime)

    def read_text(self) -> str:
        return self.fs.cat_file(self.path).decode()

    def read_bytes(self) -> bytes:
        return self.fs.cat_file(self.path)

    def open(self, mode: str = "rb"):
        return self.fs.open(self.path, mode)

    # -------------------------------------------------------------- changes
    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        if self.fs.exists(self.path):
            if not exist_ok:
                raise FileExistsError(str(self))
            return
        self.fs.makedirs(self.path, exist_ok=True)

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            self.fs.rm_file(self.path)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def rmdir(self) -> None:
        if any(True for _ in self.iterdir()):
            raise OSError(f"{self} is not empty")
        try:
            self.fs.rmdir(self.path)
        except (FileNotFoundError, NotImplementedError):
            pass  # object stores have no empty folders to remove

    def replace(self, target: "RemotePath") -> None:
        self.fs.mv(self.path, target.path)


def as_location(value):
    """A :class:`RemotePath` for a URL string (or a RemotePath), else an expanded local :class:`Path`."""
    if isinstance(value, RemotePath):
        return value
    if is_url(value):
        if value.startswith("file://"):
            return Path(value[len("file://"):]).expanduser()
        return RemotePath.from_url(value)
    return Path(value).expanduser()


def _read_parquet(path, read):
    """``read(path or open file)``; a file cut short, damaged (a page checksum fails) or not Parquet raises a
    ValueError naming it (a missing file or a permission error stays the OSError it is)."""
    import pyarrow as pa

    try:
        if isinstance(path, RemotePath):
            with path.open("rb") as f:
                return read(f)
        return read(path)
    except (pa.ArrowException, UnicodeDecodeError, OSError) as exc:
        if isinstance(exc, OSError) and type(exc) is not OSError:
            raise
        raise ValueError(f"{path} is not a readable Parquet file ({type(exc).__name__}: {exc}): it was cut short or "
                         f"damaged; move it away and write it again (a partition of a kit embedding store: the next "
                         f"kit.embed(..., store=...) embeds its photos again)") from exc


def read_table(path, columns=None):
    """A Parquet file as an Arrow table, from a local path or a :class:`RemotePath` (page checksums verified)."""
    import pyarrow.parquet as pq

    columns = None if columns is None else list(columns)
    return _read_parquet(path, lambda f: pq.read_table(f, columns=columns, page_checksum_verification=True))


def read_metadata(path):
    import pyarrow.parquet as pq

    return _read_parquet(path, pq.read_metadata)


def read_schema(path):
    import pyarrow.parquet as pq

    return _read_parquet(path, pq.read_schema)


def read_csv_table(path, param: str, **kwargs):
    """A CSV file as a DataFrame (``pandas.read_csv(path, **kwargs)``); an empty, cut or non-UTF-8 file raises a
    ValueError naming ``param`` and the path."""
    import pandas as pd

    try:
        return pd.read_csv(path, **kwargs)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"{param}={str(path)!r} is not a readable CSV file ({type(exc).__name__}: {exc}); pass a "
                         f"UTF-8 CSV with a header line, or write the file again") from None


# ------------------------------------------------------------------ the one atomic write
_FULL = "free space, or choose a folder on another disk"
_READ_ONLY = "choose a folder you can write to (for the kit's own files: set KIT_HOME)"
_WRITE_HINTS = {errno.ENOSPC: f"the disk is full: {_FULL}", errno.EDQUOT: f"the disk quota is used up: {_FULL}",
                errno.EFBIG: f"larger than this system lets a file be (a file-size limit, or a full disk): {_FULL}",
                errno.EACCES: f"this folder is not writable: {_READ_ONLY}",
                errno.EPERM: f"this folder is not writable: {_READ_ONLY}",
                errno.EROFS: f"this disk is read-only: {_READ_ONLY}"}


def write_error(exc: BaseException, path) -> BaseException:
    """The error to raise when writing ``path`` failed with ``exc``: a full disk, a file-size limit or a read-only
    folder becomes the same ``OSError`` subclass and ``errno`` with the path and what to do in its message; any
    other exception is returned as it is. Nothing half-written is left: the caller removed its temporary file."""
    if not isinstance(exc, OSError) or exc.errno not in _WRITE_HINTS or _WRITE_HINTS[exc.errno] in str(exc):
        return exc
    strerror = f"{exc.strerror or os.strerror(exc.errno)} ({_WRITE_HINTS[exc.errno]})"
    return type(exc)(exc.errno, strerror, str(exc.filename or path))


def raise_write_error(exc: BaseException, path):
    """Raise :func:`write_error` of ``exc`` (``exc`` itself when it is not a full disk or a read-only folder)."""
    err = write_error(exc, path)
    if err is exc:
        raise exc
    raise err from exc


@contextlib.contextmanager
def atomic_file(path, mode: str = "wb", *, prefix: str = ".tmp-", suffix: str = "", chmod: int | None = None,
                durable: bool = True):
    """A file object to write ``path`` through: a temporary file of ``path``'s folder, flushed, ``fsync``-ed and
    renamed onto ``path`` when the block ends without an error, removed (and nothing else) when it raises.

    ``mode`` is ``"wb"`` or ``"w"`` (UTF-8 text); ``chmod`` sets the permissions (``mkstemp`` makes ``0o600``).
    ``durable=False`` skips the ``fsync`` (many small files a reader checks anyway, such as cache entries: the
    rename stays atomic, only a power cut can lose the newest). ``path`` may be a :class:`RemotePath`: the file is
    written under a hidden name, then moved into place."""
    if isinstance(path, RemotePath):
        tmp = path.parent / f"{prefix}{secrets.token_hex(16)}{suffix}"
        try:
            with tmp.open(mode) as f:
                yield f
            tmp.replace(path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise
        return
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=suffix)  # ours alone
    except OSError as exc:
        raise_write_error(exc, path)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if "b" not in mode else {})) as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        if chmod is not None:
            os.chmod(tmp, chmod)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise_write_error(exc, path)


def atomic_path(path, *, prefix: str = ".tmp-", suffix: str = ""):
    """For writers that need a path, not a file object (``to_excel``, ``pq.write_table``): a context manager
    giving a temporary path in ``path``'s folder that is renamed onto ``path`` on success, removed on failure."""
    return _AtomicPath(Path(path), prefix, suffix)


class _AtomicPath:
    def __init__(self, path: Path, prefix: str, suffix: str):
        self.path, self.prefix, self.suffix = path, prefix, suffix

    def __enter__(self) -> str:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, self.tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.prefix, suffix=self.suffix)
        except OSError as exc:
            raise_write_error(exc, self.path)
        os.close(fd)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            try:
                with open(self.tmp, "rb+") as f:
                    os.fsync(f.fileno())
                os.replace(self.tmp, self.path)
                return False
            except BaseException as err:
                with contextlib.suppress(OSError):
                    os.unlink(self.tmp)
                raise_write_error(err, self.path)
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)
        if write_error(exc, self.path) is not exc:
            raise_write_error(exc, self.path)
        return False


def make_dirs(folder) -> None:
    """``folder.mkdir(parents=True, exist_ok=True)``; a full disk or a read-only parent raises :func:`write_error`."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise_write_error(exc, folder)


def atomic_write(path, data: bytes, **kwargs) -> None:
    """Write ``data`` to ``path`` atomically (:func:`atomic_file`)."""
    with atomic_file(path, "wb", **kwargs) as f:
        f.write(data)


# ------------------------------------------------------------------ the one ownership marker
#: The marker of the kit's caches (embeddings, projections); an embedding store names its own (``.kit-store``).
MARKER = ".kit-cache"


def same_path(a, b) -> bool:
    try:
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    except OSError:
        return False


def marker_kind(root, name: str = MARKER) -> str | None:
    """The ``kind`` recorded in ``root/<name>``; None when there is no (readable) marker."""
    try:
        data = json.loads((root / name).read_text())
    except (OSError, ValueError):  # (FileNotFoundError is an OSError, locally and on fsspec file systems)
        return None
    return data.get("kind") if isinstance(data, dict) and isinstance(data.get("kind"), str) else None


def write_marker(root, kind: str, fmt: int, name: str = MARKER) -> None:
    atomic_write(root / name, json.dumps({"kind": kind, "format": fmt, "kit_version": __version__},
                                         indent=1).encode())


def _label(kind: str) -> str:
    return {"embeddings": "embedding", "projections": "projection"}.get(kind, kind)


def claim(root: Path, kind: str, fmt: int, param: str, is_ours) -> None:
    """Make ``root`` a kit cache of ``kind`` before the first write: mark it when it is new, empty (hidden files
    aside) or holds only entries that ``is_ours(path)`` recognises; refuse a folder holding anything else,
    or a cache of another kind."""
    root = Path(root)
    found = marker_kind(root)
    if found == kind:
        return
    if found is not None:
        raise ValueError(f"{param}={str(root)!r} is the kit's {_label(found)} cache; keep the {_label(kind)} "
                         f"cache in a folder of its own (the default is $KIT_HOME/{kind})")
    if root.is_dir():
        foreign = [p.name for p in root.iterdir() if not p.name.startswith(".") and not is_ours(p)]
        if foreign:
            raise ValueError(f"{param}={str(root)!r} already holds files that are not a kit {_label(kind)} cache "
                             f"(e.g. {sorted(foreign)[0]!r}) and has no {MARKER} marker; pass a new or empty "
                             f"folder (the default is $KIT_HOME/{kind}, i.e. ~/.cache/kit/{kind})")
    elif root.exists():
        raise ValueError(f"{param}={str(root)!r} is a file, not a folder; pass a folder for the {_label(kind)} "
                         f"cache")
    write_marker(root, kind, fmt)


def require_marker(root: Path, kind: str, fmt: int, default: Path, looks_legacy) -> None:
    """Before deleting anything in ``root``: it must carry the ``kind`` marker. A cache from before the marker
    (``looks_legacy(root)``) at the ``default`` location is adopted (marked); anything else raises."""
    root = Path(root)
    found = marker_kind(root)
    if found == kind:
        return
    if found is not None:
        raise ValueError(f"cache_dir={str(root)!r} is the kit's {_label(found)} cache, not its {_label(kind)} "
                         f"cache; nothing was deleted")
    if looks_legacy(root) and same_path(root, default):
        write_marker(root, kind, fmt)  # the kit's own default folder, written before markers existed
        return
    hint = (" It looks like a cache written by an older kit version, whose entries this version no longer "
            "reads: delete that folder yourself if you no longer need it." if looks_legacy(root) else "")
    raise ValueError(f"cache_dir={str(root)!r} is not a kit {_label(kind)} cache (no {MARKER} marker), so nothing was "
                     f"deleted; pass the folder the kit created (the default is $KIT_HOME/{kind}, i.e. "
                     f"~/.cache/kit/{kind}).{hint}")


def is_plain_dir(p) -> bool:
    """A folder, not a symbolic link to one (the kit never follows links when it deletes)."""
    return p.is_dir() and not p.is_symlink()


def is_plain_file(p) -> bool:
    return p.is_file() and not p.is_symlink()
