"""Writing results out: CSV of path -> cluster, Excel with one sheet per cluster, images copied or linked
into one folder per cluster, and a JSON-lines run log that every run appends to.

Nothing is ever written inside the folders the images come from, and nothing the kit did not write is
ever overwritten or deleted. Each output folder keeps a small record, ``.kit-export.json``, of the files
the kit wrote there (with their size and modification time): an existing file is replaced only when that
record lists it and it is unchanged since; anything else makes the call raise ``ValueError`` before
writing. A new export into cluster folders first removes the kit's previous export there (the unchanged
files it recorded, then the cluster folders it made if they are empty); foreign files stay."""
from __future__ import annotations

import datetime as _dt
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from ._config import __version__


def assignments(paths, labels) -> pd.DataFrame:
    """The table ``path, cluster`` of a clustering."""
    if len(paths) != len(labels):
        raise ValueError(f"paths has {len(paths)} entries and labels {len(labels)}; they must match")
    return pd.DataFrame({"path": [str(p) for p in paths], "cluster": np.asarray(labels).astype(int)})


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


def _save_manifest(folder: Path, manifest: dict) -> None:
    from .cache import _atomic_write

    _atomic_write(folder / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())


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
    folder.mkdir(parents=True, exist_ok=True)
    manifest = _load_manifest(folder)
    _check_replaceable(out, manifest)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=out.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _record(manifest, folder, out, by)
    _save_manifest(folder, manifest)
    return out


def _remove_previous_export(out_dir: Path, manifest: dict) -> int:
    """Delete the cluster-folder files the kit recorded writing in ``out_dir`` (those still unchanged), then the
    cluster folders it made once empty. Returns the number of files removed; anything else is left alone."""
    removed = 0
    for rel, rec in list(manifest["files"].items()):
        if rec.get("by") not in ("folders", "crops"):
            continue
        if rel.startswith("/") or ".." in rel.split("/"):  # not a path the kit records: never followed
            del manifest["files"][rel]
            continue
        if _unchanged(out_dir, rel, rec):
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


def _new_file(folder: Path, name: str, used: set, create) -> Path:
    """``folder/name`` (or ``stem_1``, ``stem_2``...) created by ``create(path)``, which must fail with
    FileExistsError rather than replace an existing file."""
    stem, suffix = Path(name).stem, Path(name).suffix
    i = 0
    while True:
        target = folder / (name if i == 0 else f"{stem}_{i}{suffix}")
        i += 1
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
        folder.mkdir(parents=True)
        manifest["folders"].append(folder.relative_to(out_dir).as_posix())
    return folder


def to_csv(paths, labels, out, extra: dict | None = None, source_root=None) -> Path:
    """CSV with columns ``path, cluster`` (and any ``extra`` columns).

    ``source_root``: the folder the images were loaded from; nothing is written inside it (nor inside any
    image's own folder). An existing ``out`` is replaced only when kit.export wrote it and it is unchanged
    since (see the module docstring); otherwise ``ValueError`` and nothing is written."""
    table = assignments(paths, labels)
    for name, values in (extra or {}).items():
        table[name] = list(values)
    out = Path(out)
    check_outside(out.parent, paths, source_root)
    return _write_file(out, "csv", lambda tmp: table.to_csv(tmp, index=False))


def to_excel(paths, labels, out, thumbnails: bool = False, thumb_size: int = 96, source_root=None,
             images=None) -> Path:
    """Excel workbook (openpyxl): a summary sheet and one sheet per cluster listing its files
    (with small thumbnails when ``thumbnails=True``). ``images``: one picture per row to use as the
    thumbnail instead of the file (e.g. face crops from ``kit.faces.face_crops``). An existing ``out`` is
    replaced only when kit.export wrote it and it is unchanged since; otherwise ``ValueError``."""
    from openpyxl import Workbook
    from openpyxl.drawing.image import Image as XLImage
    from PIL import Image

    from .io import read_image

    table = assignments(paths, labels)
    out = Path(out)
    check_outside(out.parent, paths, source_root)
    if out.parent.is_dir():  # fail before the thumbnails, not after
        _check_replaceable(out, _load_manifest(out.parent))
    wb = Workbook()
    summary = wb.active
    summary.title = "summary"
    summary.append(["cluster", "images"])
    if images is not None and len(images) != len(table):
        raise ValueError(f"images has {len(images)} entries for {len(table)} rows; pass one per row")
    groups = sorted(table.groupby("cluster"), key=lambda g: (g[0] < 0, g[0]))
    tmp_files = []
    for c, g in groups:
        summary.append([_cluster_name(c), len(g)])
        ws = wb.create_sheet(_cluster_name(c)[:31])
        ws.append(["file", "path"])
        ws.column_dimensions["A"].width = 32
        ws.column_dimensions["B"].width = 90
        for r, (row_index, p) in enumerate(zip(g.index, g["path"]), start=2):
            ws.cell(row=r, column=1, value=Path(p).name)
            ws.cell(row=r, column=2, value=p)
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
                fd, tmp = tempfile.mkstemp(suffix=".png")
                os.close(fd)
                Image.fromarray(arr).save(tmp)
                tmp_files.append(tmp)
                ws.row_dimensions[r].height = thumb_size * 0.78
                img = XLImage(tmp)
                ws.add_image(img, f"C{r}")
    try:
        _write_file(out, "excel", wb.save)
    finally:
        for t in tmp_files:  # our own temporary thumbnails
            os.unlink(t)
    return out


def to_folders(paths, labels, out_dir, mode: str = "copy", source_root=None) -> pd.DataFrame:
    """Copy (``mode="copy"``) or symlink (``"link"``) each image into ``out_dir/cluster_XXX/``.

    ``out_dir`` must not be inside any source folder. Files with the same name get a numeric suffix; an
    existing file is never overwritten. A previous export of the kit into the same ``out_dir`` is removed
    first (only the files it recorded in ``out_dir/.kit-export.json`` and left unchanged, then the cluster
    folders it made if empty); files the kit did not write stay where they are.
    Returns a table ``path, cluster, written``.
    """
    if mode not in ("copy", "link"):
        raise ValueError(f"mode={mode!r} must be 'copy' or 'link'")
    table = assignments(paths, labels)
    out_dir = Path(out_dir)
    check_outside(out_dir, table["path"], source_root)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = _load_manifest(out_dir)
    _remove_previous_export(out_dir, manifest)
    written = []
    used = set()
    try:
        for p, c in zip(table["path"], table["cluster"]):
            folder = _cluster_folder(out_dir, c, manifest)
            src = Path(p)
            if mode == "copy":
                def create(target, src=src):
                    with open(src, "rb") as fin, open(target, "xb") as fout:  # "x": never replaces a file
                        shutil.copyfileobj(fin, fout)
                    shutil.copystat(src, target)
                target = _new_file(folder, src.name, used, create)
                _record(manifest, out_dir, target, "folders")
            else:
                link = str(src.resolve())
                target = _new_file(folder, src.name, used, lambda t, link=link: os.symlink(link, t))
                _record(manifest, out_dir, target, "folders", link=link)
            written.append(str(target))
    finally:
        _save_manifest(out_dir, manifest)
    table["written"] = written
    return table


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
    out_dir.mkdir(parents=True, exist_ok=True)
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
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf8") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")
    return entry


def read_run_log(log_path) -> pd.DataFrame:
    """The run log as a table (one row per run; params and scores flattened)."""
    rows = []
    with open(log_path, encoding="utf8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    return pd.json_normalize(rows)
