"""Faces: detect, align and describe faces offline with dlib, then cluster people.

Private modules by concern: ``_detection`` (the three steps and their settings), ``_pool`` (many photos over
worker processes), ``_crops``, ``_clustering``, ``_scoring``, ``_models`` (the model files); the ``dlib_face``
kind of the shared embedding pipeline is in ``kit.backbones``. Every public name is available here, loaded on
first use (so ``import kit.faces`` stays cheap).

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
from .._utils.lazy import attach

_WHERE = {
    **dict.fromkeys(("NO_FACE", "DETECTORS", "KEEP", "DESCRIPTOR_DIM", "CHIP_SIZE", "CHIP_PADDING", "BOX_FIELDS",
                    "RECORD_SIZE", "FACE_COLUMNS", "FaceSettings", "detect", "whole_image_box", "align", "describe",
                    "faces_in_image", "crop_features"), "._detection"),
    **dict.fromkeys(("POOL_MIN_PHOTOS", "POOL_IDLE_SECONDS", "shutdown_pool", "processes_for",
                    "map_photos"), "._pool"),
    "embed": "._api",
    **dict.fromkeys(("face_crops", "face_chip", "crop_names", "crops_by_cluster"), "._crops"),
    **dict.fromkeys(("pair_distances", "DlibChineseWhispers", "FACE_METHODS", "AUTO_MAX_AGGLOMERATIVE",
                    "FaceClustering", "cluster_faces", "cosine_distance_of"), "._clustering"),
    **dict.fromkeys(("NO_FACE_POLICIES", "score"), "._scoring"),
    **dict.fromkeys(("INSTALL", "MODEL_FILES", "model_dir", "is_available"), "._models"),
    # the dlib_face backbone kind lives with the other kinds
    "backbone": ("..backbones", "face_backbone"),
    "FaceBackboneSpec": "..backbones",
    "settings_of": ("..backbones", "face_settings"),
    "DlibFaceKind": "..backbones",
}
__getattr__, __dir__, __all__ = attach(__name__, _WHERE)
