"""Classical image features, the baselines that show what a CNN buys (the ones clustimage offers).

* ``color_hist``: a joint colour histogram (HSV by default, or CIE Lab), square-rooted so that the cosine of
  two L2-normalised histograms is their Bhattacharyya coefficient;
* ``hog``: scikit-image's histogram of oriented gradients on a fixed-size grey image;
* ``pixels``: the photo downscaled to a few hundred pixels, optionally reduced by PCA (fitted on the photos
  being embedded, after the cache: the cache holds the raw pixels).

Each is a :class:`~kit.backbones.BatchKind`: decoding, the cache and progress come from the shared
pipeline. Make a variant with :func:`color_hist`, :func:`hog` or :func:`pixels` and pass it as ``backbone=``.
"""
from __future__ import annotations

from numbers import Integral

import numpy as np

from .._utils.validation import Interval, StrOptions, validate_params
from ._base import BackboneSpec, BatchKind, register_kind

COLOR_SPACES = ("hsv", "lab")


def _hsv(batch: np.ndarray) -> np.ndarray:
    """RGB uint8 (..., 3) -> HSV in [0, 1] (scikit-image; hue 0 for greys)."""
    from skimage.color import rgb2hsv

    return rgb2hsv(batch)


def _lab(batch: np.ndarray) -> np.ndarray:
    """RGB uint8 -> Lab scaled to [0, 1] per channel (L / 100, (a + 128) / 255, (b + 128) / 255)."""
    from skimage.color import rgb2lab

    lab = rgb2lab(batch.astype(np.float32) / 255.0)
    return np.stack([lab[..., 0] / 100.0, (lab[..., 1] + 128) / 255.0, (lab[..., 2] + 128) / 255.0], -1)


class ColorHistKind(BatchKind):
    source = "color_hist"

    def preprocessing(self, spec, options):
        return {**super().preprocessing(spec, options), **spec.options}

    def features(self, spec, batch):
        o = spec.options
        bins = np.asarray(o["bins"])
        coords = (_hsv if o["space"] == "hsv" else _lab)(batch).reshape(len(batch), -1, 3)
        idx = np.minimum((np.clip(coords, 0, 1) * bins).astype(np.int64), bins - 1)
        flat = (idx[..., 0] * bins[1] + idx[..., 1]) * bins[2] + idx[..., 2]
        n_bins = int(np.prod(bins))
        out = np.zeros((len(batch), n_bins), np.float32)
        for row, f in enumerate(flat):
            out[row] = np.bincount(f, minlength=n_bins)
        out /= out.sum(1, keepdims=True)
        return np.sqrt(out)  # Hellinger: cosine of normalised vectors = Bhattacharyya coefficient


class HogKind(BatchKind):
    source = "hog"

    def preprocessing(self, spec, options):
        return {**super().preprocessing(spec, options), **spec.options}

    def features(self, spec, batch):
        from skimage.feature import hog as _hog

        o = spec.options
        grey = batch.astype(np.float32) @ np.asarray([0.2125, 0.7154, 0.0721], np.float32)
        return np.stack([_hog(g / 255.0, orientations=o["orientations"],
                              pixels_per_cell=(o["cell"], o["cell"]), cells_per_block=(2, 2),
                              block_norm="L2-Hys", feature_vector=True) for g in grey]).astype(np.float32)


class PixelsKind(BatchKind):
    source = "pixels"

    def record_size(self, spec):
        return 3 * int(spec.input_size) ** 2  # cached before the PCA

    def preprocessing(self, spec, options):
        return super().preprocessing(spec, options)  # PCA runs after the cache: not part of its key

    def cache_key(self, spec):
        return f"pixels:{spec.input_size}"

    def features(self, spec, batch):
        return batch.reshape(len(batch), -1).astype(np.float32) / 255.0

    def finalize(self, spec, vectors):
        pca = spec.options.get("pca")
        if not pca or len(vectors) < 2:
            return vectors
        from sklearn.decomposition import PCA

        from .._utils.arrays import l2_normalize

        k = min(int(pca), len(vectors), vectors.shape[1])
        reduced = PCA(n_components=k, svd_solver="randomized" if len(vectors) > 2000 else "full",
                      random_state=spec.options.get("random_state", 0)).fit_transform(vectors)
        return l2_normalize(reduced.astype(np.float32))


