"""Where the kit keeps its own files (models, embedding cache). Nothing is created at import."""
from __future__ import annotations

import os
from pathlib import Path

__version__ = "0.1.0"


def kit_home() -> Path:
    """The kit's home folder: ``$KIT_HOME``, else ``~/.cache/kit``. Not created here."""
    env = os.environ.get("KIT_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "kit"
