"""Faces: detect, align and describe faces offline with dlib, then cluster people.

The pipeline per photo (every step is public, ``embed`` composes them):

1. ``detect`` -- dlib's HOG detector (``upsample`` times 2x upsampling, default 1: finds faces down to
   about 40 px) or its CNN (mmod) detector; or, with ``crop_as_face=True``, no detection: the whole
   image is the face box (for folders of face crops);
2. ``align`` -- the 5-point landmark model and ``dlib.get_face_chip`` (150 x 150, padding 0.25);
3. ``describe`` -- dlib's ResNet: one 128-d descriptor per face.

``kit.embed(images, backbone="dlib_face")`` runs it (spread over processes: dlib uses one thread per
call) and returns ordinary ``Embeddings`` whose rows are faces: ``paths`` names the source photo,
``faces`` is a table (path, face index, box, detector score...), and photos without a face are listed in
``unreadable`` with the reason ``"no face found"`` (``stats["no_face"]`` counts them; ``stats`` also has
``photos``, ``faces`` and ``processes``). ``backbone(...)`` makes a backbone with other detector settings;
the settings are part of the cache key.

Descriptors are kept as dlib returns them, **not** L2-normalised (their norms are about 1.3-1.7), so
dlib's Euclidean distance threshold keeps its meaning (same person below about 0.6). The cosine kNN
methods of ``kit.cluster`` normalise internally.

Models come from the PyPI packages ``dlib-bin`` (prebuilt dlib) and ``face-recognition-models`` (the
model files), both offline. Nothing is imported from dlib until a face is processed.

Examples
--------
>>> import kit
>>> from kit import faces
>>> emb = kit.embed("photos/", backbone="dlib_face")          # doctest: +SKIP
>>> labels = faces.cluster_faces(emb)                       # doctest: +SKIP
>>> faces.score(emb, labels)["bcubed_f"]                    # doctest: +SKIP
>>> crops = faces.crops_by_cluster(emb, labels)             # doctest: +SKIP
"""
from __future__ import annotations

import math
from numbers import Integral, Real
import os
import re
import threading
import time
from concurrent.futures import FIRST_COMPLETED, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .backbones import BackboneSpec
from .cache import EmbeddingCache
from ._facemodels import INSTALL, MODEL_FILES, is_available, model_dir  # noqa: F401  (public here)
from ._validation import Interval, StrOptions, validate_params
from .cluster import DBSCAN, Agglomerative, ChineseWhispers, Infomap, KMeans, Leiden, _Base, _check_X, _relabel
from .io import ImageSet, read_image
from .progress import report

NO_FACE = "no face found"
DETECTORS = ("hog", "cnn")
KEEP = ("largest", "all")
DESCRIPTOR_DIM = 128
CHIP_SIZE = 150
CHIP_PADDING = 0.25
_BOX = 5  # a cached face record: left, top, right, bottom, score, then the descriptor (NaN when not computed)
_RECORD = _BOX + DESCRIPTOR_DIM
FACE_COLUMNS = ["path", "face", "faces_in_photo", "left", "top", "right", "bottom", "score"]


def _dlib():
    try:
        import dlib
    except ImportError:
        raise ImportError(f"face backbones need dlib; run `{INSTALL}` (not `pip install dlib`, which compiles "
                          f"from source)") from None
    return dlib


_MODELS: dict = {}  # per process: dlib models are loaded once


def _model(kind: str):
    if kind not in _MODELS:
        dlib = _dlib()
        if kind == "hog":
            _MODELS[kind] = dlib.get_frontal_face_detector()
        else:
            path = str(model_dir() / MODEL_FILES[kind])
            loader = {"cnn": dlib.cnn_face_detection_model_v1, "landmarks5": dlib.shape_predictor,
                      "descriptor": dlib.face_recognition_model_v1}[kind]
            _MODELS[kind] = loader(path)
    return _MODELS[kind]


