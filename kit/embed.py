"""Turn images into L2-normalised embedding vectors, batched, overlapped and cached.

Decoding and resizing run in a small thread pool (Pillow releases the GIL) a few batches ahead
of the network, so the CPU spends its time in the model; JPEGs are decoded at reduced scale
(draft mode) when the image is much larger than the network's input.
"""
from __future__ import annotations

import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path

import numpy as np
import pandas as pd

from . import backbones as _bb
from .cache import EmbeddingCache
from ._validation import Interval, StrOptions, validate_params
from .io import RESIZE_MODES, ImageSet, _empty_unreadable, file_hash, load_folder, read_image
from .progress import report

_POSITIVE_INT = Interval(Integral, 1, None, closed="left")


@dataclass
class Embeddings:
    """Embedding vectors of a set of images.

    Attributes
    ----------
    vectors : ndarray (N, D) float32, rows L2-normalised (face backbones: dlib's raw descriptors, see kit.faces)
    paths : list of str, one per row (face backbones: the photo each face comes from)
    labels : list of str or None
    backbone : str
    preprocessing : dict
    unreadable : DataFrame (path, reason): images that could not be embedded
    hashes : list of str, content hash per row
    stats : dict: ``cached``, ``computed``, ``seconds``
    faces : DataFrame or None
        Face backbones only: one row per vector (path, face, faces_in_photo, left, top, right, bottom, score).
    """

    vectors: np.ndarray
    paths: list
    labels: list | None
    backbone: str
    preprocessing: dict
    unreadable: pd.DataFrame = field(default_factory=_empty_unreadable)
    hashes: list = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    faces: pd.DataFrame | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return (f"Embeddings({self.vectors.shape[0]} x {self.vectors.shape[1]}, backbone={self.backbone!r}, "
                f"{len(self.unreadable)} unreadable)")

    def save(self, path) -> None:
        """Write an ``.npz`` with arrays ``vectors``, ``paths`` (and ``labels`` when known)."""
        arrays = {"vectors": self.vectors, "paths": np.asarray(self.paths, dtype=str),
                  "backbone": np.asarray(self.backbone)}
        if self.labels is not None:
            arrays["labels"] = np.asarray(self.labels, dtype=str)
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path) -> "Embeddings":
        """Read an ``.npz`` written by ``save`` (or any npz with ``vectors`` and ``paths``)."""
        with np.load(path, allow_pickle=False) as z:
            return cls(vectors=z["vectors"].astype(np.float32), paths=[str(p) for p in z["paths"]],
                       labels=[str(x) for x in z["labels"]] if "labels" in z else None,
                       backbone=str(z["backbone"]) if "backbone" in z else "unknown", preprocessing={})


def _as_imageset(images) -> ImageSet:
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
    unreadable = pd.DataFrame(bad, columns=["path", "reason"]) if bad else _empty_unreadable()
    return ImageSet(root=Path("."), paths=paths, labels=None, hashes=hashes, unreadable=unreadable)


def _decode(path: str, size: int, resize: str):
    try:
        return read_image(path, size=size, resize=resize), None
    except ValueError as exc:
        return None, str(exc)


def _preprocessing(spec, resize: str) -> dict:
    """What turns a file into the network's input: part of the embedding cache key (with the kit's
    ``PREPROCESSING_VERSION``, read at call time, so bumping it starts a new cache namespace)."""
    from . import _config

    return {"input_size": spec.input_size, "resize": resize, "range": "0-1", "filter": "bilinear",
            "exif": True, "version": _config.PREPROCESSING_VERSION}


