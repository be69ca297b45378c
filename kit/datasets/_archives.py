"""Archives, safely: zip uploads (`extract_zip`) and the tar/zip files of public sets.

A member with an absolute path, a drive letter or ``..`` (or a tar link leaving the archive) makes the whole
archive refused. Nothing is ever overwritten: `extract_zip` refuses before writing if any image would land on an
existing path, and when extraction fails only the files this call wrote are removed.
"""
from __future__ import annotations

import io
import math
import posixpath
import re
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .._utils.files import atomic_file
from ..io import IMAGE_EXTENSIONS

_CHUNK = 1 << 20


def _check_member(name: str, archive: str = "archive") -> str:
    clean = name.replace("\\", "/")
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if clean.startswith("/") or re.match(r"^[A-Za-z]:", clean) or ".." in parts or "\x00" in clean:
        raise ValueError(f"{archive} member {name!r} would be written outside the destination folder "
                         f"(absolute path, drive letter or '..'); refusing the whole archive - rebuild it "
                         f"with relative paths")
    return "/".join(parts)


def _safe_tar_extract(path: Path, dest: Path) -> None:
    with tarfile.open(path, "r:*") as tar:
        members = tar.getmembers()
        for m in members:
            name = _check_member(m.name, "tar")
            if m.issym() or m.islnk():
                target = m.linkname.replace("\\", "/")
                joined = posixpath.normpath(posixpath.join(posixpath.dirname(name), target) if m.issym() else target)
                if target.startswith("/") or joined == ".." or joined.startswith("../"):
                    raise ValueError(f"tar member {m.name!r} is a link to {m.linkname!r}, outside the archive; "
                                     f"refusing the whole archive")
            elif not (m.isfile() or m.isdir()):
                raise ValueError(f"tar member {m.name!r} is a device or fifo; refusing the whole archive")
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # a second line of defence
        tar.extractall(dest, members=members, **kwargs)


def _extract(path: Path, fmt: str, dest: Path) -> None:
    if fmt not in ("zip", "tar", "tar.gz", "tgz", "tar.bz2", "tar.xz"):
        raise ValueError(f"archive={fmt!r} is not supported; use 'tar.gz', 'tgz', 'tar', 'tar.bz2', 'tar.xz' or 'zip'")
    try:
        if fmt != "zip":
            return _safe_tar_extract(path, dest)
        with zipfile.ZipFile(path) as zf:
            todo = [(i, _check_member(i.filename, "zip")) for i in zf.infolist()]
            _stream_zip(zf, [(i, n) for i, n in todo if _zip_skip_reason(i, n) is None], dest, math.inf)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError) as exc:
        raise ValueError(f"archive={fmt!r}: {path.name} is corrupt, unsafe or not a {fmt} file ({exc})") from exc


def _zip_skip_reason(info: zipfile.ZipInfo, name: str) -> str | None:
    parts = name.split("/")
    checks = ((info.is_dir() or not name, "folder"), ("__MACOSX" in parts, "macOS metadata (__MACOSX)"),
              (any(p.startswith(".") for p in parts), "hidden file"),
              ((info.external_attr >> 16) & 0o170000 == 0o120000, "symbolic link"), (info.flag_bits & 0x1, "encrypted"))
    return next((reason for hit, reason in checks if hit), None)


def _stream_zip(zf: zipfile.ZipFile, todo: list, dest: Path, max_bytes: float) -> int:
    """Copy members to dest, counting real bytes (headers can lie); on any error remove what was written."""
    written, total = [], 0
    try:
        for info, name in todo:
            target = dest / name
            with zf.open(info) as src, atomic_file(target, prefix=".part-") as out:  # whole, or not there
                while chunk := src.read(_CHUNK):
                    total += len(chunk)
                    if total > max_bytes:
                        raise ValueError(f"max_bytes={max_bytes}: the archive inflates past this while extracting "
                                         f"(at member {info.filename!r}); raise max_bytes if you trust it")
                    out.write(chunk)
            written.append(target)
    except BaseException as exc:
        for p in written:
            p.unlink(missing_ok=True)
        damaged = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError)
        if isinstance(exc, damaged) and not str(exc).startswith("max_bytes="):  # (a bad offset: ValueError)
            raise ValueError(f"zip member {info.filename!r} is corrupt or unsupported ({exc}); nothing was "
                             f"kept - re-create the archive") from exc
        raise
    return len(todo)