# ---------------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class FaceSettings:
    """How faces are found and described (all of it goes into the cache key).

    Parameters
    ----------
    detector : {"hog", "cnn"}
        dlib's HOG + linear SVM detector (fast, frontal faces) or its CNN (mmod) detector (slow on CPU).
    upsample : int
        Times the photo is upsampled 2x before detection (finds smaller faces, costs about 4x per step).
    keep : {"largest", "all"}
        One face per photo (the largest box) or every face found.
    crop_as_face : bool
        Skip detection: the whole image is the face box (still aligned with the landmarks). For folders
        of face crops, where detecting inside the crop loses faces.
    max_side : int or None
        Detection runs on a copy whose longer side is at most this (boxes are mapped back; alignment and
        descriptors use the full photo). None: detect at full size.
    jitter : int
        dlib's ``num_jitters``: average the descriptor over this many jittered copies (dlib seeds its own
        generator, so results are repeatable). 0: no jitter.
    """

    detector: str = "hog"
    upsample: int = 1
    keep: str = "largest"
    crop_as_face: bool = False
    max_side: int | None = 1024
    jitter: int = 0

    # upsample: 1 finds faces down to about 40 px, each step costs about 4x; max_side None: detect at full size
    _parameter_constraints = {
        "detector": [StrOptions(set(DETECTORS))],
        "upsample": [Interval(Integral, 0, 4, closed="both")],
        "keep": [StrOptions(set(KEEP))],
        "crop_as_face": ["boolean"],
        "max_side": [Interval(Integral, 64, None, closed="left"), None],
        "jitter": [Interval(Integral, 0, None, closed="left")],
    }

    def validated(self) -> "FaceSettings":
        validate_params(self._parameter_constraints, asdict(self), "FaceSettings")
        return self

    def preprocessing(self) -> dict:
        """The ``Embeddings.preprocessing`` record (and cache namespace) of these settings."""
        out = {"faces": True, "landmarks": 5, "chip_size": CHIP_SIZE, "chip_padding": CHIP_PADDING, "exif": True,
               "crop_as_face": self.crop_as_face, "keep": self.keep, "jitter": int(self.jitter)}
        if not self.crop_as_face:
            out.update(detector=self.detector, upsample=int(self.upsample),
                       max_side=None if self.max_side is None else int(self.max_side))
        return out


@dataclass(frozen=True)
class FaceBackboneSpec(BackboneSpec):
    """A ``BackboneSpec`` that also carries ``FaceSettings`` (made by :func:`backbone`)."""

    settings: FaceSettings = field(default_factory=FaceSettings)


def backbone(*, detector="hog", upsample=1, keep="largest", crop_as_face=False, max_side=1024,
             jitter=0) -> FaceBackboneSpec:
    """The ``dlib_face`` backbone with other detector settings (see :class:`FaceSettings`).

    Examples
    --------
    >>> import kit
    >>> from kit import faces
    >>> spec = faces.backbone(crop_as_face=True)
    >>> spec.name, spec.feature_dim
    ('dlib_face', 128)
    >>> emb = kit.embed("face_crops/", backbone=spec)   # doctest: +SKIP
    """
    s = FaceSettings(detector=detector, upsample=upsample, keep=keep, crop_as_face=crop_as_face,
                     max_side=max_side, jitter=jitter).validated()
    return FaceBackboneSpec(name="dlib_face", source="dlib", handle="dlib_face_recognition_resnet_model_v1",
                            input_size=CHIP_SIZE, feature_dim=DESCRIPTOR_DIM,
                            description="dlib face detection + 5-point alignment + 128-d ResNet descriptor",
                            settings=s)


def settings_of(spec) -> FaceSettings:
    """The face settings of a backbone spec (defaults for the registered ``dlib_face``)."""
    return spec.settings if isinstance(spec, FaceBackboneSpec) else FaceSettings()


# ------------------------------------------------------------------------------- the three steps
def detect(image: np.ndarray, detector: str = "hog", upsample: int = 1, max_side: int | None = 1024) -> np.ndarray:
    """Face boxes in an RGB uint8 image, largest first.

    Returns
    -------
    ndarray (n, 5) float64: ``left, top, right, bottom, score`` in the image's pixel coordinates
    (boxes may reach outside the image). ``score`` is the HOG detector's SVM margin or the CNN's
    confidence.
    """
    FaceSettings(detector=detector, upsample=upsample, max_side=max_side).validated()
    image = np.ascontiguousarray(image, dtype=np.uint8)
    h, w = image.shape[:2]
    scale = 1.0
    small = image
    if max_side is not None and max(h, w) > max_side:
        from PIL import Image

        scale = max_side / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0))
    if detector == "hog":
        rects, scores, _ = _model("hog").run(small, int(upsample), 0.0)
        found = [(r.left(), r.top(), r.right(), r.bottom(), s) for r, s in zip(rects, scores)]
    else:
        found = [(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom(), d.confidence)
                 for d in _model("cnn")(small, int(upsample))]
    boxes = np.asarray(found, dtype=np.float64).reshape(-1, 5)
    if scale != 1.0:
        boxes[:, :4] = np.round(boxes[:, :4] / scale)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return boxes[np.argsort(-area, kind="stable")]


