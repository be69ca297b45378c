"""Faces: detect, align and describe faces offline with dlib, then cluster people.

Modules by concern: ``detection`` (the three steps and their settings), ``pool`` (many photos over worker
processes), ``embedder`` (the ``dlib_face`` kind of the shared embedding pipeline), ``crops``, ``clustering``,
``scoring``. Every public name is available here, loaded on first use (so ``import kit.faces`` stays cheap).

The pipeline per photo (every step is public, ``embed`` composes them):

1. ``detect`` -- dlib's HOG detector (``upsample`` times 2x upsampling, default 1: finds faces down to
   about 40 px) or its CNN (mmod) detector; or, with ``crop_as_face=True``, no detection: the whole
   image is the face box (for folders of face crops);
2. ``align`` -- the 5-point landmark model and ``dlib.get_face_chip`` (150 x 150, padding 0.25);
3. ``describe`` -- dlib's ResNet: one 128-d descriptor per face.

``kit.embed(images, backbone="dlib_face")`` runs it (spread over processes: dlib uses one thread per
call) and returns ordinary ``Embeddings`` whose rows are faces: ``paths`` names the source photo,
``faces`` is a table (path, face index, box, detector score...), and photos without a face are listed in
``unreadable`` with the reason ``"no face found"`` (``stats["no_face"]`` counts them; ``stats`` also has
``photos``, ``faces`` and ``processes``). ``backbone(...)`` makes a backbone with other detector settings;
the settings are part of the cache key.

Descriptors are kept as dlib returns them, **not** L2-normalised (their norms are about 1.3-1.7), so
dlib's Euclidean distance threshold keeps its meaning (same person below about 0.6). The cosine kNN
methods of ``kit.cluster`` normalise internally.

Models come from the PyPI packages ``dlib-bin`` (prebuilt dlib) and ``face-recognition-models`` (the
model files), both offline. Nothing is imported from dlib until a face is processed.

Examples
--------
>>> import kit
>>> from kit import faces
>>> emb = kit.embed("photos/", backbone="dlib_face")          # doctest: +SKIP
>>> labels = faces.cluster_faces(emb)                       # doctest: +SKIP
>>> faces.score(emb, labels)["bcubed_f"]                    # doctest: +SKIP
>>> crops = faces.crops_by_cluster(emb, labels)             # doctest: +SKIP
"""
import importlib

_WHERE = {
    "NO_FACE": "detection",
    "DETECTORS": "detection",
    "KEEP": "detection",
    "DESCRIPTOR_DIM": "detection",
    "CHIP_SIZE": "detection",
    "CHIP_PADDING": "detection",
    "FACE_COLUMNS": "detection",
    "FaceSettings": "detection",
    "detect": "detection",
    "whole_image_box": "detection",
    "align": "detection",
    "describe": "detection",
    "faces_in_image": "detection",
    "crop_features": "detection",
    "POOL_MIN_PHOTOS": "pool",
    "POOL_IDLE_SECONDS": "pool",
    "shutdown_pool": "pool",
    "processes_for": "pool",
    "map_photos": "pool",
    "FaceBackboneSpec": "embedder",
    "backbone": "embedder",
    "settings_of": "embedder",
    "DlibFaceKind": "embedder",
    "embed": "api",
    "face_crops": "crops",
    "face_chip": "crops",
    "crop_names": "crops",
    "crops_by_cluster": "crops",
    "pair_distances": "clustering",
    "DlibChineseWhispers": "clustering",
    "FACE_METHODS": "clustering",
    "AUTO_MAX_AGGLOMERATIVE": "clustering",
    "FaceClustering": "clustering",
    "cluster_faces": "clustering",
    "NO_FACE_POLICIES": "scoring",
    "score": "scoring",
    "INSTALL": ".._facemodels",
    "MODEL_FILES": ".._facemodels",
    "is_available": ".._facemodels",
    "model_dir": ".._facemodels",
}

__all__ = sorted(_WHERE)


def __getattr__(name):
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'kit.faces' has no attribute {name!r}")
    module = importlib.import_module(f".{where}" if not where.startswith("..") else f"kit.{where[2:]}",
                                     __name__ if not where.startswith("..") else None)
    return getattr(module, name)


def __dir__():
    return sorted(set(globals()) | set(__all__))
