"""Where the kit keeps its own files (models, embedding cache). Nothing is created at import."""
from __future__ import annotations

import os
from pathlib import Path

__version__ = "0.1.0"

# Version of how the kit turns a file into the pixels a network sees (decoding, EXIF rotation, mode conversion,
# resizing, scaling). Part of every embedding cache namespace: bump it whenever any of that changes, so cached
# vectors made the old way are never served again.
PREPROCESSING_VERSION = 1


def kit_home() -> Path:
    """The kit's home folder: ``$KIT_HOME``, else ``~/.cache/kit``. Not created here."""
    env = os.environ.get("KIT_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "kit"
