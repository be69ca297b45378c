"""Data to try the kit on: a built-in sample set, well-known public sets, and safe zip uploads.

The sample set (`sample_folder`) needs no network. It is built from real photographs that the
scikit-image wheel ships inside the package (``skimage/data/*.png|jpg``; the ones used here load
without pooch and without any download): astronaut, a cat, coffee, a rocket launch, coins, the
Hubble deep field, a stained tissue section and a motorcycle. Each class is ONE source photo seen
50 times through deterministic random crops (40-100% of the area, aspect 3:4..4:3), flips, small
rotations (+-15 deg), colour jitter (+-30%) and JPEG quality 80-95, resized to a 256 px short side.
So the classes are groups of near-duplicates: easy for any pretrained backbone, which makes the set
a smoke test for the whole pipeline rather than a benchmark. It is written once, atomically, under
``kit_home()/datasets/sample-v1`` and reused. For real benchmarks use `download` (`PUBLIC`) or your
own folder with `kit.load_folder`.

Nothing is written at import; the kit never writes into the user's own image folders.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import posixpath
import re
import shutil
import socket
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageEnhance

from ._config import kit_home
from .cache import _atomic_write
from .io import IMAGE_EXTENSIONS
from .progress import report

SAMPLE_VERSION = "sample-v1"
SAMPLE_PER_CLASS = 50
_MARKER = ".complete"
_CHUNK = 1 << 20
# class -> (skimage.data function, how to get the photo out of its return value)
_SAMPLE_SOURCES = {
    "astronaut": ("astronaut", None), "cat": ("chelsea", None), "coffee": ("coffee", None),
    "rocket": ("rocket", None), "coins": ("coins", None), "galaxies": ("hubble_deep_field", None),
    "tissue": ("immunohistochemistry", None), "motorcycle": ("stereo_motorcycle", 0),
}


class DatasetUnavailableError(RuntimeError):
    """A public data set could not be fetched (offline, host unreachable, HTTP error)."""


# ---------------------------------------------------------------- built-in sample
def sample_info() -> pd.DataFrame:
    """The classes of the sample set: ``class``, ``source`` (the skimage.data function), ``images``."""
    return pd.DataFrame([(c, f"skimage.data.{fn}", SAMPLE_PER_CLASS) for c, (fn, _) in _SAMPLE_SOURCES.items()],
                        columns=["class", "source", "images"])


def _inscribed(w: float, h: float, angle: float) -> tuple[float, float]:
    """Largest axis-aligned rectangle inside a w x h rectangle rotated by ``angle`` radians."""
    long_, short = (w, h) if w >= h else (h, w)
    s, c = abs(math.sin(angle)), abs(math.cos(angle))
    if short <= 2 * s * c * long_ or abs(s - c) < 1e-10:
        x = 0.5 * short
        return (x / s, x / c) if w >= h else (x / c, x / s)
    cos2 = c * c - s * s
    return (w * c - h * s) / cos2, (h * c - w * s) / cos2


def _augment(base: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, int]:
    """Rotate, crop and resize in one affine resampling (output pixel -> source pixel), then flip and jitter."""
    angle = math.radians(float(rng.uniform(-15, 15)))
    W, H = base.size
    iw, ih = _inscribed(W, H, angle)
    area = float(rng.uniform(0.4, 1.0)) * iw * ih
    ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    cw, ch = min(iw, math.sqrt(area * ratio)), min(ih, math.sqrt(area / ratio))
    x0 = (W - iw) / 2 + float(rng.uniform(0, iw - cw))  # crop corner, in the rotated frame
    y0 = (H - ih) / 2 + float(rng.uniform(0, ih - ch))
    s = 256 / min(cw, ch)
    cos, sin, cx, cy = math.cos(angle), math.sin(angle), W / 2, H / 2
    matrix = (cos / s, sin / s, cos * (x0 - cx) + sin * (y0 - cy) + cx,
              -sin / s, cos / s, -sin * (x0 - cx) + cos * (y0 - cy) + cy)
    im = base.transform((round(cw * s), round(ch * s)), Image.Transform.AFFINE, matrix, Image.Resampling.BICUBIC)
    if rng.random() < 0.5:
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        im = enhancer(im).enhance(float(rng.uniform(0.7, 1.3)))
    return im, int(rng.integers(80, 96))


def _sample_photo(fn: str, index) -> Image.Image:
    from skimage import data

    arr = getattr(data, fn)()
    arr = arr[index] if index is not None else arr
    im = Image.fromarray(np.asarray(arr)).convert("RGB")
    scale = 384 / min(im.size)
    return im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS) if scale < 1 else im


def sample_folder(random_state: int = 0) -> Path:
    """The built-in sample set, a folder ``<class>/*.jpg`` (8 classes x 50 real photos, no network).

    Generated deterministically on the first call (a few seconds) under
    ``kit_home()/datasets/sample-v1`` and reused afterwards. See the module docstring and `sample_info`.

    Parameters
    ----------
    random_state : int
        Seed of the augmentations. Seeds other than 0 are stored in their own folder.

    Examples
    --------
    >>> import kit
    >>> images = kit.load_folder(kit.datasets.sample_folder())  # doctest: +SKIP
    """
    if isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)) or random_state < 0:
        raise ValueError(f"random_state={random_state!r}: the sample set is cached on disk, so pass a "
                         f"non-negative int seed (0 is the default set)")
    name = SAMPLE_VERSION if random_state == 0 else f"{SAMPLE_VERSION}-seed{int(random_state)}"

    def build(tmp: Path) -> dict:
        rng = np.random.default_rng(int(random_state))
        for cls, (fn, index) in _SAMPLE_SOURCES.items():
            base = _sample_photo(fn, index)
            (tmp / "images" / cls).mkdir(parents=True)
            for i in range(SAMPLE_PER_CLASS):
                im, quality = _augment(base, rng)
                im.save(tmp / "images" / cls / f"{cls}_{i:03d}.jpg", "JPEG", quality=quality)
        return {"version": SAMPLE_VERSION, "random_state": int(random_state),
                "classes": sample_info().to_dict("records")}

    return _build_once(name, build) / "images"


CLOTHING_CLASSES = ("dress", "hat", "longsleeve", "outwear", "pants", "shirt", "shoes", "shorts", "skirt", "t-shirt")


def clothing() -> Path:
    """The kit's default real photos: 500 photos of clothing in 10 classes (50 each), a folder ``<class>/*.jpg``.

    Photos of clothing items taken by their owners on varied backgrounds, from the CC0 "Clothing dataset
    (subset)" by Alexey Grigorev and contributors, reduced to a 240 px short side (``assets/clothing`` in the
    kit's repository holds them with their licence and source note). Unlike `sample_folder`, the classes are
    real and some are close (shirt / t-shirt / longsleeve), so backbones score differently and K estimators
    disagree. Read-only: nothing is written there.

    Examples
    --------
    >>> import kit
    >>> images = kit.load_folder(kit.datasets.clothing())
    >>> len(images), sorted(set(images.labels))[:3]
    (500, ['dress', 'hat', 'longsleeve'])
    """
    folder = Path(__file__).resolve().parents[1] / "assets" / "clothing" / "images"
    if not folder.is_dir():
        raise FileNotFoundError(f"the default photos are not at {folder}: they ship in the kit's repository "
                                f"(assets/clothing); install the kit from a checkout with `pip install -e .`")
    return folder


def _not_ours(folder: Path, what: str) -> ValueError:
    return ValueError(f"{str(folder)!r} already exists but was not made by {what} (it has no {_MARKER} marker); "
                      f"the kit never deletes a folder it did not create: move or delete it yourself, then retry")


def _build_once(name: str, build) -> Path:
    """``kit_home()/datasets/<name>``, made by ``build(tmp_folder) -> info`` the first time: built in a temporary
    sibling, marked complete, then renamed into place, so an interrupted run never leaves a half folder.

    Only the temporary folder this call made is ever deleted. A folder already at ``<name>`` without the
    ``.complete`` marker was not made here (the rename is atomic and carries the marker), so it is refused with
    ``ValueError`` and left as it is."""
    final = kit_home() / "datasets" / name
    if (final / _MARKER).is_file():
        return final
    if final.exists() or final.is_symlink():
        raise _not_ours(final, "the kit's sample builder")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{name}-tmp-"))
    try:
        os.chmod(tmp, 0o755)
        info = build(tmp)
        _atomic_write(tmp / _MARKER, json.dumps(info).encode())
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / _MARKER).is_file():  # not another process's finished build: leave it alone
                raise _not_ours(final, "the kit's sample builder") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # our own temporary folder (already renamed away on success)
    return final


FACES_VERSION = "faces-sample-v1"
FACES_PER_PERSON = 8


def _face_sources():
    import matplotlib
    from skimage import data as skdata

    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    lfw = np.uint8(np.round(skdata.lfw_subset()[18] * 255))
    return {
        "eileen_collins": ("skimage.data.astronaut()", skdata.astronaut(), False),
        "grace_hopper": ("matplotlib sample_data/grace_hopper.jpg", np.asarray(Image.open(hopper).convert("RGB")),
                         False),
        "cameraman": ("skimage.data.camera() (grey)", np.stack([skdata.camera()] * 3, axis=-1), False),
        "lfw_018": ("skimage.data.lfw_subset()[18] (25 px, grey, upscaled)",
                    np.asarray(Image.fromarray(np.stack([lfw] * 3, axis=-1)).resize((150, 150),
                                                                                      Image.Resampling.BICUBIC)), True),
    }


def sample_faces(random_state: int = 0) -> Path:
    """A tiny built-in face set, ``<person>/*.jpg`` (4 people x 8 tight 150 px crops), from photos that ship
    with installed packages: Eileen Collins (scikit-image's astronaut), Grace Hopper (matplotlib's sample),
    scikit-image's cameraman, and one upscaled LFW face from ``skimage.data.lfw_subset()``.

    No packaged photo set has identities, so each "person" is one photo seen through deterministic square crops
    around the face (found with ``kit.faces.detect``: HOG, else the CNN detector), flips and brightness changes.
    It only demonstrates the mechanics of face clustering: telling near-duplicates apart is far easier than
    real photos of people. Built on first use under ``kit_home()/datasets``; ``sample_faces_info()`` lists it.
    """
    if isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)) or random_state < 0:
        raise ValueError(f"random_state={random_state!r}: pass a non-negative int seed (0 is the default set)")
    name = FACES_VERSION if random_state == 0 else f"{FACES_VERSION}-seed{int(random_state)}"

    def build(tmp: Path) -> dict:
        from . import faces

        rng = np.random.default_rng(int(random_state))
        rows = []
        for person, (source, photo, tight) in _face_sources().items():
            if tight:
                box, found_by = np.array([0, 0, photo.shape[1] - 1, photo.shape[0] - 1], float), "already a face crop"
            else:
                boxes, found_by = faces.detect(photo, "hog", 1), "HOG, upsample 1"
                if len(boxes) == 0:
                    boxes, found_by = faces.detect(photo, "cnn", 1), "CNN, upsample 1 (HOG found none)"
                box = boxes[0, :4]  # the largest face
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            half = max(box[2] - box[0], box[3] - box[1]) / 2
            (tmp / "images" / person).mkdir(parents=True)
            for k in range(FACES_PER_PERSON):
                h = half * (rng.uniform(0.9, 1.0) if tight else rng.uniform(1.0, 1.2))
                dx, dy = rng.uniform(-0.05, 0.05, 2) * half if tight else rng.uniform(-0.1, 0.1, 2) * half
                crop = Image.fromarray(photo).crop((round(cx + dx - h), round(cy + dy - h), round(cx + dx + h),
                                                    round(cy + dy + h))).resize((150, 150), Image.Resampling.LANCZOS)
                if rng.random() < 0.5:
                    crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                crop = ImageEnhance.Brightness(crop).enhance(rng.uniform(0.7, 1.3))
                crop.save(tmp / "images" / person / f"{person}_{k}.jpg", quality=90)
            rows.append({"person": person, "source photo": source, "face box found by": found_by,
                         "images": FACES_PER_PERSON})
        return {"version": FACES_VERSION, "random_state": int(random_state), "people": rows}

    return _build_once(name, build) / "images"


def sample_faces_info(random_state: int = 0) -> pd.DataFrame:
    """The people of ``sample_faces()``: person, source photo, how its face box was found, images."""
    folder = sample_faces(random_state).parent
    return pd.DataFrame(json.loads((folder / _MARKER).read_text())["people"])


# ---------------------------------------------------------------- archives, safely
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
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
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
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
            written.append(Path(tmp))
            with zf.open(info) as src, os.fdopen(fd, "wb") as out:
                while chunk := src.read(_CHUNK):
                    total += len(chunk)
                    if total > max_bytes:
                        raise ValueError(f"max_bytes={max_bytes}: the archive inflates past this while extracting "
                                         f"(at member {info.filename!r}); raise max_bytes if you trust it")
                    out.write(chunk)
            os.replace(tmp, target)
            written[-1] = target
    except BaseException as exc:
        for p in written:
            p.unlink(missing_ok=True)
        if isinstance(exc, (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError)):
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
        source = io.BytesIO(bytes(source))
    elif hasattr(source, "read") and not (hasattr(source, "seekable") and source.seekable()):
        source = io.BytesIO(source.read())
    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"source={source!r} is not a readable zip archive ({exc}); pass a .zip file") from exc
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


# ---------------------------------------------------------------- public sets
@dataclass(frozen=True)
class PublicDataset:
    """A public image set: where to get it and where its ``<class>/`` image folders sit in the archive.

    ``sha256`` (or, when only that is published, ``md5``) is verified when given. ``inner_archive``
    names an archive inside the archive that holds the images (Caltech-101 ships a tar.gz in a zip).
    """

    name: str
    url: str
    sha256: str | None = None
    archive: str = "tar.gz"
    folder_in_archive: str = ""
    description: str = ""
    licence: str = ""
    md5: str | None = None
    inner_archive: str | None = None


PUBLIC = {
    "tf_flowers": PublicDataset(
        name="tf_flowers",
        url="https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz",
        # as published by TensorFlow Datasets (url_checksums/tf_flowers.txt), 228,813,984 bytes
        sha256="4c54ace7911aaffe13a365c34f650e71dd5bf1be0a58b464e5a7183e3e595d9c",
        archive="tar.gz", folder_in_archive="flower_photos",
        description="3,670 Flickr photos of 5 flowers (daisy, dandelion, roses, sunflowers, tulips)",
        licence="CC BY 2.0 (per-photo attribution in flower_photos/LICENSE.txt)"),
    "caltech101": PublicDataset(
        name="caltech101",
        url="https://data.caltech.edu/records/mzrjq-6wc02/files/caltech-101.zip?download=1",
        sha256=None,  # Caltech publishes only the md5 of this zip
        md5="3138e1922a9193bfa496528edbbc45d0",
        archive="zip", inner_archive="caltech-101/101_ObjectCategories.tar.gz",
        folder_in_archive="101_ObjectCategories",
        description="9,146 images of 101 object categories plus BACKGROUND_Google (Fei-Fei, Fergus, Perona 2004)",
        licence="CC BY 4.0"),
}


def _fetch(ds: PublicDataset, folder: Path, timeout: float, progress) -> Path:
    """Stream ds.url into a temp file in ``folder`` and verify its checksum; returns the temp file."""
    advice = (f"Connect to the internet and retry, or download {ds.url} yourself, extract it and pass the "
              f"image folder to kit.load_folder(...).")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".download-")
    sha, md5, done = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(ds.url, timeout=timeout) as resp:
                    total = int(resp.headers.get("Content-Length") or 0)
                    report(progress, 0, total, "download")
                    while chunk := resp.read(_CHUNK):
                        out.write(chunk)
                        sha.update(chunk)
                        md5.update(chunk)
                        done += len(chunk)
                        report(progress, done, max(total, done), "download")
            except (urllib.error.URLError, socket.timeout, ConnectionError, TimeoutError) as exc:
                raise DatasetUnavailableError(f"could not download {ds.name!r} from {ds.url}: "
                                              f"{getattr(exc, 'reason', exc)}. {advice}") from exc
        for algo, want, got in (("sha256", ds.sha256, sha.hexdigest()), ("md5", ds.md5, md5.hexdigest())):
            if want and want.lower() != got:
                raise ValueError(f"{ds.name!r}: the downloaded file's {algo} is {got}, expected {want}; the "
                                 f"download is corrupt or the file changed upstream. Retry, or check {ds.url}")
    except BaseException:
        os.unlink(tmp)
        raise
    return Path(tmp)


def download(name_or_dataset, dest=None, timeout: float = 30, progress=None) -> Path:
    """Download and extract a public data set once; return the folder of its ``<class>/`` image folders.

    Parameters
    ----------
    name_or_dataset : str or PublicDataset
        A key of `PUBLIC` (``"tf_flowers"``, ``"caltech101"``) or your own `PublicDataset`.
    dest : str or Path, optional
        Where to keep it; ``kit_home()/datasets/<name>`` by default. The images go to a new sub-folder of it
        (``folder_in_archive``, else ``images``) and a ``.complete`` marker; if that sub-folder already exists
        without the marker it was not made here, and ``ValueError`` is raised before downloading. Only what
        this call created is deleted when it fails (its temporary files, and ``dest`` if it did not exist).
    timeout : float
        Seconds before an unreachable host fails with `DatasetUnavailableError`.
    progress : callable, optional
        ``progress(done_bytes, total_bytes, "download")``; without a Content-Length, total is the bytes so far.

    Examples
    --------
    >>> folder = kit.datasets.download("tf_flowers")  # doctest: +SKIP
    >>> images = kit.load_folder(folder)  # doctest: +SKIP
    """
    ds = name_or_dataset if isinstance(name_or_dataset, PublicDataset) else PUBLIC.get(str(name_or_dataset))
    if ds is None:
        raise ValueError(f"name_or_dataset={name_or_dataset!r} is not a known data set; pass one of "
                         f"{sorted(PUBLIC)} or a PublicDataset")
    root = Path(dest) if dest is not None else kit_home() / "datasets" / ds.name
    target = root / ds.folder_in_archive if ds.folder_in_archive else root / "images"
    if (root / _MARKER).is_file():
        return target
    if target.exists() or target.is_symlink():  # checked before downloading anything
        raise _not_ours(target, f"kit.datasets.download({ds.name!r})")
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    archive, work = None, None
    try:
        archive = _fetch(ds, root, timeout, progress)
        work = Path(tempfile.mkdtemp(dir=root, prefix=".extract-"))
        _extract(archive, ds.archive, work / "outer")
        inner = work / "outer"
        if ds.inner_archive:
            nested = inner / _check_member(ds.inner_archive)
            inner = work / "inner"
            _extract(nested, "zip" if nested.suffix.lower() == ".zip" else "tar", inner)
        found = inner / ds.folder_in_archive
        if not found.is_dir():
            raise ValueError(f"folder_in_archive={ds.folder_in_archive!r} is not in the archive of {ds.name!r}; "
                             f"its top level holds {sorted(p.name for p in inner.iterdir()) if inner.is_dir() else []}")
        if target.exists() or target.is_symlink():  # appeared while downloading: not ours, never replaced
            raise _not_ours(target, f"kit.datasets.download({ds.name!r})")
        os.replace(found, target)
        _atomic_write(root / _MARKER, json.dumps({"name": ds.name, "url": ds.url, "sha256": ds.sha256,
                                                  "folder": target.name}, indent=1).encode())
    except BaseException:
        if created:  # the folder this call created (so nothing of the caller's is inside)
            shutil.rmtree(root, ignore_errors=True)
        raise
    finally:
        if archive is not None:  # our own temporary download
            archive.unlink(missing_ok=True)
        if work is not None:  # our own temporary extraction folder
            shutil.rmtree(work, ignore_errors=True)
    return target
