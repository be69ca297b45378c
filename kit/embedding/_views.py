"""Embeddings of deterministic augmented views of photos (flip, whole photo squashed or padded, zoomed crops,
grey, colour shift), for training heads such as :class:`kit.cluster.SCAN` to agree across views (``fit(X,
views=...)``), the frozen-backbone stand-in for the image augmentations of the SCAN paper.

Each view goes through the kit's one embedding routine (``kit.embedding.run``: content hashes, the
on-disk cache, identical files once, unreadable files with reasons, progress) with the backbone's own kind
wrapped so that only decoding changes; the cache namespace is the backbone's plus ``"view": name``, so a view is
embedded once per photo and then read back. Views are deterministic (no random step), so they need no seed.

Cost: one embedding pass per view (EfficientNet-Lite0 on 2 cores: about 20 ms a photo, 30 s per view of the
1,485 clothing10 photos), paid once.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from .. import backbones as _bb
from .._utils.validation import validate_params
from ..backbones import BatchKind, EmbedOptions, kind_of
from ..backbones import effnet_lite as _effnet_lite
from ..io import read_image
from ._pipeline import run

ZOOM = 1.25  # zoomed crops: the photo's centred square decoded at ZOOM x the input size, an input-size crop of it
VIEWS = ("flip", "squash", "pad", "zoom_center", "zoom_tl", "zoom_tr", "zoom_bl", "zoom_br", "gray", "warm")
DEFAULT_VIEWS = ("flip", "squash", "pad", "zoom_tl", "zoom_br", "gray")


def _crop(arr, size, where):
    big = arr.shape[0]
    offsets = {"center": ((big - size) // 2, (big - size) // 2), "tl": (0, 0), "tr": (0, big - size),
               "bl": (big - size, 0), "br": (big - size, big - size)}
    top, left = offsets[where]
    return np.ascontiguousarray(arr[top:top + size, left:left + size])


def view_image(path, view: str, size: int) -> np.ndarray:
    """The photo at ``path`` as view ``view`` (one of ``VIEWS``), RGB uint8 ``size x size``."""
    if view.startswith("zoom_"):
        return _crop(read_image(path, size=int(round(size * ZOOM)), resize="center_crop"), size, view[5:])
    if view in ("squash", "pad"):
        return read_image(path, size=size, resize=view)
    arr = read_image(path, size=size, resize="center_crop")
    if view == "flip":
        return np.ascontiguousarray(arr[:, ::-1])
    im = Image.fromarray(arr)
    if view == "gray":
        return np.asarray(ImageOps.grayscale(im).convert("RGB"), dtype=np.uint8)
    if view == "warm":  # less saturated, brighter, warmer: a fixed colour jitter
        im = ImageEnhance.Brightness(ImageEnhance.Color(im).enhance(0.6)).enhance(1.15)
        out = np.asarray(im, dtype=np.float32) * np.float32([1.08, 1.0, 0.9])
        return np.clip(out, 0, 255).astype(np.uint8)
    raise ValueError(f"view={view!r} is not one of {', '.join(VIEWS)}")


class _ViewKind(BatchKind):
    """The backbone's own kind with one change: photos are decoded as ``view``."""

    def __init__(self, base: BatchKind, view: str):
        self.base, self.view = base, view
        self.source = base.source
        self.normalize = base.normalize

    def cache_key(self, spec):
        return self.base.cache_key(spec)

    def preprocessing(self, spec, options):
        return {**self.base.preprocessing(spec, options), "view": self.view}

    def offline(self, spec):
        return self.base.offline(spec)

    def decode(self, spec, path, options):
        return view_image(path, self.view, spec.input_size)

    def features(self, spec, batch):
        return self.base.features(spec, batch)


def embed_views(images, backbone=_bb.DEFAULT_BACKBONE, views=DEFAULT_VIEWS, batch_size: int = 32, cache_dir=None,
                use_cache: bool = True, progress=None) -> np.ndarray:
    """Embeddings of augmented views of ``images``, ``(len(views), N, D)`` float32 (rows L2-normalised), rows in
    the order of ``kit.embed(images, backbone)``'s.

    Parameters
    ----------
    images : ImageSet, folder path or list of file paths (as for ``kit.embed``)
    backbone : str or BackboneSpec
        A one-vector-per-photo backbone (not a face backbone).
    views : sequence of str
        Names among ``VIEWS``: ``flip`` (mirror), ``squash`` / ``pad`` (the whole photo instead of its centred
        square), ``zoom_center``/``zoom_tl``/``zoom_tr``/``zoom_bl``/``zoom_br`` (a crop of 64% of the centred
        square), ``gray``, ``warm`` (a fixed colour shift). With a grid-pooled backbone (``efficientnet_lite0_grid``)
        the mirror's cells are put back in the photo's left-to-right order, so that a cell describes the same part
        of the photo in both vectors (SCAN on clothing10: NMI 0.656 aligned, 0.641 not).
    batch_size, cache_dir, use_cache, progress
        As for ``kit.embed``; ``progress(done, total, stage)`` gets the stage ``"view <name>"``.

    Raises
    ------
    ValueError
        For an unknown view, a backbone of another kind (faces), or a photo readable in one view and not in
        another.

    Examples
    --------
    >>> import kit
    >>> from kit.embedding import embed_views
    >>> V = embed_views(kit.datasets.sample_folder(), views=("flip",))  # doctest: +SKIP
    >>> V.shape  # doctest: +SKIP
    (1, 360, 1280)
    """
    from ..io import as_imageset

    views = tuple(views) if not isinstance(views, str) else (views,)
    unknown = [v for v in views if v not in VIEWS]
    if not views or unknown:
        raise ValueError(f"views={views!r}: {'unknown ' + ', '.join(map(repr, unknown)) if unknown else 'empty'}; "
                         f"pass names among {', '.join(VIEWS)}")
    validate_params({"use_cache": ["boolean"], "progress": [callable, None]},
                    {"use_cache": use_cache, "progress": progress}, "embed_views")
    imageset = as_imageset(images)
    spec = _bb.get(backbone)
    base = kind_of(spec)
    if not isinstance(base, BatchKind):
        raise ValueError(f"backbone={spec.name!r} gives several rows per photo ({base.source}); views need a "
                         f"one-vector-per-photo backbone such as {_bb.DEFAULT_BACKBONE!r}")
    options = EmbedOptions(batch_size=int(batch_size), resize="center_crop")
    out, paths = [], None
    for view in views:
        stage = (lambda d, t, s, v=view: progress(d, t, f"view {v}")) if progress is not None else None
        emb = run(imageset, spec, _ViewKind(base, view), options, cache_dir=cache_dir, use_cache=use_cache,
                  progress=stage)
        if paths is not None and emb.paths != paths:
            raise ValueError(f"view {view!r} could not read the same photos as view {views[0]!r} "
                             f"({len(emb.paths)} and {len(paths)} rows); remove the unreadable files listed in "
                             f"kit.embed(...).unreadable")
        paths = emb.paths
        vectors = emb.vectors
        if view == "flip" and spec.source == "builtin" and spec.name in _effnet_lite.GRID_VARIANTS:
            vectors = _effnet_lite.mirror_grid(vectors)  # each cell back over the same part of the photo
        out.append(vectors)
    return np.stack(out).astype(np.float32)
