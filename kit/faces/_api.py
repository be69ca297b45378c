"""``kit.faces.embed``: the face backbone in one call."""
from __future__ import annotations

from ..backbones import face_backbone as backbone
from ..embedding import embed as _embed


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
    spec = backbone(detector=detector, upsample=upsample, keep=keep, crop_as_face=crop_as_face,
                    max_side=max_side, jitter=jitter)
    return _embed(images, backbone=spec, progress=progress, cache_dir=cache_dir, use_cache=use_cache,
                  num_workers=num_workers)

