"""Writing results out: CSV of path -> cluster, Excel with one sheet per cluster, images copied or linked
into one folder per cluster, and a JSON-lines run log that every run appends to.

Nothing is ever written inside the folders the images come from, and nothing the kit did not write is
ever overwritten or deleted. Each output folder keeps a small record, ``.kit-export.json``, of the files
the kit wrote there (with their size and modification time): an existing file is replaced only when that
record lists it and it is unchanged since; anything else makes the call raise ``ValueError`` before
writing. A new export into cluster folders first removes the kit's previous export there (the unchanged
files it recorded, then the cluster folders it made if they are empty); foreign files stay.

For browser downloads nothing touches the disk: `to_csv` and `to_excel` also write into a binary file-like
object (``io.BytesIO``), and `to_zip` returns the cluster folders and the table as the bytes of a zip."""
from __future__ import annotations

import datetime as _dt
import io
import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ._utils.config import __version__
from ._utils.files import atomic_path, atomic_write, make_dirs, raise_write_error


def _meta_value(name: str, value):
    """A meta item as one cell: dicts, lists and tuples as sorted JSON, anything else as given."""
    if isinstance(value, (dict, list, tuple)):
        try:
            return json.dumps(_jsonable(value), sort_keys=True)
        except TypeError as exc:
            raise ValueError(f"meta item {name}={value!r} cannot be written as JSON ({exc}); pass plain "
                             f"numbers, strings, lists or dicts of them") from None
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if value is not None and not isinstance(value, (str, int, float, bool)):
        raise ValueError(f"meta item {name}={value!r} ({type(value).__name__}) must be one value for the whole "
                         f"run: a number, a string, or a dict/list (stored as JSON)")
    return value


def assignments(paths, labels, truth=None, **meta) -> pd.DataFrame:
    """The table of a clustering: ``path, cluster``, then ``true_label`` when ``truth`` is given, then one
    column per ``meta`` item (the same value on every row).

    Parameters
    ----------
    paths, labels : sequences of the same length
        The photos and their cluster (-1 = noise).
    truth : sequence, optional
        One true label per photo.
    **meta
        Run settings to keep beside the assignments, e.g. ``backbone="efficientnet_lite0"``,
        ``method="kmeans"``, ``params={"n_clusters": 10}``; dicts and lists are stored as sorted JSON strings.

    Examples
    --------
    >>> assignments(["a.jpg", "b.jpg"], [0, -1], truth=["cat", "dog"], method="kmeans",
    ...             params={"n_clusters": 2}).columns.tolist()
    ['path', 'cluster', 'true_label', 'method', 'params']
    """
    if len(paths) != len(labels):
        raise ValueError(f"paths has {len(paths)} entries and labels {len(labels)}; they must match")
    table = pd.DataFrame({"path": [str(p) for p in paths], "cluster": np.asarray(labels).astype(int)})
    if truth is not None:
        if len(truth) != len(table):
            raise ValueError(f"truth has {len(truth)} entries for {len(table)} paths; pass one true label per "
                             f"photo, or truth=None")
        table["true_label"] = [v.item() if isinstance(v, np.generic) else v for v in truth]
    for name, value in meta.items():
        if name in table.columns:
            raise ValueError(f"meta item {name!r} would replace the column {name!r} of the table; rename it "
                             f"(e.g. {name}_meta=...)")
        table[name] = [_meta_value(name, value)] * len(table)
    return table


def _is_stream(out) -> bool:
    """True for a writable file-like object (rather than a path)."""
    if isinstance(out, (str, os.PathLike)):
        return False
    if not hasattr(out, "write"):
        raise ValueError(f"out={out!r} must be a file path or a binary file-like object such as io.BytesIO()")
    if isinstance(out, io.TextIOBase):
        raise ValueError(f"out={out!r} is a text stream; pass a binary one (io.BytesIO(), or a file opened "
                         f"with 'wb') or a file path")
    return True


def _cluster_name(c) -> str:
    return "noise" if int(c) < 0 else f"cluster_{int(c):03d}"