def embed(images, backbone=_bb.DEFAULT_BACKBONE, batch_size: int = 32, cache_dir=None, progress=None,
          resize: str = "center_crop", use_cache: bool = True, num_workers: int | None = None) -> Embeddings:
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
        Decoding threads (default: number of CPUs, at most 4).

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
                     "cache_dir": [str, os.PathLike, None]},
                    {"batch_size": batch_size, "resize": resize, "use_cache": use_cache, "num_workers": num_workers,
                     "progress": progress, "cache_dir": cache_dir}, "embed")
    batch_size = int(batch_size)
    t0 = time.perf_counter()
    imageset = _as_imageset(images)
    spec = _bb.get(backbone)
    if spec.source == "dlib":  # rows are faces found in the photos; num_workers are processes
        from .faces import _embed_imageset
        return _embed_imageset(imageset, spec, cache_dir=cache_dir, progress=progress, use_cache=use_cache,
                               num_workers=num_workers)
    preprocessing = _preprocessing(spec, resize)
    cache = EmbeddingCache(spec.cache_key, preprocessing, cache_dir) if use_cache else None

    n = len(imageset.paths)
    found = cache.get(set(imageset.hashes)) if cache is not None else {}
    todo = [i for i, h in enumerate(imageset.hashes) if h not in found]
    # identical files are embedded once
    first_of_hash = {}
    unique_todo = []
    for i in todo:
        h = imageset.hashes[i]
        if h not in first_of_hash:
            first_of_hash[h] = i
            unique_todo.append(i)
    report(progress, n - len(todo), n, "loading model" if unique_todo else "embedding")

    computed: dict = {}
    bad: dict = {}
    if unique_todo:
        model = _bb.load(spec)
        size = spec.input_size
        workers = num_workers or min(4, os.cpu_count() or 1)
        done = n - len(todo)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kit-decode") as pool:
            pending = deque()
            it = iter(unique_todo)
            ahead = batch_size * 3

            def fill():
                while len(pending) < ahead:
                    try:
                        i = next(it)
                    except StopIteration:
                        return
                    pending.append((i, pool.submit(_decode, imageset.paths[i], size, resize)))

            fill()
            while pending:
                batch_idx, batch_arr = [], []
                while pending and len(batch_idx) < batch_size:
                    i, fut = pending.popleft()
                    arr, reason = fut.result()
                    if arr is None:
                        bad[i] = reason
                        done += 1
                    else:
                        batch_idx.append(i)
                        batch_arr.append(arr)
                fill()  # keep decoding while the network runs
                if batch_idx:
                    x = np.stack(batch_arr).astype(np.float32) * np.float32(1.0 / 255.0)
                    feats = model.features(x)
                    norms = np.linalg.norm(feats, axis=1, keepdims=True)
                    feats = feats / np.maximum(norms, 1e-12)
                    keys = [imageset.hashes[i] for i in batch_idx]
                    if cache is not None:
                        cache.put(keys, feats)
                    computed.update(zip(keys, feats))
                    done += len(batch_idx)
                report(progress, min(done, n), n, "embedding")

    vectors_by_hash = {**found, **computed}
    rows, paths, labels, hashes = [], [], [], []
    bad_rows = []
    bad_hashes = {imageset.hashes[i]: reason for i, reason in bad.items()}
    for i, (p, h) in enumerate(zip(imageset.paths, imageset.hashes)):
        if h in vectors_by_hash:
            rows.append(vectors_by_hash[h])
            paths.append(p)
            hashes.append(h)
            if imageset.labels is not None:
                labels.append(imageset.labels[i])
        else:
            bad_rows.append((p, bad_hashes.get(h, "not embedded")))
    dim = spec.feature_dim or (len(rows[0]) if rows else 0)
    vectors = np.vstack(rows).astype(np.float32) if rows else np.zeros((0, dim), np.float32)
    unreadable = pd.concat([imageset.unreadable, pd.DataFrame(bad_rows, columns=["path", "reason"])],
                           ignore_index=True) if bad_rows else imageset.unreadable.copy()
    report(progress, n, n, "embedding")
    return Embeddings(
        vectors=vectors, paths=paths, labels=labels if imageset.labels is not None else None,
        backbone=spec.name, preprocessing=preprocessing, unreadable=unreadable, hashes=hashes,
        stats={"cached": n - len(todo), "computed": len(unique_todo) - len(bad),
               "seconds": time.perf_counter() - t0},
    )
