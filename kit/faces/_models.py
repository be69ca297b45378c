"""Where dlib's face models live and whether they are installed: checked without importing dlib, the models
package (its ``__init__`` needs ``pkg_resources``) or ``kit.faces`` (which brings in scikit-learn), so listing
the backbones stays cheap."""
from __future__ import annotations

import importlib.util
from pathlib import Path

INSTALL = "pip install dlib-bin==20.0.1.post1 face-recognition-models==0.3.0"
MODEL_FILES = {
    "landmarks5": "shape_predictor_5_face_landmarks.dat",
    "descriptor": "dlib_face_recognition_resnet_model_v1.dat",
    "cnn": "mmod_human_face_detector.dat",
}


def model_dir() -> Path:
    """The folder of ``face_recognition_models``' model files, found without importing the package
    (its ``__init__`` needs ``pkg_resources``)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the face models are not installed; run `{INSTALL}`")
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    missing = [f for f in MODEL_FILES.values() if not (folder / f).is_file()]
    if missing:
        raise ImportError(f"face_recognition_models at {folder} lacks {missing}; reinstall it: `{INSTALL}`")
    return folder


def is_available() -> bool:
    """True when dlib and the model files are installed (checked without importing dlib)."""
    if importlib.util.find_spec("dlib") is None:
        return False
    try:
        model_dir()
    except ImportError:
        return False
    return True
