"""kit: an image clustering exploration kit.

Embed a folder of photos with pretrained CNN backbones, estimate K, cluster, score and compare.
Importing ``kit`` is cheap: submodules load on first use (``kit.cluster`` brings in scikit-learn, a backbone
brings in TensorFlow), so a dashboard served from the caches starts without them.
"""
import importlib

from ._config import __version__, kit_home
from .embed import Embeddings, embed
from .io import ImageSet, load_folder, read_image

_SUBMODULES = ("adapt", "backbones", "cache", "cluster", "costs", "curate", "datasets", "export", "faces", "formats",
               "inspect", "io", "k",
               "metrics", "plot", "progress", "project", "scale", "scale_cluster", "scale_graph", "store", "views")

__all__ = ["__version__", "Embeddings", "ImageSet", "compare", "embed", "kit_home", "load_folder", "read_image",
           *_SUBMODULES]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name == "compare":
        from ._compare import compare

        return compare
    raise AttributeError(f"module 'kit' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
