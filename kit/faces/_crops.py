"""Face crops for galleries and folders."""
from __future__ import annotations

from numbers import Integral, Real
from pathlib import Path

import numpy as np
import pandas as pd

from .._utils.validation import Interval, validate_params
from ..io import read_image
from ..progress import report
from ._detection import CHIP_SIZE, align, whole_image_box


def _face_table(emb) -> pd.DataFrame:
    table = getattr(emb, "faces", None)
    if table is None:
        raise ValueError("these embeddings have no face table (Embeddings.faces is None); embed the photos with "
                         "backbone='dlib_face' (or kit.faces.backbone(...)) to get face boxes")
    return table


def _crop_box(image: np.ndarray, box, size: int, margin: float):
    from PIL import Image

    left, top, right, bottom = (float(v) for v in box)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    half = max(right - left, bottom - top) / 2 * (1 + 2 * margin)
    im = Image.fromarray(image).crop((round(cx - half), round(cy - half), round(cx + half), round(cy + half)))
    return im.resize((int(size), int(size)), Image.Resampling.LANCZOS)


def face_crops(emb, index=None, size: int = 112, margin: float = 0.2, progress=None) -> list:
    """Square thumbnails (PIL images) of faces: each face box plus ``margin`` of its size on every side
    (outside the photo is black), resized to ``size``. Each photo is read once; nothing is written.

    ``index``: rows of ``emb`` (default all).
    """
    validate_params({"size": [Interval(Integral, 8, None, closed="left")],
                     "margin": [Interval(Real, 0, None, closed="left")]},
                    {"size": size, "margin": margin}, "face_crops")
    table = _face_table(emb)
    index = list(range(len(table))) if index is None else [int(i) for i in index]
    out: list = [None] * len(index)
    by_path: dict = {}
    for pos, i in enumerate(index):
        by_path.setdefault(table["path"].iat[i], []).append((pos, i))
    done = 0
    for path, items in by_path.items():
        image = read_image(path)
        for pos, i in items:
            row = table.iloc[i]
            out[pos] = _crop_box(image, (row.left, row.top, row.right, row.bottom), size, margin)
        done += len(items)
        report(progress, done, len(index), "face crops")
    return out


def face_chip(emb, i: int, size: int = CHIP_SIZE):
    """The aligned chip of face ``i`` as the descriptor network saw it (PIL image); re-runs the landmarks."""
    from PIL import Image

    row = _face_table(emb).iloc[int(i)]
    image = read_image(row.path)
    if emb.preprocessing.get("crop_as_face"):
        box = whole_image_box(image)[0]
    else:
        box = (row.left, row.top, row.right, row.bottom)
    return Image.fromarray(align(image, box, size=size))


def crop_names(emb, ext: str = ".jpg") -> list:
    """A unique file name per face for exports: ``<photo stem>_face<k><ext>`` (a parent-folder prefix is
    added when two photos share a stem)."""
    table = _face_table(emb)
    paths = list(table["path"])
    stems = [Path(p).stem for p in paths]
    photos_per_stem: dict = {}
    for p, stem in zip(paths, stems):
        photos_per_stem.setdefault(stem, set()).add(p)
    names, seen = [], set()
    for p, stem, k in zip(paths, stems, table["face"]):
        base = f"{Path(p).parent.name}_{stem}" if len(photos_per_stem[stem]) > 1 else stem
        name, extra = f"{base}_face{int(k)}{ext}", 1
        while name in seen:  # last resort: same folder name and stem in two places
            name, extra = f"{base}_face{int(k)}_{extra}{ext}", extra + 1
        seen.add(name)
        names.append(name)
    return names


def crops_by_cluster(emb, labels, size: int = 112, margin: float = 0.2, progress=None) -> dict:
    """``{cluster label: [(file name, PIL crop), ...]}`` for exports (cluster folders / Excel thumbnails).

    Clusters are in label order; noise (-1) is kept under -1.
    """
    labels = np.asarray(labels)
    if len(labels) != len(emb):
        raise ValueError(f"labels has {len(labels)} entries but the embeddings have {len(emb)} faces; pass one "
                         f"label per row")
    crops = face_crops(emb, size=size, margin=margin, progress=progress)
    names = crop_names(emb)
    out: dict = {}
    for lab in sorted(set(labels.tolist())):
        out[lab] = [(names[i], crops[i]) for i in np.flatnonzero(labels == lab)]
    return out


