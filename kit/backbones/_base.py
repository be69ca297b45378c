"""What every kind of embedder shares: the backbone spec, the kind interface, and the loaded model.

A *kind* (one per ``BackboneSpec.source``) knows only what is specific to it: how to load its model (once
per process, thread-safe, through :class:`Backbone`), its cache identity, and how a photo becomes one vector
(:class:`BatchKind`: decode to a fixed-size array, then a batch function) or any number of rows
(:class:`Kind` with ``many_rows=True``: faces, each row with its box). Hashing, the cache, de-duplication,
reassembly in input order, unreadable files and progress are done once, in :mod:`kit.embedding`.

A new kind subclasses :class:`Kind` (or :class:`BatchKind`) and calls :func:`register_kind`; a new backbone of
an existing kind is one ``BackboneSpec`` (``kit.backbones.register`` does that for a user's callable).
"""
from __future__ import annotations

import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .._utils.arrays import l2_normalize
from ..io import read_image


class BackboneUnavailableError(RuntimeError):
    """A backbone cannot be loaded here (no network for a URL handle, weights not installed...)."""


@dataclass(frozen=True)
class BackboneSpec:
    """What the kit knows about a backbone before loading it.

    ``source`` names its kind (``kit.backbones.kinds()``); ``params`` holds a kind's settings as sorted
    ``(name, value)`` pairs (they are part of the cache key). ``label_offset`` is 1 for TF-Slim classifiers whose
    1001 logits start with a background class.
    """

    name: str
    source: str
    handle: str
    input_size: int
    feature_dim: int | None
    classifier_handle: str | None = None
    label_offset: int = 0
    description: str = ""
    params: tuple = ()

    @property
    def can_classify(self) -> bool:
        return self.classifier_handle is not None

    @property
    def cache_key(self) -> str:
        """Identifies the model's weights (not the runtime that runs them) for the embedding cache."""
        return kind_of(self).cache_key(self)

    @property
    def options(self) -> dict:
        return dict(self.params)


@dataclass(frozen=True)
class EmbedOptions:
    """What a call to ``kit.embed`` asks of every kind: images per batch, how a photo becomes a square, and
    how many workers (decoding threads, or processes for kinds that run their own pool)."""

    batch_size: int = 32
    resize: str = "center_crop"
    num_workers: int | None = None
    tta: str | None = None  # "flip": the mean of the photo's and its mirror's vectors


class Kind:
    """One kind of embedder. Subclasses set ``source`` and override what differs from these defaults.

    ``compute`` yields ``(index, record, reason)`` for each photo of ``paths`` (any order): ``record`` a float32
    array stored in the cache as it is, or None with the reason the photo could not be embedded. ``rows`` turns
    a record back into vectors (and, for ``many_rows`` kinds, one table row per vector with the columns
    ``table_columns``); a record with no rows is reported as unreadable with ``empty_reason``.
    """

    source = ""
    many_rows = False
    stage = "embedding"
    empty_reason = "nothing found"
    table_columns: tuple = ()
    stat_names: dict = {}
    default_stats: dict = {}
    supports_tta = False  # test-time augmentation (EmbedOptions.tta)

    def cache_key(self, spec: BackboneSpec) -> str:
        extra = "".join(f":{k}={v}" for k, v in spec.params)
        return f"{spec.source}:{spec.handle}{extra}"

    def preprocessing(self, spec: BackboneSpec, options: EmbedOptions) -> dict:
        raise NotImplementedError

    def offline(self, spec: BackboneSpec) -> bool:
        """True when the backbone can be used right now without the network."""
        return True

    def load(self, spec: BackboneSpec, classifier: bool):
        """The function ``float32 images (N, S, S, 3) in [0, 1] -> (N, D)`` (or logits when ``classifier``);
        called once per process by :class:`Backbone`."""
        if classifier:
            raise ValueError(f"backbone {spec.name!r} has no classification head; choose one with can_classify=True "
                             f"in kit.backbones.available()")
        raise ValueError(f"backbone {spec.name!r} ({spec.source}) has no batch model to load")

    def compute(self, spec, paths, options: EmbedOptions, progress, stats: dict) -> Iterator:
        raise NotImplementedError

    def record_ok(self, spec, record: np.ndarray) -> bool:
        """Whether a record read from the cache can be one this kind wrote: finite, of ``record_size`` values
        (when known). A damaged entry (cut, overwritten) fails and is computed again."""
        size = self.record_size(spec)
        return (size is None or record.size == size) and bool(np.isfinite(record).all())

    def record_size(self, spec) -> int | None:
        """The number of values in one record (None: not fixed)."""
        return spec.feature_dim

    def rows(self, spec, record: np.ndarray):
        """``(vectors (m, D), table rows or None)`` of one cached record."""
        return record.reshape(1, -1), None

    def finalize(self, spec, vectors: np.ndarray) -> np.ndarray:
        """A last step on the whole matrix (after the cache), e.g. a PCA; identity by default."""
        return vectors


def _decode(kind, spec, path, options):
    try:
        return kind.decode(spec, path, options), None
    except ValueError as exc:
        return None, str(exc)