def check_outside(out, paths=(), source_root=None) -> None:
    """Raise ValueError when ``out`` is inside ``source_root``, inside any image's own folder, or inside the
    folder that holds all of them (unless that is the filesystem root or the home folder)."""
    out = Path(out)
    out = out.resolve()
    folders = {Path(p).resolve().parent for p in paths}
    if len(folders) > 1:  # the folder the images were gathered from, unless that is / or the home folder
        common = Path(os.path.commonpath([str(f) for f in folders]))
        if common != Path(common.anchor) and common != Path.home().resolve():
            folders.add(common)
    if source_root is not None:
        folders.add(Path(source_root).resolve())
    for folder in folders:
        if out == folder or folder in out.parents:
            raise ValueError(f"out={str(out)!r} is inside the image folder {str(folder)!r}; the kit never writes "
                             f"into the source folders: choose an output folder elsewhere")


# ------------------------------------------------------------------ the record of what the kit wrote
MANIFEST = ".kit-export.json"
_FORMAT = 1


def _load_manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    if not path.exists():
        return {"kind": "export", "format": _FORMAT, "files": {}, "folders": []}
    try:
        data = json.loads(path.read_text())
        if data.get("kind") != "export" or not isinstance(data.get("files"), dict):
            raise ValueError("not the kit's export record")
    except (OSError, ValueError, AttributeError) as exc:
        raise ValueError(f"{str(path)!r} is not the kit's record of its exports ({exc}); the kit will not write "
                         f"into {str(folder)!r} - choose another output folder") from exc
    data.setdefault("folders", [])
    return data


_MANIFEST_TMP = f"{MANIFEST}.tmp-"  # the record's temporary files: a name only the kit gives


def _save_manifest(folder: Path, manifest: dict) -> None:
    atomic_write(folder / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode(), prefix=_MANIFEST_TMP)


def _record(manifest: dict, folder: Path, path: Path, by: str, link: str | None = None) -> None:
    st = os.lstat(path)
    manifest["files"][path.relative_to(folder).as_posix()] = {"by": by, "size": st.st_size,
                                                              "mtime_ns": st.st_mtime_ns, "link": link}


def _unchanged(folder: Path, rel: str, rec: dict) -> bool:
    """True when ``folder/rel`` is still exactly what the kit recorded writing there."""
    path = folder / rel
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if rec.get("link") is not None:
        return path.is_symlink() and os.readlink(path) == rec["link"]
    return not path.is_symlink() and path.is_file() and (st.st_size, st.st_mtime_ns) == (rec.get("size"),
                                                                                         rec.get("mtime_ns"))


def _half_made(path: Path, rec: dict) -> bool:
    """True when ``path``, planned by an export that was killed before it recorded the file as written, is what
    that export made: a link to the planned target, or a copy whose bytes begin the source's (a cut copy)."""
    try:
        if rec.get("mode") == "link":
            return path.is_symlink() and os.readlink(path) == rec["pending"]
        if path.is_symlink() or not path.is_file():
            return False
        size = path.stat().st_size
        with open(path, "rb") as made, open(rec["pending"], "rb") as source:
            while size > 0:
                chunk = made.read(1 << 20)
                if not chunk or source.read(len(chunk)) != chunk:
                    return False
                size -= len(chunk)
        return True
    except (OSError, KeyError, TypeError):
        return False


def _check_replaceable(out: Path, manifest: dict) -> None:
    """Raise unless ``out`` is free, or is a file the kit wrote there and nobody changed since."""
    if not (out.exists() or out.is_symlink()):
        return
    rec = manifest["files"].get(out.name)
    if rec is None or not _unchanged(out.parent, out.name, rec):
        why = "was not written by kit.export" if rec is None else "changed since kit.export wrote it"
        raise ValueError(f"out={str(out)!r} already exists and {why}; the kit only replaces its own unchanged "
                         f"files: pass another file name, or move that file away yourself")


