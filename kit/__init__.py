"""kit: an image clustering exploration kit.

Embed a folder of photos with pretrained backbones, estimate K, cluster, score and compare. One package or module
per capability, each with a public interface over private modules:

``io`` (finding and decoding photos), ``backbones`` (the registry and every kind of backbone), ``embedding``
(``embed`` and its cache), ``cluster`` (estimators and the method registry, SCAN, auto), ``k`` (how many
groups), ``metrics`` (scores), ``project`` (PCA, t-SNE, UMAP), ``inspect`` (labels, CAM, guided backprop),
``plot`` (figures), ``curate`` (duplicates, outliers, hand edits), ``export``, ``faces``, ``adapt``
(fine-tuning), ``scale`` (embedding stores, Dask, out-of-core methods), ``datasets``, ``formats`` (MS1M files),
``costs`` (time forecasts), ``progress``, ``search`` (photos by text with CLIP/SigLIP backbones; ``kit.embed_text``)
and ``cli``.

``kit.cluster_photos(folder)`` is the recommended pipeline from photos to clusters without labels (the recommended
backbones, then ``kit.cluster.auto``); ``kit.compare`` scores backbones and methods side by side.

Importing ``kit`` is cheap: packages load on first use (``kit.cluster.KMeans`` brings in scikit-learn, a network
brings in TensorFlow), so a dashboard served from the caches starts without them.
"""
import importlib

from ._utils.config import __version__, kit_home
from ._utils.digest import code_digest
from .embedding import Embeddings, embed
from .io import ImageSet, load_folder, read_image

_SUBMODULES = ("adapt", "backbones", "cli", "cluster", "costs", "curate", "datasets", "embedding", "export", "faces",
               "formats", "inspect", "io", "k", "metrics", "plot", "progress", "project", "scale", "search")

__all__ = ["__version__", "RECOMMENDED_BACKBONES", "Embeddings", "ImageSet", "cluster_photos", "cluster_photos_forecast", "code_digest",
           "compare", "embed", "embed_text", "kit_home", "load_folder",
           "read_image", *_SUBMODULES]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name == "embed_text":
        from .search import embed_text

        return embed_text
    if name == "compare":
        from ._compare import compare

        return compare
    if name in ("cluster_photos", "cluster_photos_forecast", "RECOMMENDED_BACKBONES"):
        from . import _photos

        return getattr(_photos, name)
    raise AttributeError(f"module 'kit' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
