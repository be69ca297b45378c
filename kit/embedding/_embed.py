"""``kit.embed``: images to embedding vectors with any registered backbone, batched, overlapped and cached.

The work is done by the shared pipeline (``kit.embedding.run``) and the backbone's kind
(``kit.backbones``): for one-vector-per-photo kinds, decoding and resizing run in a small thread pool
(Pillow releases the GIL) a few batches ahead of the model, and JPEGs are decoded at reduced scale (draft mode)
when the image is much larger than the input.
"""
from __future__ import annotations

import os
from numbers import Integral

from .. import backbones as _bb
from .._utils.validation import Interval, StrOptions, validate_params
from ..backbones import EmbedOptions, kind_of
from ..io import RESIZE_MODES, as_imageset
from ._pipeline import Embeddings, run

__all__ = ["Embeddings", "embed"]

_POSITIVE_INT = Interval(Integral, 1, None, closed="left")
ENGINES = ("local", "dask")


def _preprocessing(spec, resize: str) -> dict:
    """What turns a file into the network's input (the cache namespace of ``spec`` with ``resize``)."""
    return kind_of(spec).preprocessing(spec, EmbedOptions(resize=resize))


def embed(images, backbone=_bb.DEFAULT_BACKBONE, batch_size: int = 32, cache_dir=None, progress=None,
          resize: str = "center_crop", use_cache: bool = True, num_workers: int | None = None,
          engine: str = "local", client=None, store=None, tta: str | None = None) -> Embeddings:
    """Embed images with a pretrained backbone.

    Parameters
    ----------
    images : ImageSet, folder path, or list of file paths
    backbone : str or BackboneSpec
        A name from ``kit.backbones.available()``, a TF-Hub handle, or a local SavedModel folder.
    batch_size : int
        Images per forward pass.
    cache_dir : str or Path, optional
        Embedding cache folder (default ``$KIT_HOME/embeddings``).
    progress : callable(done, total, stage), optional
        Called with stage ``"loading model"`` once before the network is built (only when something must be
        computed), then ``"embedding"`` as photos are done.
    resize : {"center_crop", "squash", "pad"}
        How a photo becomes the square network input.
    use_cache : bool
        Read and write the on-disk cache.
    num_workers : int, optional
        Decoding threads (default: number of CPUs, at most 4); processes for face backbones.
    engine : {"local", "dask"}
        ``"local"``: this process (and the on-disk cache). ``"dask"``: partitions of photos on a Dask cluster,
        written to ``store`` (see :func:`kit.scale.embed_dask`; needs ``pip install "dask[distributed]"``).
    client : None, str or distributed.Client
        With ``engine="dask"``: None starts a local cluster sized to the machine (closed at the end); an
        address ``"tcp://host:port"`` or a client uses an existing cluster.
    store : folder path, fsspec URL or kit.scale.EmbeddingStore, optional
        An embedding store (Parquet files, one row per photo; ``"s3://bucket/store"`` and other fsspec URLs too). With ``engine="dask"`` the photos it already
        holds are not embedded again and a stopped run resumes; with ``"local"`` the result is also written
        there (only the rows it does not hold yet).
    tta : {None, "flip"}
        Test-time augmentation: ``"flip"`` embeds each photo and its mirror image and keeps the mean of the two
        (normalised) vectors; twice the compute, its own cache namespace. One-vector-per-photo backbones only.

    Returns
    -------
    Embeddings
        Rows in the order of the readable input images; images that fail to decode are listed in
        ``.unreadable`` with their reason.

    Examples
    --------
    >>> import kit
    >>> emb = kit.embed(kit.datasets.sample_folder())  # doctest: +SKIP
    >>> emb.vectors.shape  # doctest: +SKIP
    (360, 1280)
    """
    validate_params({"batch_size": [_POSITIVE_INT], "resize": [StrOptions(set(RESIZE_MODES))],
                     "use_cache": ["boolean"], "num_workers": [_POSITIVE_INT, None], "progress": [callable, None],
                     "cache_dir": [str, os.PathLike, None], "engine": [StrOptions(set(ENGINES))],
                     "tta": [StrOptions({"flip"}), None]},
                    {"batch_size": batch_size, "resize": resize, "use_cache": use_cache, "num_workers": num_workers,
                     "progress": progress, "cache_dir": cache_dir, "engine": engine, "tta": tta}, "embed")
    if tta is not None and (engine == "dask" or store is not None):
        raise ValueError(f"tta={tta!r} is not supported with engine='dask' or store= yet (the store keeps plain "
                         f"vectors); pass tta=None, or embed locally without a store")
    if engine == "dask":
        if cache_dir is not None:
            raise ValueError(f"cache_dir={str(cache_dir)!r} is for engine='local'; with engine='dask' the store is "
                             f"the cache: pass store= instead")
        from ..scale import embed_dask  # Dask is imported only when asked for

        return embed_dask(images, backbone=backbone, client=client, store=store, batch_size=batch_size,
                          resize=resize, num_workers=num_workers, progress=progress)
    if client is not None:
        raise ValueError(f"client={client!r} is for engine='dask'; pass engine='dask' too, or no client")
    imageset = as_imageset(images)
    spec = _bb.get(backbone)
    options = EmbedOptions(batch_size=int(batch_size), resize=resize, tta=tta,
                           num_workers=None if num_workers is None else int(num_workers))
    emb = run(imageset, spec, kind_of(spec), options, cache_dir=cache_dir, use_cache=use_cache, progress=progress)
    if store is not None:
        from ..scale import EmbeddingStore

        (store if isinstance(store, EmbeddingStore) else EmbeddingStore(store)).write(emb, backbone=spec)
    return emb