def _write_file(out: Path, by: str, write) -> Path:
    """Write ``out`` through ``write(temporary path)`` and an atomic rename, after checking that no file the kit
    did not write is replaced; record it in the folder's ``.kit-export.json``."""
    folder = out.parent
    make_dirs(folder)
    manifest = _load_manifest(folder)
    _check_replaceable(out, manifest)
    with atomic_path(out, suffix=out.suffix) as tmp:
        write(tmp)
    _record(manifest, folder, out, by)
    _save_manifest(folder, manifest)
    return out


def _remove_previous_export(out_dir: Path, manifest: dict) -> int:
    """Delete the cluster-folder files the kit recorded writing in ``out_dir`` (those still unchanged), then the
    cluster folders it made once empty. Returns the number of files removed; anything else is left alone."""
    removed = 0
    for leftover in out_dir.glob(f"{_MANIFEST_TMP}*"):  # the record of an export killed while writing it
        if leftover.is_file() and not leftover.is_symlink():
            leftover.unlink(missing_ok=True)
    for rel, rec in list(manifest["files"].items()):
        if rec.get("by") not in ("folders", "crops"):
            continue
        if rel.startswith("/") or ".." in rel.split("/"):  # not a path the kit records: never followed
            del manifest["files"][rel]
            continue
        if _unchanged(out_dir, rel, rec) if "pending" not in rec else _half_made(out_dir / rel, rec):
            (out_dir / rel).unlink()
            removed += 1
        del manifest["files"][rel]  # either removed, or no longer the kit's to touch
    for rel in sorted(manifest["folders"], key=lambda r: -r.count("/")):
        if rel.startswith("/") or ".." in rel.split("/") or rel in ("", "."):
            continue
        try:
            (out_dir / rel).rmdir()  # only when empty: a folder holding anything else stays
        except OSError:
            pass
    manifest["folders"] = []
    return removed


def _candidate_names(name: str):
    """``name``, then ``stem_1.ext``, ``stem_2.ext``... (how clashing file names are told apart)."""
    stem, suffix = Path(name).stem, Path(name).suffix
    yield name
    i = 1
    while True:
        yield f"{stem}_{i}{suffix}"
        i += 1


def _new_file(folder: Path, name: str, used: set, create) -> Path:
    """``folder/name`` (or ``stem_1``, ``stem_2``...) created by ``create(path)``, which must fail with
    FileExistsError rather than replace an existing file."""
    for candidate in _candidate_names(name):
        target = folder / candidate
        if target in used or target.exists() or target.is_symlink():
            continue
        try:
            create(target)
        except FileExistsError:
            continue
        used.add(target)
        return target


def _cluster_folder(out_dir: Path, c, manifest: dict) -> Path:
    folder = out_dir / _cluster_name(c)
    if not folder.exists():
        try:
            folder.mkdir(parents=True)
        except OSError as exc:
            raise_write_error(exc, folder)
        manifest["folders"].append(folder.relative_to(out_dir).as_posix())
    return folder


def to_csv(paths, labels, out, extra: dict | None = None, source_root=None, truth=None, meta: dict | None = None):
    """CSV of :func:`assignments`: ``path, cluster``, ``true_label`` (with ``truth``), one column per ``meta``
    item (e.g. ``{"backbone": ..., "method": ..., "params": {...}}``), then any ``extra`` columns (name -> one
    value per row).

    ``out`` is a file path or a binary file-like object (``io.BytesIO``, for a browser download). For a path:
    ``source_root`` is the folder the images were loaded from and nothing is written inside it (nor inside any
    image's own folder); an existing ``out`` is replaced only when kit.export wrote it and it is unchanged
    since (see the module docstring), otherwise ``ValueError`` and nothing is written. Returns the path. For a
    file-like object the CSV (UTF-8) is written into it, nothing touches the disk, and the object is returned.
    """
    table = assignments(paths, labels, truth, **(meta or {}))
    for name, values in (extra or {}).items():
        table[name] = list(values)
    if _is_stream(out):
        out.write(table.to_csv(index=False).encode("utf8"))
        return out
    out = Path(out)
    check_outside(out.parent, paths, source_root)
    return _write_file(out, "csv", lambda tmp: table.to_csv(tmp, index=False))


