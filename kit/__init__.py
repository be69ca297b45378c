"""kit: an image clustering exploration kit.

Embed a folder of photos with pretrained CNN backbones, cluster, score and compare.
Importing ``kit`` is cheap: TensorFlow loads only when a backbone is first used.
"""
from ._config import __version__, kit_home
from . import backbones, cache, io, progress
from .embed import Embeddings, embed
from .io import ImageSet, load_folder, read_image

__all__ = [
    "__version__",
    "Embeddings",
    "ImageSet",
    "backbones",
    "cache",
    "embed",
    "io",
    "kit_home",
    "load_folder",
    "progress",
    "read_image",
]
