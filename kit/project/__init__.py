"""Projections to 2-D/3-D: PCA, t-SNE (openTSNE) and UMAP, as fitted models that place new points, cached on
disk by the embeddings' content and every parameter.

Examples
--------
>>> import kit
>>> p = kit.project.project(emb.vectors, method="umap", random_state=0)     # doctest: +SKIP
>>> p.coords.shape, p.from_cache                                             # doctest: +SKIP
"""
from ._project import (METHODS, PROJECTION_CACHE_FORMAT, Projection, clear_cache, default_cache_dir, project,
                       trustworthiness)

__all__ = ["METHODS", "PROJECTION_CACHE_FORMAT", "Projection", "clear_cache", "default_cache_dir", "project",
           "trustworthiness"]