def _majority(values) -> tuple:
    """The most common value of a non-empty sequence and its share (ties: the first in sorted order)."""
    counts = pd.Series(list(values)).astype(str).value_counts()
    top = counts[counts == counts.iloc[0]].sort_index()
    return top.index[0], float(counts.iloc[0] / counts.sum())


def to_excel(paths, labels, out, thumbnails: bool = False, thumb_size: int = 96, source_root=None,
             images=None, truth=None, meta: dict | None = None):
    """Excel workbook (openpyxl): a summary sheet and one sheet per cluster listing its files
    (with small thumbnails when ``thumbnails=True``).

    ``images``: one picture per row to use as the thumbnail instead of the file (e.g. face crops from
    ``kit.faces.face_crops``). ``truth``: one true label per photo, shown beside each file and as each
    cluster's most common true label (and its share) in the summary. ``meta``: run settings (e.g.
    ``{"backbone": ..., "method": ..., "params": {...}}``) listed in a last sheet ``run``.

    ``out`` is a file path or a binary file-like object (``io.BytesIO``, for a browser download). For a path an
    existing ``out`` is replaced only when kit.export wrote it and it is unchanged since, otherwise
    ``ValueError``; the path is returned. For a file-like object the workbook is written into it, nothing
    touches the disk (no folder checks are needed), and the object is returned.
    """
    from openpyxl import Workbook
    from openpyxl.drawing.image import Image as XLImage
    from PIL import Image

    from .io import read_image

    table = assignments(paths, labels, truth)
    stream = _is_stream(out)
    settings = {name: _meta_value(name, value) for name, value in (meta or {}).items()}
    if not stream:
        out = Path(out)
        check_outside(out.parent, paths, source_root)
        if out.parent.is_dir():  # fail before the thumbnails, not after
            _check_replaceable(out, _load_manifest(out.parent))
    if images is not None and len(images) != len(table):
        raise ValueError(f"images has {len(images)} entries for {len(table)} rows; pass one per row")
    wb = Workbook()
    summary = wb.active
    summary.title = "summary"
    summary.append(["cluster", "images"] + (["most common true label", "share"] if truth is not None else []))
    groups = sorted(table.groupby("cluster"), key=lambda g: (g[0] < 0, g[0]))
    for c, g in groups:
        majority = list(_majority(g["true_label"])) if truth is not None else []
        summary.append([_cluster_name(c), len(g)] + majority)
        ws = wb.create_sheet(_cluster_name(c)[:31])
        ws.append(["file", "path"] + (["true label"] if truth is not None else []))
        ws.column_dimensions["A"].width = 32
        ws.column_dimensions["B"].width = 90
        picture_column = "D" if truth is not None else "C"
        for r, row_index in enumerate(g.index, start=2):
            p = table.at[row_index, "path"]
            ws.cell(row=r, column=1, value=Path(p).name)
            ws.cell(row=r, column=2, value=p)
            if truth is not None:
                value = table.at[row_index, "true_label"]
                ws.cell(row=r, column=3, value=value if isinstance(value, (int, float)) else str(value))
            if thumbnails:
                if images is not None:
                    pic = images[row_index]
                    pic = pic if isinstance(pic, Image.Image) else Image.fromarray(np.asarray(pic))
                    arr = np.asarray(pic.convert("RGB").resize((thumb_size, thumb_size)))
                else:
                    try:
                        arr = read_image(p, size=thumb_size)
                    except ValueError:
                        continue
                png = io.BytesIO()  # in memory: no temporary files
                Image.fromarray(arr).save(png, format="PNG")
                ws.row_dimensions[r].height = thumb_size * 0.78
                ws.add_image(XLImage(png), f"{picture_column}{r}")
    if settings:
        ws = wb.create_sheet("run")
        ws.append(["setting", "value"])
        for name, value in settings.items():
            ws.append([name, value])
    if stream:
        wb.save(out)
        return out
    return _write_file(out, "excel", wb.save)


