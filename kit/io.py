"""Finding images in a folder, reading their labels, and decoding them robustly.

Decoding applies the EXIF orientation, converts every mode (CMYK, P, LA, RGBA, I;16, F, ...)
to 8-bit RGB, guards against decompression bombs, and never raises for one bad file: the
caller gets a reason string instead. Nothing here ever writes into the user's folder.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageOps

from ._utils.files import read_csv_table
from ._utils.validation import Interval, StrOptions, validate_params

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
DEFAULT_MAX_PIXELS = 150_000_000
RESIZE_MODES = ("center_crop", "squash", "pad")
_POSITIVE_INT = Interval(Integral, 1, None, closed="left")
_HASH_CHUNK = 1 << 20
_ORIENTATION = 0x0112
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def empty_unreadable() -> pd.DataFrame:
    return pd.DataFrame({"path": pd.Series([], dtype=str), "reason": pd.Series([], dtype=str)})


@dataclass
class ImageSet:
    """Images found in a folder.

    Attributes
    ----------
    root : Path
        The folder that was searched.
    paths : list of str
        Absolute paths of the images that could be opened, sorted.
    labels : list of str or None
        One label per path (from sub-folders or a CSV), or None when unlabelled.
    hashes : list of str
        Content hash (BLAKE2b, 128-bit hex) of each path: the cache key, and how duplicates are found.
    unreadable : DataFrame
        Files that look like images but cannot be read, with a ``reason`` column.
    duplicates : DataFrame
        Byte-identical files: ``path``, ``duplicate_of`` (the first path with the same content).
    ignored : list of str
        Files skipped because their extension is not an image extension.
    """

    root: Path
    paths: list
    labels: list | None
    hashes: list
    unreadable: pd.DataFrame = field(default_factory=empty_unreadable)
    duplicates: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["path", "duplicate_of"]))
    ignored: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        n_lab = "unlabelled" if self.labels is None else f"{len(set(self.labels))} labels"
        return (f"ImageSet({len(self.paths)} images, {n_lab}, {len(self.unreadable)} unreadable, "
                f"{len(self.duplicates)} duplicates, root={str(self.root)!r})")

    def label_counts(self) -> pd.Series:
        """Number of images per label (empty when unlabelled)."""
        if self.labels is None:
            return pd.Series(dtype=int)
        return pd.Series(self.labels).value_counts().sort_index()

    def subset(self, index) -> "ImageSet":
        """A new ImageSet with only the images at ``index`` (positions)."""
        index = list(index)
        return ImageSet(
            root=self.root,
            paths=[self.paths[i] for i in index],
            labels=None if self.labels is None else [self.labels[i] for i in index],
            hashes=[self.hashes[i] for i in index],
            unreadable=self.unreadable.copy(),
            duplicates=self.duplicates.copy(),
            ignored=list(self.ignored),
        )


def file_hash(path: str | os.PathLike) -> str:
    """BLAKE2b-128 of a file's bytes, as hex: identical content gives identical keys wherever it lives."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def walk_images(root: Path, recursive: bool):
    """Yield files below ``root``; follows directory symlinks once each, so loops cannot hang."""
    seen = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            st = folder.stat()
        except OSError:
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:
            continue
        seen.add(key)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()  # follows symlinks
            except OSError:
                is_dir = False
            if is_dir:
                if recursive:
                    stack.append(Path(entry.path))
            else:
                yield Path(entry.path)


# The bytes that end a complete file of these formats (JPEG's end-of-image marker cannot occur inside its
# entropy-coded data, where 0xFF is always followed by 0x00 or a restart marker).
_END_MARKERS = {"JPEG": b"\xff\xd9", "MPO": b"\xff\xd9", "PNG": b"IEND"}
_TAIL_BYTES = 1024


