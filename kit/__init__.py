"""kit: an image clustering exploration kit.

Embed a folder of photos with pretrained CNN backbones, estimate K, cluster, score and compare.
Importing ``kit`` is cheap: TensorFlow loads only when a backbone is first used.
"""
from ._config import __version__, kit_home
from . import backbones, cache, cluster, datasets, export, faces, formats, inspect, io, k, metrics, plot, progress, project
from ._compare import compare
from .embed import Embeddings, embed
from .io import ImageSet, load_folder, read_image

__all__ = [
    "__version__",
    "Embeddings",
    "ImageSet",
    "backbones",
    "cache",
    "cluster",
    "compare",
    "datasets",
    "export",
    "faces",
    "inspect",
    "plot",
    "embed",
    "formats",
    "io",
    "k",
    "kit_home",
    "load_folder",
    "metrics",
    "progress",
    "project",
    "read_image",
]