@dataclass
class ImportReport:
    """What `extract_zip` did: the ``folder`` written, the number of ``extracted`` images, and the
    ``skipped`` members (DataFrame: ``member``, ``reason``)."""

    folder: Path
    extracted: int
    skipped: pd.DataFrame


def _occupied(dest: Path, name: str) -> bool:
    """True when writing ``dest/name`` would replace a file, or go through a symbolic link, that the kit did not
    write in this call."""
    path = dest
    for part in name.split("/"):
        path = path / part
        if path.is_symlink():
            return True
    return path.exists()


def extract_zip(source, dest, max_bytes: int = 500_000_000, max_files: int = 20000) -> ImportReport:
    """Extract the images of an uploaded zip into ``dest`` (a folder the caller owns; created).

    Existing files are never overwritten: if any image of the archive would land on a path that already exists
    in ``dest``, the call raises ``ValueError`` before writing anything. If extraction fails half-way, only the
    files this call wrote are removed.

    Members with absolute paths, drive letters or ``..`` make the whole archive refused (ValueError
    naming the member). Sizes and counts are checked from the central directory before anything is
    written and again while streaming (zip-bomb guard). ``__MACOSX/``, hidden files and non-images are
    skipped and reported.

    Parameters
    ----------
    source : str, Path, bytes or binary file-like
    dest : str or Path
    max_bytes, max_files : int
        Limits on the total uncompressed size and on the number of files in the archive.

    Examples
    --------
    >>> report = kit.datasets.extract_zip(uploaded_bytes, workdir / "upload")  # doctest: +SKIP
    >>> images = kit.load_folder(report.folder)  # doctest: +SKIP
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        shown = f"the {len(source):,} bytes given"
        source = io.BytesIO(bytes(source))
    elif hasattr(source, "read"):
        shown = f"the file {getattr(source, 'name', 'given')!r}" if hasattr(source, "name") else "the file given"
        if not (hasattr(source, "seekable") and source.seekable()):
            source = io.BytesIO(source.read())
    else:
        shown = f"source={str(source)!r}"
    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, NotImplementedError, ValueError, EOFError) as exc:
        raise ValueError(f"{shown} is not a readable zip archive ({exc}); pass a .zip file") from exc
    dest = Path(dest)
    with zf:
        infos = zf.infolist()
        files = [i for i in infos if not i.is_dir()]
        if len(files) > max_files:
            raise ValueError(f"max_files={max_files}: the archive holds {len(files)} files; raise max_files or "
                             f"split the archive")
        size = sum(i.file_size for i in files)
        if size > max_bytes:
            raise ValueError(f"max_bytes={max_bytes}: the archive would inflate to {size} bytes; raise "
                             f"max_bytes if you trust it, or upload fewer images")
        todo, skipped = [], []
        for info in infos:
            name = _check_member(info.filename, "zip")
            ext = posixpath.splitext(name)[1]
            reason = _zip_skip_reason(info, name) or (
                None if ext.lower() in IMAGE_EXTENSIONS else f"not an image (extension {ext or 'none'!r})")
            if reason is None:
                todo.append((info, name))
            elif reason != "folder":
                skipped.append((info.filename, reason))
        clash = next((name for _, name in todo if _occupied(dest, name)), None)
        if clash is not None:
            raise ValueError(f"dest={str(dest)!r} already holds {clash!r} (or a link on its way), which the zip "
                             f"would overwrite; nothing was written - extract into a new or empty folder")
        dest.mkdir(parents=True, exist_ok=True)
        n = _stream_zip(zf, todo, dest, max_bytes)
    return ImportReport(folder=dest, extracted=n, skipped=pd.DataFrame(skipped, columns=["member", "reason"]))