def _ends_complete(path: Path, marker: bytes) -> bool:
    """Whether ``marker`` is in the last ``_TAIL_BYTES`` of the file (a complete file; trailing data after it is
    allowed)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - _TAIL_BYTES))
        return marker in f.read()


def _probe(path: Path, max_pixels: int) -> str | None:
    """Cheap check that a file is an image we can decode: the header, and for JPEG and PNG the end of the file (a
    file cut short, such as a half-copied photo, is decoded in full to confirm). Returns a reason or None; the
    reason is the one every reader of the photo gives (:func:`open_image`)."""
    try:
        if path.stat().st_size == 0:
            return "empty file (0 bytes)"
        with open_image(path, max_pixels) as im:
            marker = _END_MARKERS.get(im.format)
            if marker is not None and not _ends_complete(path, marker):
                im.load()  # no end marker: decode it all (a file with a long trailer is still good)
    except ValueError as exc:
        text = str(exc)
        return text + "; pass a larger max_pixels to read it" if "above max_pixels" in text else text
    except OSError as exc:  # the file itself (permissions, a folder named like a photo)
        return f"cannot read file: {exc}"
    return None


def _labels_from_csv(csv_path: Path, root: Path) -> dict:
    table = read_csv_table(csv_path, "labels")
    cols = {c.lower(): c for c in table.columns}
    path_col = next((cols[c] for c in ("path", "file", "filename", "image") if c in cols), None)
    label_col = next((cols[c] for c in ("label", "class", "category") if c in cols), None)
    if path_col is None or label_col is None:
        raise ValueError(
            f"labels={str(csv_path)!r}: the CSV needs a path column (path/file/filename/image) and a label "
            f"column (label/class/category); found columns {list(table.columns)}"
        )
    missing = table[path_col].isna() | table[label_col].isna() | (table[label_col].astype(str).str.strip() == "")
    if missing.any():
        row = int(missing.to_numpy().argmax())
        raise ValueError(f"labels={str(csv_path)!r}: data row {row + 1} ({table[path_col].iloc[row]!r}) has no path "
                         f"or no label (a cut or hand-edited file?); give every row a path and a label, or remove "
                         f"the row")
    out = {}
    for p, lab in zip(table[path_col].astype(str), table[label_col]):
        full = Path(p) if os.path.isabs(p) else root / p
        out[os.path.normpath(str(full.resolve()))] = str(lab)
    return out


def load_folder(path, labels="folders", recursive: bool = True, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageSet:
    """Find the images in a folder.

    Parameters
    ----------
    path : str or Path
        Folder to search.
    labels : "folders", str/Path of a CSV file, or None
        ``"folders"``: each image's label is the name of the first sub-folder below ``path``
        that contains it (images directly in ``path`` make the set unlabelled). A CSV path: columns
        ``path`` (relative to ``path`` or absolute) and ``label``. None: no labels.
    recursive : bool
        Search sub-folders (symlinked folders are followed once each).
    max_pixels : int
        Images with more pixels than this are reported unreadable instead of decoded.

    Returns
    -------
    ImageSet

    Examples
    --------
    >>> import kit
    >>> images = kit.load_folder(kit.datasets.sample_folder())  # doctest: +SKIP
    """
    validate_params({"path": [str, os.PathLike], "labels": [str, os.PathLike, None], "recursive": ["boolean"],
                     "max_pixels": [_POSITIVE_INT]},
                    {"path": path, "labels": labels, "recursive": recursive, "max_pixels": max_pixels}, "load_folder")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise NotADirectoryError(f"path={str(path)!r} is not a folder; pass the folder that holds the images")
    csv_labels = None
    if labels not in ("folders", None):
        csv_path = Path(labels)
        if not csv_path.is_file():
            raise FileNotFoundError(f"labels={str(labels)!r}: no such CSV file; pass 'folders', None or a CSV path")
        csv_labels = _labels_from_csv(csv_path, root.resolve())

    good, bad, ignored = [], [], []
    for f in walk_images(root, recursive):
        if f.suffix.lower() not in IMAGE_EXTENSIONS:
            ignored.append(str(f))
            continue
        reason = _probe(f, max_pixels)
        if reason is None:
            good.append(f)
        else:
            bad.append((str(f), reason))

    good.sort()
    paths = [str(p) for p in good]
    hashes, keep = [], []
    for p in paths:
        try:
            hashes.append(file_hash(p))
            keep.append(p)
        except OSError as exc:
            bad.append((p, f"cannot read file: {exc}"))
    paths = keep

    lab = None
    if labels == "folders":
        rel = [Path(p).relative_to(root).parts for p in paths]
        if paths and all(len(r) > 1 for r in rel):
            lab = [r[0] for r in rel]
    elif csv_labels is not None:
        lab, keep_p, keep_h = [], [], []
        for p, h in zip(paths, hashes):
            key = os.path.normpath(str(Path(p).resolve()))
            if key in csv_labels:
                lab.append(csv_labels[key])
                keep_p.append(p)
                keep_h.append(h)
            else:
                bad.append((p, f"no label for this file in {labels}"))
        paths, hashes = keep_p, keep_h

    first = {}
    dup_rows = []
    for p, h in zip(paths, hashes):
        if h in first:
            dup_rows.append((p, first[h]))
        else:
            first[h] = p
    unreadable = pd.DataFrame(bad, columns=["path", "reason"]) if bad else empty_unreadable()
    return ImageSet(
        root=root,
        paths=paths,
        labels=lab,
        hashes=hashes,
        unreadable=unreadable.sort_values("path", ignore_index=True),
        duplicates=pd.DataFrame(dup_rows, columns=["path", "duplicate_of"]),
        ignored=sorted(ignored),
    )


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB. Transparency is composited on white; high bit depths are rescaled."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        if mode.startswith("I;16"):
            arr = arr / 257.0
        else:
            lo, hi = float(arr.min()), float(arr.max())
            arr = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        g = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return Image.fromarray(np.stack([g, g, g], axis=-1), "RGB")
    if mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
        mode = im.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")


def resize_image(im: Image.Image, size: int, mode: str) -> Image.Image:
    """``mode`` is one of ``RESIZE_MODES`` (checked by the public callers)."""
    if mode == "center_crop":
        w, h = im.size
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        return im.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + s, top + s),
                         reducing_gap=None)
    if mode == "squash":
        return im.resize((size, size), Image.Resampling.BILINEAR)
    return ImageOps.pad(im, (size, size), Image.Resampling.BILINEAR, color=(255, 255, 255))  # "pad"


def read_image(path, size: int | None = None, resize: str = "center_crop",
               max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode one image to an RGB uint8 array (H, W, 3), upright per EXIF.

    With ``size``, the image is resized to ``size x size`` (``resize``: ``"center_crop"`` the
    largest centred square, ``"squash"`` the whole image, ``"pad"`` letterboxed on white), and
    JPEGs are decoded at a reduced scale when that is still at least ``size`` (draft mode).

    Raises
    ------
    ValueError
        For any file that cannot be decoded; the message is the reason.
    InvalidParameterError
        (a ValueError) for a bad ``size``, ``resize`` or ``max_pixels``, before the file is opened.
    """
    validate_params({"size": [_POSITIVE_INT, None], "resize": [StrOptions(set(RESIZE_MODES))],
                     "max_pixels": [_POSITIVE_INT]},
                    {"size": size, "resize": resize, "max_pixels": max_pixels}, "read_image")
    if size is not None:
        size = int(size)
    with open_image(path, max_pixels) as im:
        w, h = im.size
        if size is not None and im.format == "JPEG":
            # draft keeps both sides >= the requested size; the EXIF turn does not matter
            # because the target is square.
            short = min(w, h)
            im.draft("RGB", (max(1, w * size // short), max(1, h * size // short)))
        im.seek(0)
        im.load()
        orientation = im.getexif().get(_ORIENTATION, 1)
        if size is None:
            if orientation != 1:
                im = ImageOps.exif_transpose(im)
            return np.asarray(_to_rgb(im), dtype=np.uint8)
        # The output is square and centred, so turning it after resizing gives the same pixels
        # as turning the full image first, at a fraction of the cost.
        im = resize_image(_to_rgb(im), size, resize)
        if orientation in _TRANSPOSE:
            im = im.transpose(_TRANSPOSE[orientation])
        return np.asarray(im, dtype=np.uint8)


@contextlib.contextmanager
def open_image(path, max_pixels: int = DEFAULT_MAX_PIXELS):
    """The one way the kit opens a photo (embedding, thumbnails, Inspect, CAM, curation, export, face crops,
    generated corpora): a PIL image whose size was checked against ``max_pixels`` and Pillow's decompression-bomb
    limit. Any failure to decode it, while opening or inside the ``with`` block, becomes a ``ValueError`` whose text
    is the reason (``"cannot decode: ..."``, ``"too large to decode safely..."``), the same on every path.

    >>> with open_image("photo.jpg") as im:       # doctest: +SKIP
    ...     im.size
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise ValueError(f"image is {w}x{h} = {w * h / 1e6:.0f} Mpx, above max_pixels={max_pixels}")
                yield im
    except ValueError:
        raise
    except Image.DecompressionBombError as exc:
        raise ValueError(f"too large to decode safely, above max_pixels={max_pixels} ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - decoders raise many kinds (OSError, SyntaxError, EOFError...)
        raise ValueError(f"cannot decode: {type(exc).__name__}: {exc}") from None


def as_imageset(images) -> ImageSet:
    """An ``ImageSet`` from an ``ImageSet`` (as is), a folder (``load_folder``) or a list of paths (files that cannot
    be read are listed in ``unreadable`` with the reason)."""
    if isinstance(images, ImageSet):
        return images
    if isinstance(images, (str, os.PathLike)) and Path(images).is_dir():
        return load_folder(images)
    if isinstance(images, (str, os.PathLike)):
        raise ValueError(f"images={str(images)!r} is not a folder; pass a folder, an ImageSet or a list of paths")
    paths, hashes, bad = [], [], []
    for p in images:
        p = str(p)
        try:
            hashes.append(file_hash(p))
            paths.append(p)
        except OSError as exc:
            bad.append((p, f"cannot read file: {exc}"))
    unreadable = pd.DataFrame(bad, columns=["path", "reason"]) if bad else empty_unreadable()
    return ImageSet(root=Path("."), paths=paths, labels=None, hashes=hashes, unreadable=unreadable)