def whole_image_box(image: np.ndarray) -> np.ndarray:
    """The box of ``crop_as_face``: the whole image, as ``detect`` would return it (score NaN)."""
    h, w = image.shape[:2]
    return np.asarray([[0, 0, w - 1, h - 1, np.nan]], dtype=np.float64)


def align(image: np.ndarray, box, size: int = CHIP_SIZE, padding: float = CHIP_PADDING) -> np.ndarray:
    """The aligned face chip (size x size RGB uint8): 5 landmarks in ``box``, then ``dlib.get_face_chip``."""
    dlib = _dlib()
    image = np.ascontiguousarray(image, dtype=np.uint8)
    left, top, right, bottom = (int(round(v)) for v in list(box)[:4])
    shape = _model("landmarks5")(image, dlib.rectangle(left, top, right, bottom))
    return dlib.get_face_chip(image, shape, size=int(size), padding=float(padding))


def describe(chips, jitter: int = 0) -> np.ndarray:
    """128-d descriptors (n, 128) float32 of aligned 150 x 150 chips (from :func:`align`), not normalised."""
    net = _model("descriptor")
    out = [np.asarray(net.compute_face_descriptor(np.ascontiguousarray(c, dtype=np.uint8), int(jitter)))
           for c in chips]
    return np.asarray(out, dtype=np.float32).reshape(-1, DESCRIPTOR_DIM)


def faces_in_image(image: np.ndarray, settings: FaceSettings | None = None) -> np.ndarray:
    """Every face record of one image: (n, 133) float32 rows ``left, top, right, bottom, score,
    descriptor``; largest first. With ``keep="largest"`` only the first row has a descriptor (the
    others are NaN: counted, not described)."""
    s = (settings or FaceSettings()).validated()
    boxes = whole_image_box(image) if s.crop_as_face else detect(image, s.detector, s.upsample, s.max_side)
    records = np.full((len(boxes), _RECORD), np.nan, dtype=np.float32)
    if len(boxes):
        h, w = image.shape[:2]
        records[:, :_BOX] = boxes
        records[:, [0, 2]] = np.clip(records[:, [0, 2]], 0, w - 1)  # stored boxes stay inside the photo
        records[:, [1, 3]] = np.clip(records[:, [1, 3]], 0, h - 1)
        n_desc = 1 if s.keep == "largest" else len(boxes)
        chips = [align(image, b) for b in boxes[:n_desc]]  # alignment uses the unclipped box
        records[:n_desc, _BOX:] = describe(chips, s.jitter)
    return records


def _photo_records(path: str, settings: FaceSettings):
    try:
        image = read_image(path)
    except ValueError as exc:
        return None, str(exc)
    return faces_in_image(image, settings), None


