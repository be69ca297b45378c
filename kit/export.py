"""Writing results out (seed 003): CSV of path -> cluster, Excel with one sheet per cluster, images copied
or linked into one folder per cluster, and a JSON-lines run log that every run appends to.
Nothing is ever written inside the folders the images come from."""
from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
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


def to_csv(paths, labels, out, extra: dict | None = None, source_root=None) -> Path:
    """CSV with columns ``path, cluster`` (and any ``extra`` columns).

    ``source_root``: the folder the images were loaded from; nothing is written inside it (nor inside any
    image's own folder)."""
    table = assignments(paths, labels)
    for name, values in (extra or {}).items():
        table[name] = list(values)
    out = Path(out)
    check_outside(out.parent, paths, source_root)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    return out


def to_excel(paths, labels, out, thumbnails: bool = False, thumb_size: int = 96, source_root=None,
             images=None) -> Path:
    """Excel workbook (openpyxl): a summary sheet and one sheet per cluster listing its files
    (with small thumbnails when ``thumbnails=True``). ``images``: one picture per row to use as the
    thumbnail instead of the file (e.g. face crops from ``kit.faces.face_crops``)."""
    from openpyxl import Workbook
    from openpyxl.drawing.image import Image as XLImage
    from PIL import Image

    from .io import read_image

    table = assignments(paths, labels)
    out = Path(out)
    check_outside(out.parent, paths, source_root)
    out.parent.mkdir(parents=True, exist_ok=True)
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
                import tempfile

                fd, tmp = tempfile.mkstemp(suffix=".png")
                os.close(fd)
                Image.fromarray(arr).save(tmp)
                tmp_files.append(tmp)
                ws.row_dimensions[r].height = thumb_size * 0.78
                img = XLImage(tmp)
                ws.add_image(img, f"C{r}")
    try:
        wb.save(out)
    finally:
        for t in tmp_files:
            os.unlink(t)
    return out


def to_folders(paths, labels, out_dir, mode: str = "copy", source_root=None) -> pd.DataFrame:
    """Copy (``mode="copy"``) or symlink (``"link"``) each image into ``out_dir/cluster_XXX/``.

    ``out_dir`` must not be inside any source folder. Files with the same name get a numeric suffix.
    Returns a table ``path, cluster, written``.
    """
    if mode not in ("copy", "link"):
        raise ValueError(f"mode={mode!r} must be 'copy' or 'link'")
    table = assignments(paths, labels)
    out_dir = Path(out_dir)
    check_outside(out_dir, table["path"], source_root)
    written = []
    used = set()
    for p, c in zip(table["path"], table["cluster"]):
        folder = out_dir / _cluster_name(c)
        folder.mkdir(parents=True, exist_ok=True)
        src = Path(p)
        target = folder / src.name
        i = 1
        while target in used or target.exists():
            target = folder / f"{src.stem}_{i}{src.suffix}"
            i += 1
        used.add(target)
        if mode == "copy":
            shutil.copy2(src, target)
        else:
            os.symlink(src.resolve(), target)
        written.append(str(target))
    table["written"] = written
    return table


def crops_to_folders(groups: dict, out_dir, source_paths=(), source_root=None) -> pd.DataFrame:
    """Write pictures grouped by cluster (``{cluster: [(file name, PIL image), ...]}``, e.g.
    ``kit.faces.crops_by_cluster``) as ``out_dir/cluster_XXX/<name>``. Returns ``cluster, written``."""
    out_dir = Path(out_dir)
    check_outside(out_dir, source_paths, source_root)
    rows = []
    for c, items in groups.items():
        folder = out_dir / _cluster_name(c)
        folder.mkdir(parents=True, exist_ok=True)
        for name, pic in items:
            target = folder / name
            pic.convert("RGB").save(target)
            rows.append((int(c), str(target)))
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
