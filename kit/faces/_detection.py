"""Find, align and describe faces with dlib (the three steps ``kit.embed(..., backbone="dlib_face")`` runs per
photo), and the settings that control them (part of the cache key)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from numbers import Integral

import numpy as np

from .._utils.validation import Interval, StrOptions, validate_params
from ..io import read_image
from ._models import INSTALL, MODEL_FILES, model_dir

NO_FACE = "no face found"
DETECTORS = ("hog", "cnn")
KEEP = ("largest", "all")
DESCRIPTOR_DIM = 128
CHIP_SIZE = 150
CHIP_PADDING = 0.25
BOX_FIELDS = 5  # a cached face record: left, top, right, bottom, score, then the descriptor (NaN when not computed)
RECORD_SIZE = BOX_FIELDS + DESCRIPTOR_DIM
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
    records = np.full((len(boxes), RECORD_SIZE), np.nan, dtype=np.float32)
    if len(boxes):
        h, w = image.shape[:2]
        records[:, :BOX_FIELDS] = boxes
        records[:, [0, 2]] = np.clip(records[:, [0, 2]], 0, w - 1)  # stored boxes stay inside the photo
        records[:, [1, 3]] = np.clip(records[:, [1, 3]], 0, h - 1)
        n_desc = 1 if s.keep == "largest" else len(boxes)
        chips = [align(image, b) for b in boxes[:n_desc]]  # alignment uses the unclipped box
        records[:n_desc, BOX_FIELDS:] = describe(chips, s.jitter)
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
    return np.stack([faces_in_image(im, s)[0, BOX_FIELDS:] for im in arr]) if len(arr) else \
        np.zeros((0, DESCRIPTOR_DIM), np.float32)