register_kind(ColorHistKind())
register_kind(HogKind())
register_kind(PixelsKind())

_SIZE = Interval(Integral, 8, 1024, closed="both")


def color_hist(space: str = "hsv", bins=(8, 4, 4), size: int = 128) -> BackboneSpec:
    """A joint colour histogram backbone: ``bins`` per channel of ``space`` ("hsv" or "lab"), on the photo
    resized to ``size`` pixels square (``resize`` of ``kit.embed`` applies).

    Examples
    --------
    >>> from kit.backbones import color_hist
    >>> color_hist("lab", bins=(4, 6, 6)).feature_dim
    144
    """
    validate_params({"space": [StrOptions(set(COLOR_SPACES))], "size": [_SIZE], "bins": [tuple, list]},
                    {"space": space, "size": size, "bins": bins}, "color_hist")
    bins = tuple(int(b) for b in bins)
    if len(bins) != 3 or min(bins) < 1 or max(bins) > 64:
        raise ValueError(f"bins={bins!r} must be three integers between 1 and 64, one per channel of {space}")
    name = "color_hist" if (space, bins, size) == ("hsv", (8, 4, 4), 128) else \
        f"color_hist_{space}_{'x'.join(map(str, bins))}_{size}"
    return BackboneSpec(name=name, source="color_hist", handle=name, input_size=int(size),
                        feature_dim=int(np.prod(bins)), params=(("bins", bins), ("space", space)),
                        description=f"classical: joint {space.upper()} colour histogram, {'x'.join(map(str, bins))} "
                                    f"bins, square-rooted")


def hog(size: int = 128, cell: int = 16, orientations: int = 9) -> BackboneSpec:
    """scikit-image's HOG on the grey photo resized to ``size`` square: ``cell`` pixels per cell, 2 x 2 cells
    per block (L2-Hys), ``orientations`` bins.

    Examples
    --------
    >>> from kit.backbones import hog
    >>> hog().feature_dim
    1764
    """
    validate_params({"size": [_SIZE], "cell": [Interval(Integral, 4, 128, closed="both")],
                     "orientations": [Interval(Integral, 2, 36, closed="both")]},
                    {"size": size, "cell": cell, "orientations": orientations}, "hog")
    cells = int(size) // int(cell)
    if cells < 2:
        raise ValueError(f"size={size} with cell={cell} gives {cells} cell per side; HOG needs at least 2 "
                         f"(use a smaller cell or a larger size)")
    name = "hog" if (size, cell, orientations) == (128, 16, 9) else f"hog_{size}_{cell}_{orientations}"
    return BackboneSpec(name=name, source="hog", handle=name, input_size=int(size),
                        feature_dim=(cells - 1) ** 2 * 4 * int(orientations),
                        params=(("cell", int(cell)), ("orientations", int(orientations))),
                        description=f"classical: HOG on a {size}px grey image ({orientations} orientations, "
                                    f"{cell}px cells)")


def pixels(size: int = 32, pca: int | None = None, random_state: int = 0) -> BackboneSpec:
    """The photo downscaled to ``size`` x ``size`` RGB pixels; with ``pca``, reduced to that many principal
    components of the photos embedded together (``random_state`` seeds the randomized solver).

    Examples
    --------
    >>> from kit.backbones import pixels
    >>> pixels(16).feature_dim, pixels(32, pca=50).feature_dim
    (768, 50)
    """
    validate_params({"size": [Interval(Integral, 4, 256, closed="both")],
                     "pca": [Interval(Integral, 2, None, closed="left"), None], "random_state": ["random_state"]},
                    {"size": size, "pca": pca, "random_state": random_state}, "pixels")
    name = "pixels" if (size, pca) == (32, None) else f"pixels_{size}" + (f"_pca{pca}" if pca else "")
    params = (("pca", int(pca)), ("random_state", random_state)) if pca else ()
    return BackboneSpec(name=name, source="pixels", handle=name, input_size=int(size),
                        feature_dim=int(pca) if pca else 3 * int(size) ** 2, params=params,
                        description=f"classical: raw pixels at {size}x{size}" + (f", PCA to {pca}" if pca else ""))


SPECS = {s.name: s for s in (color_hist(), hog(), pixels(), pixels(32, pca=50))}
