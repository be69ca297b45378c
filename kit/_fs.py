"""Paths of an embedding store on any fsspec file system (``s3://``, ``gs://``, ``memory://``, ``file://``...).

:class:`RemotePath` gives a store on a URL the small part of :class:`pathlib.Path` that :mod:`kit.store` uses
(``/``, ``name``, ``parent``, ``exists``, ``is_dir``, ``is_file``, ``iterdir``, ``read_text``, ``mkdir``,
``unlink``, ``rmdir``, ``stat``, ``open``), so the store's code is the same for a local folder and a URL. Local
folders stay plain :class:`pathlib.Path` objects: there the store keeps the guarantees of the operating system
(an exclusive create, ``fsync``, an atomic ``os.replace``, symbolic links refused) that a generic layer would hide.
That is why this is not ``universal_pathlib``: it would route local folders through fsspec too.

On an object store a file becomes visible only once it is completely uploaded, so the store's "write a hidden
temporary file, then move it into place" stays safe there: a reader never takes a half-written file for data.
"""
from __future__ import annotations

import re
from pathlib import Path

__all__ = ["RemotePath", "as_location", "is_url", "read_table", "read_metadata", "read_schema",
           "write_bytes_atomic"]

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


def write_bytes_atomic(path, data: bytes, tmp_name: str) -> None:
    """Write ``data`` to ``path`` through the hidden ``tmp_name`` in the same folder (remote paths only)."""
    tmp = path.parent / tmp_name
    try:
        with tmp.open("wb") as f:
            f.write(data)
        tmp.replace(path)
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise


def read_table(path, columns=None):
    """A Parquet file as an Arrow table, from a local path or a :class:`RemotePath`."""
    import pyarrow.parquet as pq

    if isinstance(path, RemotePath):
        with path.open("rb") as f:
            return pq.read_table(f, columns=None if columns is None else list(columns))
    return pq.read_table(path, columns=None if columns is None else list(columns))


def read_metadata(path):
    import pyarrow.parquet as pq

    if isinstance(path, RemotePath):
        with path.open("rb") as f:
            return pq.read_metadata(f)
    return pq.read_metadata(path)


def read_schema(path):
    import pyarrow.parquet as pq

    if isinstance(path, RemotePath):
        with path.open("rb") as f:
            return pq.read_schema(f)
    return pq.read_schema(path)

