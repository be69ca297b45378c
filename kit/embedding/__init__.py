"""Embedding: photos to vectors with any backbone, through one pipeline and one cache.

* :func:`embed` -- a folder, an ``ImageSet`` or a list of paths to :class:`Embeddings` (N x D float32 rows in
  input order, paths, labels, backbone, preprocessing, the unreadable files with their reasons);
* :func:`run` -- the one routine every backbone kind goes through (hash files, look up the cache, embed only
  what is missing, each identical file once, atomic writes, progress); ``embed`` and ``kit.scale`` call it;
* :func:`embed_views` -- embeddings of augmented views (mirror, squash, pad, zoomed crops, grey) for SCAN;
* the embedding cache (:class:`EmbeddingCache`, :func:`cache_info`, :func:`clear_cache`), keyed by file content,
  backbone weights, preprocessing and the kit's preprocessing version.

Examples
--------
>>> import kit
>>> emb = kit.embed(kit.datasets.clothing(), backbone="efficientnet_lite0")     # doctest: +SKIP
>>> emb.vectors.shape                                                              # doctest: +SKIP
(500, 1280)
"""
from ._cache import CACHE_FORMAT, CacheNotWrittenWarning, EmbeddingCache, default_cache_dir
from ._cache import clear as clear_cache
from ._cache import info as cache_info
from ._embed import ENGINES, embed
from ._pipeline import Embeddings, cost_key, run
from ._views import DEFAULT_VIEWS, VIEWS, ZOOM, embed_views, view_image

__all__ = ["CACHE_FORMAT", "CacheNotWrittenWarning", "cost_key", "DEFAULT_VIEWS", "ENGINES", "VIEWS", "ZOOM", "EmbeddingCache", "Embeddings",
           "cache_info", "clear_cache", "default_cache_dir", "embed", "embed_views", "run", "view_image"]