@dataclass
class FolderExport:
    """`to_folders`'s answer: ``folder`` the (absolute) folder it wrote, ``table`` (``path, cluster, written``:
    one row per photo, ``written`` the file made for it) and ``removed``, the number of files of the kit's
    previous export into ``folder`` that it removed first."""

    folder: Path
    table: pd.DataFrame
    removed: int


def to_folders(paths, labels, out_dir, mode: str = "copy", source_root=None) -> FolderExport:
    """Copy (``mode="copy"``) or symlink (``"link"``) each image into ``out_dir/cluster_XXX/`` (noise into
    ``out_dir/noise/``).

    ``out_dir`` must not be inside any source folder. Files with the same name get a numeric suffix; an
    existing file is never overwritten. A previous export of the kit into the same ``out_dir`` is removed
    first (only the files it recorded in ``out_dir/.kit-export.json`` and left unchanged, then the cluster
    folders it made if empty); files the kit did not write stay where they are.

    Returns
    -------
    FolderExport
        ``.folder`` (absolute), ``.table`` (``path, cluster, written``) and ``.removed`` (files of the previous
        export removed first).
    """
    if mode not in ("copy", "link"):
        raise ValueError(f"mode={mode!r} must be 'copy' or 'link'")
    table = assignments(paths, labels)
    out_dir = Path(out_dir).absolute()
    check_outside(out_dir, table["path"], source_root)
    make_dirs(out_dir)
    manifest = _load_manifest(out_dir)
    removed = _remove_previous_export(out_dir, manifest)
    written = []
    used = set()
    try:
        planned = []  # each file's name, recorded before it is made: a run killed half-way is undone next time
        for p, c in zip(table["path"], table["cluster"]):
            folder = _cluster_folder(out_dir, c, manifest)
            target = next(folder / n for n in _candidate_names(Path(p).name)
                          if folder / n not in used and not (folder / n).exists() and not (folder / n).is_symlink())
            used.add(target)
            planned.append(target)
            manifest["files"][target.relative_to(out_dir).as_posix()] = {
                "by": "folders", "pending": str(Path(p).resolve()) if mode == "link" else str(p), "mode": mode}
        _save_manifest(out_dir, manifest)
        used = set(planned)  # a name taken meanwhile falls back to a name no other photo's plan holds
        for p, planned_target in zip(table["path"], planned):
            folder = planned_target.parent
            used.discard(planned_target)
            src = Path(p)
            if mode == "copy":
                def create(target, src=src):
                    with open(src, "rb") as fin:
                        fout = open(target, "xb")  # "x": never replaces a file
                        try:
                            with fout:
                                shutil.copyfileobj(fin, fout)
                            shutil.copystat(src, target)
                        except BaseException as exc:  # a full disk: no half-copied photo is left behind
                            target.unlink(missing_ok=True)
                            raise_write_error(exc, target)
                target = _new_file(folder, planned_target.name, used, create)
                _record(manifest, out_dir, target, "folders")
            else:
                link = str(src.resolve())
                target = _new_file(folder, planned_target.name, used, lambda t, link=link: os.symlink(link, t))
                _record(manifest, out_dir, target, "folders", link=link)
            if target != planned_target:  # the planned name was taken meanwhile (by someone else): not ours
                manifest["files"].pop(planned_target.relative_to(out_dir).as_posix(), None)
            written.append(str(target))
    finally:
        _save_manifest(out_dir, manifest)
    table["written"] = written
    return FolderExport(folder=out_dir, table=table, removed=removed)