def crop_features(images) -> np.ndarray:
    """Descriptors of images that are already face crops (float in [0, 1] or uint8, N x H x W x 3).

    This is what ``kit.backbones.load("dlib_face").features(x)`` runs.
    """
    arr = np.asarray(images)
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(arr.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    s = FaceSettings(crop_as_face=True)
    return np.stack([faces_in_image(im, s)[0, _BOX:] for im in arr]) if len(arr) else \
        np.zeros((0, DESCRIPTOR_DIM), np.float32)


# ----------------------------------------------------------------------------------- many photos
def _init_worker() -> None:
    """Runs once in each worker process: load the models every setting needs (the CNN detector loads on
    first use)."""
    _model("landmarks5"), _model("descriptor"), _model("hog")


def _work(chunk, settings: dict):
    s = FaceSettings(**settings)
    return [(i, *_photo_records(path, s)) for i, path in chunk]


POOL_MIN_PHOTOS = 100
#: Idle worker processes exit after this many seconds; a call within it reuses them (no start-up).
POOL_IDLE_SECONDS = 60

_POOL = None  # the kit's own loky executor (not joblib's shared one, which other libraries resize)
_POOL_LOCK = threading.Lock()


def _pool(workers: int):
    """The worker processes, started on first use and kept while busy or idle for less than
    ``POOL_IDLE_SECONDS``. loky starts fresh interpreters that never import the caller's ``__main__``
    (a script without a main guard, stdin, ``python -c``, Jupyter and Streamlit all work) and does not fork
    a threaded parent."""
    global _POOL
    from joblib.externals.loky import ProcessPoolExecutor

    with _POOL_LOCK:
        pool = _POOL
        if pool is None or pool._flags.broken or pool._flags.shutdown or pool._max_workers != workers:
            if pool is not None:
                pool.shutdown(wait=False)  # lets another thread's pending photos finish, then its workers exit
            pool = _POOL = ProcessPoolExecutor(max_workers=workers, timeout=POOL_IDLE_SECONDS,
                                               initializer=_init_worker)
        return pool


def shutdown_pool() -> None:
    """Stop the idle worker processes now instead of after ``POOL_IDLE_SECONDS`` (they also stop when
    Python exits)."""
    global _POOL
    with _POOL_LOCK:
        pool, _POOL = _POOL, None
    if pool is not None:
        pool.shutdown(wait=True)


def processes_for(n_photos: int, settings: FaceSettings, num_workers: int | None = None) -> int:
    """How many processes :func:`map_photos` uses for ``n_photos`` (1: it works in this process).

    ``num_workers=None``: all cores, once there are ``POOL_MIN_PHOTOS`` photos (HOG or crops) or two per
    core (CNN). A number: that many processes whenever there are at least two photos per process.
    """
    validate_params({"num_workers": [Interval(Integral, 1, None, closed="left"), None]},
                    {"num_workers": num_workers}, "processes_for")
    workers = int(num_workers or os.cpu_count() or 1)
    minimum = 2 * workers
    if num_workers is None and not (settings.detector == "cnn" and not settings.crop_as_face):
        minimum = max(minimum, POOL_MIN_PHOTOS)
    return workers if n_photos >= minimum else 1


def map_photos(paths, settings: FaceSettings | None = None, num_workers: int | None = None, progress=None,
               chunk_size: int | None = None):
    """Face records of every photo, spread over ``num_workers`` processes (default: all cores).

    Yields ``(index, records, reason)`` as photos finish (any order): ``records`` as in
    :func:`faces_in_image` (zero rows: no face found), or None with the decoding ``reason``.
    :func:`processes_for` decides how many processes run: on 2 cores (``bench/faces.py``) one process
    does 15-16 photos/s (HOG, 150 px photos) and two do about twice that once started, but workers started
    by the call give their first result after about 5 s (each is a fresh interpreter that imports the kit,
    numpy, pandas and scikit-learn, then loads the models), so on such small photos the pool pays off from
    about 150 photos; larger photos cost more each (detection) and reach it sooner, hence the compromise
    ``POOL_MIN_PHOTOS``. A call while the workers are still there (idle for less than ``POOL_IDLE_SECONDS``)
    starts at once. The worker processes are loky's (from joblib): they work from any entry point
    (scripts without ``if __name__ == "__main__":``, stdin, ``python -c``, notebooks, Streamlit), stay for
    ``POOL_IDLE_SECONDS`` after the call for the next one (:func:`shutdown_pool` stops them now), and a
    worker that dies (out of memory, a crash in dlib) raises a RuntimeError instead of hanging.
    """
    s = (settings or FaceSettings()).validated()
    paths = list(paths)
    n = len(paths)
    workers = processes_for(n, s, num_workers)
    done = 0
    report(progress, 0, n, "faces")
    if workers == 1:
        for i, p in enumerate(paths):
            records, reason = _photo_records(p, s)
            done += 1
            yield i, records, reason
            report(progress, done, n, "faces")
        return
    size = chunk_size or max(1, min(4, math.ceil(n / (workers * 4))))
    items = list(enumerate(paths))
    chunks = [items[k:k + size] for k in range(0, n, size)]
    settings_dict = asdict(s)
    pool = _pool(int(workers))
    pending = set()
    try:
        pending = {pool.submit(_work, chunk, settings_dict) for chunk in chunks}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                try:
                    result = fut.result()
                except BrokenProcessPool as exc:
                    codes = re.search(r"exit codes of the workers are (\S+)", str(exc))
                    raise RuntimeError(
                        f"num_workers={workers}: a face worker process stopped unexpectedly"
                        f"{' (exit code ' + codes.group(1) + ')' if codes else ''}: it was killed (often for "
                        f"lack of memory) or crashed in dlib. Pass num_workers=1 to work in this process and see "
                        f"the error, or fewer workers if memory is short") from exc
                for item in result:
                    done += 1
                    yield item
                report(progress, done, n, "faces")
    finally:
        for fut in pending:  # the caller stopped early or a worker died: drop what has not started
            fut.cancel()


def _embed_imageset(imageset: ImageSet, spec, cache_dir=None, progress=None, use_cache: bool = True,
                    num_workers: int | None = None):
    """``kit.embed`` for face backbones (its ``source == "dlib"`` branch): rows are faces."""
    from .embed import Embeddings

    t0 = time.perf_counter()
    s = settings_of(spec)
    if not is_available():
        raise ImportError(f"backbone {spec.name!r} needs dlib and the face models; run `{INSTALL}`")
    preprocessing = s.preprocessing()
    cache = EmbeddingCache(spec.cache_key, preprocessing, cache_dir) if use_cache else None
    n = len(imageset.paths)
    by_hash = cache.get(set(imageset.hashes)) if cache is not None else {}
    first_of_hash: dict = {}
    for i, h in enumerate(imageset.hashes):
        if h not in by_hash and h not in first_of_hash:
            first_of_hash[h] = i
    todo = list(first_of_hash.values())
    cached = sum(h in by_hash for h in imageset.hashes)

    def sub_progress(done, total, stage):
        report(progress, min(n, cached + done), n, stage)

    bad: dict = {}
    for j, records, reason in map_photos([imageset.paths[i] for i in todo], s, num_workers, sub_progress):
        h = imageset.hashes[todo[j]]
        if records is None:
            bad[h] = reason
            continue
        by_hash[h] = records.ravel()
        if cache is not None:
            cache.put([h], records.reshape(1, -1))

    rows, paths, labels, hashes, table, unreadable = [], [], [], [], [], []
    for i, (p, h) in enumerate(zip(imageset.paths, imageset.hashes)):
        if h not in by_hash:
            unreadable.append((p, bad.get(h, "not embedded")))
            continue
        records = np.asarray(by_hash[h], dtype=np.float32).reshape(-1, _RECORD)
        if len(records) == 0:
            unreadable.append((p, NO_FACE))
            continue
        keep = 1 if s.keep == "largest" else len(records)
        for k in range(keep):
            rows.append(records[k, _BOX:])
            paths.append(p)
            hashes.append(h)
            if imageset.labels is not None:
                labels.append(imageset.labels[i])
            left, top, right, bottom, score = records[k, :_BOX].tolist()
            table.append((p, k, len(records), int(left), int(top), int(right), int(bottom), score))
    vectors = np.vstack(rows).astype(np.float32) if rows else np.zeros((0, DESCRIPTOR_DIM), np.float32)
    extra = pd.DataFrame(unreadable, columns=["path", "reason"])
    bad_table = pd.concat([imageset.unreadable, extra], ignore_index=True) if len(extra) else \
        imageset.unreadable.copy()
    faces = pd.DataFrame(table, columns=FACE_COLUMNS).astype(
        {"face": "int64", "faces_in_photo": "int64", "left": "int64", "top": "int64", "right": "int64",
         "bottom": "int64", "score": "float64"})
    report(progress, n, n, "faces")
    return Embeddings(
        vectors=vectors, paths=paths, labels=labels if imageset.labels is not None else None,
        backbone=spec.name, preprocessing=preprocessing, unreadable=bad_table, hashes=hashes,
        stats={"cached": cached, "computed": len(todo) - len(bad), "seconds": time.perf_counter() - t0,
               "photos": n, "faces": len(rows), "no_face": sum(r == NO_FACE for _, r in unreadable),
               "processes": processes_for(len(todo), s, num_workers) if todo else 0},
        faces=faces,
    )


def embed(images, *, detector="hog", upsample=1, keep="largest", crop_as_face=False, max_side=1024, jitter=0,
          num_workers=None, progress=None, cache_dir=None, use_cache=True):
    """Shorthand for ``kit.embed(images, backbone=kit.faces.backbone(...))``; see :class:`FaceSettings`.

    ``num_workers`` is the number of processes (default: one per core when there are enough photos, see
    :func:`processes_for`).

    Examples
    --------
    >>> from kit import faces
    >>> emb = faces.embed("face_crops/", crop_as_face=True)       # doctest: +SKIP
    >>> emb.faces.head()                                          # doctest: +SKIP
    """
    from .embed import embed as _embed

    spec = backbone(detector=detector, upsample=upsample, keep=keep, crop_as_face=crop_as_face,
                    max_side=max_side, jitter=jitter)
    return _embed(images, backbone=spec, progress=progress, cache_dir=cache_dir, use_cache=use_cache,
                  num_workers=num_workers)


# -------------------------------------------------------------------------------- crops for galleries
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


# ---------------------------------------------------------------------------------- distances
def pair_distances(X, labels) -> pd.DataFrame:
    """Euclidean distance of every pair of faces and whether they are the same person
    (columns ``distance``, ``same``): the same-vs-different distribution behind the thresholds."""
    X = np.asarray(getattr(X, "vectors", X), dtype=np.float64)
    labels = np.asarray(labels)
    if len(labels) != len(X):
        raise ValueError(f"labels has {len(labels)} entries for {len(X)} faces; pass one label per row")
    from scipy.spatial.distance import pdist

    i, j = np.triu_indices(len(X), 1)
    return pd.DataFrame({"distance": pdist(X), "same": labels[i] == labels[j]})


# ----------------------------------------------------------------------------------- clustering
class DlibChineseWhispers(_Base):
    """dlib's own Chinese Whispers (``dlib.chinese_whispers_clustering``): faces closer than
    ``threshold`` (Euclidean distance of descriptors) are linked (unweighted), then labels spread.

    dlib seeds its generator itself; ``random_state`` shuffles the order the faces are given in
    (which changes dlib's visiting order), so different seeds give the run-to-run spread and equal
    seeds give equal labels. ``random_state=None`` keeps the input order.
    """

    # threshold: a Euclidean distance between dlib's face descriptors, typically 0.5-0.7
    _parameter_constraints = {"threshold": [Interval(Real, 0, None, closed="neither")],
                              "random_state": ["random_state"]}

    def __init__(self, threshold=0.5, *, random_state=0):
        self.threshold = threshold
        self.random_state = random_state

    def fit(self, X, y=None):
        self._validate_params()
        dlib = _dlib()
        X = _check_X(X)
        n = len(X)
        order = np.arange(n) if self.random_state is None else np.random.default_rng(self.random_state).permutation(n)
        got = dlib.chinese_whispers_clustering([dlib.vector(X[i].astype(np.float64).tolist()) for i in order],
                                               float(self.threshold))
        labels = np.empty(n, np.int64)
        labels[order] = np.asarray(got, dtype=np.int64)
        self.labels_ = _relabel(labels)
        return self


#: method -> (what ``threshold`` means, its default). Defaults from ``bench/faces.py`` on faces_5celeb.
FACE_METHODS = {
    "agglomerative": ("Euclidean distance at which average linkage stops merging", 0.65),
    "dlib_chinese_whispers": ("Euclidean distance below which two faces are linked", 0.6),
    "dbscan": ("eps, Euclidean distance (with min_samples, default 2)", 0.55),
    "chinese_whispers": ("cosine similarity below which kNN edges are cut", 0.92),
    "leiden": ("cosine similarity below which kNN edges are cut", 0.92),
    "infomap": ("cosine similarity below which kNN edges are cut", 0.92),
    "kmeans": ("unused: give n_clusters", None),
}
#: ``method="auto"``: average linkage up to this many faces (its distance matrix is N^2/2 doubles: 400 MB
#: at 10,000), the kit's Chinese Whispers on the kNN graph above.
AUTO_MAX_AGGLOMERATIVE = 10_000


class FaceClustering(_Base):
    """Cluster face descriptors into people, with thresholds in the units of dlib descriptors.

    Parameters
    ----------
    method : str
        ``"auto"`` or a key of ``FACE_METHODS``: ``"agglomerative"`` (average linkage, Euclidean),
        ``"dlib_chinese_whispers"`` (dlib's own), ``"dbscan"`` (Euclidean), ``"chinese_whispers"``,
        ``"leiden"``, ``"infomap"`` (the kit's, on the cosine kNN graph built with faiss), ``"kmeans"``
        (needs ``n_clusters``).
    threshold : float, optional
        Method-specific, default in ``FACE_METHODS``: a Euclidean distance on the raw descriptors for
        ``agglomerative``, ``dlib_chinese_whispers`` and ``dbscan`` (eps); a cosine similarity for the kNN-graph
        methods. On dlib descriptors every pair is cosine-similar (different people: median 0.83), so
        cosine 0.92 is the counterpart of Euclidean 0.6 (0.03% of different-person pairs pass either).
    n_clusters : int, optional
        Needed by ``kmeans``; with ``agglomerative`` it replaces the threshold.
    k : int
        Neighbours per face in the kNN graph (graph methods).
    min_samples : int
        DBSCAN's core-point size (2: two close faces make a person).
    resolution : float
        Leiden's resolution.
    random_state : int or None
        Seeds Chinese Whispers (both), Leiden, Infomap and k-means.

    Attributes
    ----------
    labels_, method_ (the method that ran), threshold_, estimator_ (the fitted underlying estimator)

    Notes
    -----
    ``method="auto"`` is average-linkage agglomerative clustering at Euclidean distance 0.65 (up to
    ``AUTO_MAX_AGGLOMERATIVE`` faces; above, the kit's Chinese Whispers on the kNN graph at cosine 0.92).
    Measured by ``bench/faces.py`` on faces_5celeb (93 photos, 5 people), BCubed F (clusters); the last
    column is the range of the means over 20 random draws of 2, 3 and 5 photos per person:

    ===============================  ==================  ==================  ===================
    method, threshold                crop_as_face (93)   HOG faces (89)      2-5 photos/person
    ===============================  ==================  ==================  ===================
    agglomerative 0.65 (``auto``)    0.970 (6)           1.000 (5)           0.972-0.991
    agglomerative 0.75               0.980 (5)           1.000 (5)           0.891-0.936
    dlib Chinese Whispers 0.5        0.826 (18-21)       0.841 (20-21)       0.804-0.854
    dlib Chinese Whispers 0.6        0.980 (7)           1.000 (5)           0.945-0.990
    DBSCAN eps 0.55                  0.959 (5)           0.989 (5)           0.911-0.939
    kit Chinese Whispers cos 0.92    0.990 (6)           0.989 (6)           0.945-0.979
    Leiden cos 0.92                  0.990 (6)           0.989 (6)           0.945-0.979
    ===============================  ==================  ==================  ===================

    Average linkage at 0.65 is the most stable across the subsets (few photos per person, where graph
    methods must cut kNN edges to other people) and agrees with the issue's in-the-wild measurement
    (1,699 photos of 17 people: 0.994 at 0.65, where dlib's 0.5 over-split). Expect lower scores on
    people the descriptor network did not see in training.

    Examples
    --------
    >>> import numpy as np
    >>> from kit.faces import FaceClustering
    >>> X = np.array([[0, 0], [0.3, 0], [2, 2], [2.3, 2], [2, 2.3]], np.float32)
    >>> FaceClustering().fit(X).labels_.tolist()
    [1, 1, 0, 0, 0]
    """

    _parameter_constraints = {
        "method": [StrOptions({"auto", *FACE_METHODS})],
        "threshold": [Interval(Real, 0, None, closed="neither"), None],  # see FACE_METHODS for each default
        "n_clusters": [Interval(Integral, 1, None, closed="left"), None],
        "k": [Interval(Integral, 1, None, closed="left")],
        "min_samples": [Interval(Integral, 1, None, closed="left")],
        "resolution": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
    }

    def __init__(self, method="auto", *, threshold=None, n_clusters=None, k=10, min_samples=2, resolution=1.0,
                 random_state=0):
        self.method = method
        self.threshold = threshold
        self.n_clusters = n_clusters
        self.k = k
        self.min_samples = min_samples
        self.resolution = resolution
        self.random_state = random_state

    def _estimator(self, n):
        method = self.method
        if method == "auto":
            method = "agglomerative" if n <= AUTO_MAX_AGGLOMERATIVE else "chinese_whispers"
        if method not in FACE_METHODS:
            raise ValueError(f"method={self.method!r} must be 'auto' or one of {sorted(FACE_METHODS)}")
        thr = FACE_METHODS[method][1] if self.threshold is None else self.threshold
        rs = self.random_state
        if method == "dlib_chinese_whispers":
            return method, thr, DlibChineseWhispers(thr, random_state=rs)
        if method == "agglomerative":
            if self.n_clusters is not None:
                return method, None, Agglomerative(self.n_clusters, linkage="average", metric="euclidean")
            return method, thr, Agglomerative(linkage="average", metric="euclidean", distance_threshold=thr)
        if method == "dbscan":
            return method, thr, DBSCAN(thr, min_samples=self.min_samples, metric="euclidean")
        if method == "chinese_whispers":
            return method, thr, ChineseWhispers(thr, k=self.k, random_state=rs)
        if method == "leiden":
            return method, thr, Leiden(k=self.k, resolution=self.resolution, threshold=thr, random_state=rs)
        if method == "infomap":
            return method, thr, Infomap(k=self.k, threshold=thr, random_state=rs)
        if self.n_clusters is None:
            raise ValueError("method='kmeans' needs n_clusters (the number of people); without it use "
                             "method='auto'")
        return method, None, KMeans(self.n_clusters, random_state=rs)

    def fit(self, X, y=None):
        self._validate_params()
        X = _check_X(getattr(X, "vectors", X))
        self.method_, self.threshold_, self.estimator_ = self._estimator(len(X))
        self.labels_ = _relabel(self.estimator_.fit(X).labels_)
        return self


def cluster_faces(X, method="auto", **params) -> np.ndarray:
    """Labels of :class:`FaceClustering` (``X``: face ``Embeddings`` or an (N, 128) array); -1 is noise.

    Examples
    --------
    >>> from kit.faces import cluster_faces
    >>> labels = cluster_faces(emb)                                      # doctest: +SKIP
    >>> labels = cluster_faces(emb, "dlib_chinese_whispers", threshold=0.55)   # doctest: +SKIP
    """
    return FaceClustering(method=method, **params).fit(X).labels_


# ---------------------------------------------------------------------------------------- scores
NO_FACE_POLICIES = ("exclude", "singletons")


def score(emb, labels_pred, truth=None, no_face: str = "exclude", noise: str = "singletons") -> dict:
    """Pairwise and BCubed precision/recall/F of a face clustering, as in the face-clustering papers.

    Parameters
    ----------
    emb : Embeddings of faces (rows = faces, ``emb.labels`` their people unless ``truth`` is given)
    labels_pred : one cluster label per face (-1: noise)
    truth : ImageSet or dict {path: person}, optional
        Labels of every photo. Needed for ``no_face="singletons"`` (the photos without a face have no row).
    no_face : {"exclude", "singletons"}
        Photos without a face row (no face found, unreadable) are left out, or scored as one cluster
        each (their person's other photos then count as missed).
    noise : {"singletons", "cluster"}
        Predicted -1: each its own cluster (default: an unclustered face is a person of its own), or one
        cluster together (``kit.metrics``' default).

    Returns
    -------
    dict: ``pairwise_precision, pairwise_recall, pairwise_f, bcubed_precision, bcubed_recall, bcubed_f,
    n_clusters, n_faces, n_no_face`` (photos without a face scored as singletons; 0 when excluded).
    Computed with ``kit.metrics``.
    """
    from . import metrics

    validate_params({"no_face": [StrOptions(set(NO_FACE_POLICIES))],
                     "noise": [StrOptions(set(metrics.NOISE_POLICIES))]},
                    {"no_face": no_face, "noise": noise}, "kit.faces.score")
    pred = np.asarray(labels_pred)
    if len(pred) != len(emb):
        raise ValueError(f"labels_pred has {len(pred)} entries for {len(emb)} faces; pass one label per face")
    if isinstance(truth, ImageSet):
        if truth.labels is None:
            raise ValueError("truth is an unlabelled ImageSet; load it with labels ('folders' or a CSV)")
        truth = dict(zip(truth.paths, truth.labels))
    if truth is None:
        if emb.labels is None:
            raise ValueError("no true labels: the embeddings are unlabelled; pass truth= (an ImageSet or a dict "
                             "{path: person})")
        if no_face == "singletons" and len(emb.unreadable):
            raise ValueError("no_face='singletons' needs the people of the photos without a face; pass truth= "
                             "(the labelled ImageSet, or a dict {path: person})")
        true = list(emb.labels)
        missing = []
    else:
        if not isinstance(truth, dict):
            raise ValueError(f"truth must be a labelled ImageSet or a dict {{path: person}}, "
                             f"got {type(truth).__name__}")
        lost = [p for p in emb.paths if p not in truth]
        if lost:
            raise ValueError(f"truth has no label for {len(lost)} face photos (e.g. {lost[0]!r}); it must cover "
                             f"every photo")
        true = [truth[p] for p in emb.paths]
        with_face = set(emb.paths)
        missing = [p for p in truth if p not in with_face] if no_face == "singletons" else []
    codes = pd.factorize(pred)[0].astype(np.int64)
    is_noise = pred == -1 if pred.dtype.kind in "iuf" else np.zeros(len(pred), bool)
    if noise == "singletons" and is_noise.any():
        codes[is_noise] = codes.max() + 1 + np.arange(int(is_noise.sum()))
    start = int(codes.max()) + 1 if len(codes) else 0
    codes = np.concatenate([codes, start + np.arange(len(missing), dtype=np.int64)])
    true = np.asarray(list(map(str, true)) + [str(truth[p]) for p in missing])
    if len(true) == 0:
        raise ValueError("nothing to score: no faces and no photos")
    pp, pr, pf = metrics.pairwise_precision_recall_f(true, codes)
    bp, br, bf = metrics.bcubed_precision_recall_f(true, codes)
    return {"pairwise_precision": pp, "pairwise_recall": pr, "pairwise_f": pf, "bcubed_precision": bp,
            "bcubed_recall": br, "bcubed_f": bf, "n_clusters": int(len(set(pred.tolist()) - {-1})),
            "n_faces": int(len(pred)), "n_no_face": int(len(missing))}
