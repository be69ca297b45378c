"""The built-in sample data: the kit's clothing photos (`clothing`), and sets generated from photos that ship
inside installed packages (`sample_folder`, `sample_faces`).

The sample set (`sample_folder`) needs no network. It is built from real photographs that the
scikit-image wheel ships inside the package (``skimage/data/*.png|jpg``; the ones used here load
without pooch and without any download): astronaut, a cat, coffee, a rocket launch, coins, the
Hubble deep field, a stained tissue section and a motorcycle. Each class is ONE source photo seen
50 times through deterministic random crops (40-100% of the area, aspect 3:4..4:3), flips, small
rotations (+-15 deg), colour jitter (+-30%) and JPEG quality 80-95, resized to a 256 px short side.
So the classes are groups of near-duplicates: easy for any pretrained backbone, which makes the set
a smoke test for the whole pipeline rather than a benchmark. It is written once, atomically, under
``kit_home()/datasets/sample-v1`` and reused. For real benchmarks use `kit.datasets.download`
(`kit.datasets.PUBLIC`) or your own folder with `kit.load_folder`.

Nothing is written at import; the kit never writes into the user's own image folders.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageEnhance

from ._owned import _MARKER, _build_once

SAMPLE_VERSION = "sample-v1"
SAMPLE_PER_CLASS = 50
# class -> (skimage.data function, how to get the photo out of its return value)
_SAMPLE_SOURCES = {
    "astronaut": ("astronaut", None), "cat": ("chelsea", None), "coffee": ("coffee", None),
    "rocket": ("rocket", None), "coins": ("coins", None), "galaxies": ("hubble_deep_field", None),
    "tissue": ("immunohistochemistry", None), "motorcycle": ("stereo_motorcycle", 0),
}


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
    here = Path(__file__).resolve().parent
    # an installed wheel carries them as package data; a checkout (pip install -e .) has them in assets/
    for folder in (here / "clothing" / "images", here.parents[1] / "assets" / "clothing" / "images"):
        if folder.is_dir():
            return folder
    raise FileNotFoundError(f"the default photos are neither at {here / 'clothing'} (package data) nor in the "
                            f"repository's assets/clothing; reinstall the kit with `pip install .` from its "
                            f"repository")


def augmented_corpus(n: int, folder, random_state: int = 0, sources=None) -> list:
    """Write ``n`` JPEGs into the new folder ``folder``: seeded random crops, flips and colour jitter of real photos.

    A corpus of any size for scale tests and benchmarks (``bench/scale.py``): photo ``i`` is made from source
    ``i % len(sources)`` (sources taken in turn from each label) with a crop of 30-100 % of its area (aspect 3/4-4/3), a horizontal flip half of the time
    and brightness, contrast and saturation each scaled by 0.7-1.3, drawn from ``(random_state, i)``: the same
    arguments give the same files. Photos go to ``folder/<label of the source>/<i>.jpg`` so the corpus keeps the
    sources' labels.

    Parameters
    ----------
    n : int
        How many photos.
    folder : path
        A new or empty folder (anything else is refused: the kit never writes among the user's files).
    random_state : int
        The seed of every crop, flip and jitter.
    sources : folder or list of paths, optional
        The photos to vary (labels from their parent folders); default: :func:`clothing`.

    Returns
    -------
    list of str
        The paths written, in order.
    """
    from ..io import load_folder, open_image

    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n={n!r} must be a positive number of photos")
    folder = Path(folder).expanduser()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ValueError(f"folder={str(folder)!r} already exists and is not an empty folder; pass a new folder "
                         f"for the corpus (the kit never writes among existing files)")
    if isinstance(sources, (list, tuple)):
        paths = [str(p) for p in sources]
    else:
        paths = [str(p) for p in load_folder(sources if sources is not None else clothing()).paths]
    if not paths:
        raise ValueError(f"sources={sources!r} holds no photos to vary")
    rank: dict = {}
    order = []
    for p in paths:  # round robin over the labels: the first photos of any n already cover every label
        label = Path(p).parent.name
        order.append((rank.get(label, 0), label, p))
        rank[label] = rank.get(label, 0) + 1
    paths = [p for _, _, p in sorted(order)]
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(int(n)):
        rng = np.random.default_rng([int(random_state), i])
        src = Path(paths[i % len(paths)])
        with open_image(src) as im:
            im = im.convert("RGB")
        w, h = im.size
        area = w * h * rng.uniform(0.3, 1.0)
        aspect = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
        cw = int(min(w, max(16, round((area * aspect) ** 0.5))))
        ch = int(min(h, max(16, round((area / aspect) ** 0.5))))
        x0 = int(rng.integers(0, w - cw + 1))
        y0 = int(rng.integers(0, h - ch + 1))
        im = im.crop((x0, y0, x0 + cw, y0 + ch))
        if rng.random() < 0.5:
            im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            im = enhance(im).enhance(float(rng.uniform(0.7, 1.3)))
        path = folder / src.parent.name / f"{i:07d}.jpg"
        path.parent.mkdir(exist_ok=True)
        im.save(path, quality=90)
        out.append(str(path))
    return out


FACES_VERSION = "faces-sample-v1"
FACES_PER_PERSON = 8


def _face_sources():
    import matplotlib
    from skimage import data as skdata

    from ..io import read_image

    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    lfw = np.uint8(np.round(skdata.lfw_subset()[18] * 255))
    return {
        "eileen_collins": ("skimage.data.astronaut()", skdata.astronaut(), False),
        "grace_hopper": ("matplotlib sample_data/grace_hopper.jpg", read_image(hopper),
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
        from .. import faces

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