def to_zip(paths, labels, truth=None, meta: dict | None = None) -> bytes:
    """The cluster folders and the table as the bytes of a zip (deflate), for a browser download.

    The zip holds ``clusters/cluster_XXX/<file name>`` (noise in ``clusters/noise/``; the folder names and the
    numeric suffixes of clashing names are those of `to_folders`, and every readable photo appears exactly
    once) and ``clusters.csv``: the :func:`assignments` table (with ``truth`` and ``meta``) and a last column
    ``zip_path``, the photo's name in the zip (empty when it could not be read). Files that cannot be read are
    left out and listed, with the reason, in ``missing.txt`` (only present when some are missing). Built in
    memory: nothing is written to disk.
    """
    table = assignments(paths, labels, truth, **(meta or {}))
    buffer = io.BytesIO()
    used, members, missing = set(), [], []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for p, c in zip(table["path"], table["cluster"]):
            try:
                with open(p, "rb") as f:
                    data = f.read()
            except OSError as exc:
                missing.append(f"{p}\t{type(exc).__name__}: {exc.strerror or exc}")
                members.append("")
                continue
            folder = f"clusters/{_cluster_name(c)}"
            name = next(n for n in _candidate_names(Path(p).name) if f"{folder}/{n}" not in used)
            member = f"{folder}/{name}"
            used.add(member)
            # photos are already compressed: the fastest deflate level loses almost nothing
            zf.writestr(member, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
            members.append(member)
        table["zip_path"] = members
        zf.writestr("clusters.csv", table.to_csv(index=False))
        if missing:
            zf.writestr("missing.txt", "path\treason\n" + "\n".join(missing) + "\n")
    return buffer.getvalue()


def crops_to_folders(groups: dict, out_dir, source_paths=(), source_root=None) -> pd.DataFrame:
    """Write pictures grouped by cluster (``{cluster: [(file name, PIL image), ...]}``, e.g.
    ``kit.faces.crops_by_cluster``) as ``out_dir/cluster_XXX/<name>``. Returns ``cluster, written``.

    As in `to_folders`: an existing file is never overwritten (a clashing name gets a numeric suffix), and only
    the kit's own previous export into ``out_dir`` is removed first."""
    from PIL import Image

    out_dir = Path(out_dir)
    check_outside(out_dir, source_paths, source_root)
    formats = Image.registered_extensions()
    for _, items in groups.items():
        for name, _pic in items:
            if Path(name).suffix.lower() not in formats or Path(name).name != name:
                raise ValueError(f"file name {name!r} in groups must be a plain name with an image extension, "
                                 f"e.g. 'photo_face0.jpg'")
    make_dirs(out_dir)
    manifest = _load_manifest(out_dir)
    _remove_previous_export(out_dir, manifest)
    rows, used = [], set()
    try:
        for c, items in groups.items():
            folder = _cluster_folder(out_dir, c, manifest)
            for name, pic in items:
                data = io.BytesIO()
                pic.convert("RGB").save(data, format=formats[Path(name).suffix.lower()])

                def create(target, data=data):
                    with open(target, "xb") as f:  # "x": never replaces a file
                        f.write(data.getvalue())
                target = _new_file(folder, name, used, create)
                _record(manifest, out_dir, target, "crops")
                rows.append((int(c), str(target)))
    finally:
        _save_manifest(out_dir, manifest)
    return pd.DataFrame(rows, columns=["cluster", "written"])


def _jsonable(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return None if np.isnan(v) else float(v)
    if isinstance(v, float) and np.isnan(v):
        return None
    if isinstance(v, (np.ndarray, list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, Path):
        return str(v)
    return v


def append_run_log(log_path, params: dict, scores: dict | None = None, **extra) -> dict:
    """Append one run (UTC time, kit version, parameters, scores) as a JSON line to ``log_path`` and
    return the entry. ``read_run_log`` reads them back as a DataFrame."""
    entry = {"time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "kit_version": __version__,
             "params": _jsonable(dict(params)), "scores": _jsonable(dict(scores or {})), **_jsonable(extra)}
    log_path = Path(log_path)
    make_dirs(log_path.parent)
    try:
        with open(log_path, "a", encoding="utf8") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")
    except OSError as exc:
        raise_write_error(exc, log_path)
    return entry


def read_run_log(log_path) -> pd.DataFrame:
    """The run log as a table (one row per run; params and scores flattened)."""
    rows = []
    with open(log_path, encoding="utf8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    return pd.json_normalize(rows)