class BatchKind(Kind):
    """A kind with one vector per photo: ``decode`` (in a thread pool a few batches ahead, Pillow releases the
    GIL) then ``features`` on a batch, L2-normalised unless ``normalize`` is False."""

    normalize = True
    supports_tta = True

    def preprocessing(self, spec, options) -> dict:
        from .._utils import config as _config

        out = {"input_size": spec.input_size, "resize": options.resize, "range": "0-1", "filter": "bilinear",
               "exif": True, "version": _config.PREPROCESSING_VERSION}
        if options.tta:
            out["tta"] = options.tta  # its own cache namespace; without TTA the key is unchanged
        return out

    def _vectors(self, spec, batch: np.ndarray, options: EmbedOptions) -> np.ndarray:
        feats = np.asarray(self.features(spec, batch), dtype=np.float32)
        if options.tta == "flip":  # the mean of the photo's and its mirror's (normalised) vectors
            mirror = np.asarray(self.features(spec, np.ascontiguousarray(batch[:, :, ::-1])), dtype=np.float32)
            feats = (l2_normalize(feats) + l2_normalize(mirror)) / 2 if self.normalize else (feats + mirror) / 2
        return l2_normalize(feats) if self.normalize else feats

    def decode(self, spec, path: str, options: EmbedOptions) -> np.ndarray:
        """The photo as the batch function takes it (default: RGB uint8, ``input_size`` square)."""
        return read_image(path, size=spec.input_size, resize=options.resize)

    def features(self, spec, batch: np.ndarray) -> np.ndarray:
        """Vectors of a stacked batch of decoded photos (default: the loaded model on [0, 1] floats)."""
        x = batch.astype(np.float32) * np.float32(1.0 / 255.0)
        return load_backbone(spec).features(x)

    def compute(self, spec, paths, options, progress, stats) -> Iterator:
        n = len(paths)
        bs = int(options.batch_size)
        workers = options.num_workers or decode_threads()
        stats["decode_threads"] = workers
        done = 0
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kit-decode") as pool:
            pending = deque()
            it = iter(range(n))

            def fill():
                while len(pending) < bs * 3:
                    i = next(it, None)
                    if i is None:
                        return
                    pending.append((i, pool.submit(_decode, self, spec, paths[i], options)))

            fill()
            while pending:
                idx, arrays = [], []
                while pending and len(idx) < bs:
                    i, fut = pending.popleft()
                    arr, reason = fut.result()
                    if arr is None:
                        done += 1
                        yield i, None, reason
                    else:
                        idx.append(i)
                        arrays.append(arr)
                fill()  # keep decoding while the batch runs
                if idx:
                    feats = self._vectors(spec, np.stack(arrays), options)
                    for i, f in zip(idx, feats):
                        yield i, f, None
                    done += len(idx)
                progress(done, n, self.stage)


def decode_threads() -> int:
    """Default decoding threads: the cores, at most 4."""
    return min(4, os.cpu_count() or 1)


KINDS: dict = {}


def register_kind(kind: Kind) -> Kind:
    """Make ``kind`` the embedder of every spec whose ``source`` is ``kind.source``."""
    if not isinstance(kind, Kind) or not kind.source:
        raise TypeError(f"kind={kind!r} must be a kit.backbones.Kind instance with a non-empty source")
    KINDS[kind.source] = kind
    return kind


def kind_of(spec: BackboneSpec) -> Kind:
    try:
        return KINDS[spec.source]
    except KeyError:
        raise ValueError(f"backbone {spec.name!r} has source={spec.source!r}, which no registered kind handles "
                         f"({', '.join(sorted(KINDS))}); import the module that registers it") from None


class Backbone:
    """A loaded backbone. Call ``features(x)`` or ``logits(x)`` on float32 images in [0, 1] (N, S, S, 3);
    the model is loaded on first use, once (thread-safe)."""

    def __init__(self, spec: BackboneSpec):
        self.spec = spec
        self._features = None
        self._logits = None
        self._lock = threading.Lock()

    @property
    def input_size(self) -> int:
        return self.spec.input_size

    def _get(self, classifier: bool):
        attr = "_logits" if classifier else "_features"
        with self._lock:
            if getattr(self, attr) is None:
                setattr(self, attr, kind_of(self.spec).load(self.spec, classifier))
            return getattr(self, attr)

    def features(self, images: np.ndarray) -> np.ndarray:
        """Feature vectors (N, D) float32, not normalised."""
        return np.asarray(self._get(False)(np.asarray(images, dtype=np.float32)), dtype=np.float32)

    def logits(self, images: np.ndarray) -> np.ndarray:
        """Class scores (N, C); for TF-Slim classifiers column 0 is background (``spec.label_offset``)."""
        return np.asarray(self._get(True)(np.asarray(images, dtype=np.float32)), dtype=np.float32)


_LOADED: dict = {}
_LOADED_LOCK = threading.Lock()


def load_backbone(spec: BackboneSpec) -> Backbone:
    """The process-wide shared :class:`Backbone` of ``spec``."""
    key = (spec.source, spec.cache_key, spec.input_size)
    with _LOADED_LOCK:
        if key not in _LOADED:
            _LOADED[key] = Backbone(spec)
        return _LOADED[key]


def is_loaded(spec: BackboneSpec) -> bool:
    """Whether this process has already built the feature network of ``spec`` (a worker that keeps its model)."""
    b = _LOADED.get((spec.source, spec.cache_key, spec.input_size))
    return b is not None and b._features is not None
