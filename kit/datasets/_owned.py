"""Folders the kit makes for itself under ``kit_home()/datasets``: a ``.complete`` marker tells them apart from
anything else, and only what the kit made (its own temporary folders) is ever deleted."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .._utils.config import kit_home
from .._utils.files import atomic_write

_MARKER = ".complete"


def _not_ours(folder: Path, what: str) -> ValueError:
    return ValueError(f"{str(folder)!r} already exists but was not made by {what} (it has no {_MARKER} marker); "
                      f"the kit never deletes a folder it did not create: move or delete it yourself, then retry")


def _build_once(name: str, build) -> Path:
    """``kit_home()/datasets/<name>``, made by ``build(tmp_folder) -> info`` the first time: built in a temporary
    sibling, marked complete, then renamed into place, so an interrupted run never leaves a half folder.

    Only the temporary folder this call made is ever deleted. A folder already at ``<name>`` without the
    ``.complete`` marker was not made here (the rename is atomic and carries the marker), so it is refused with
    ``ValueError`` and left as it is."""
    final = kit_home() / "datasets" / name
    if (final / _MARKER).is_file():
        return final
    if final.exists() or final.is_symlink():
        raise _not_ours(final, "the kit's sample builder")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{name}-tmp-"))
    try:
        os.chmod(tmp, 0o755)
        info = build(tmp)
        atomic_write(tmp / _MARKER, json.dumps(info).encode())
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / _MARKER).is_file():  # not another process's finished build: leave it alone
                raise _not_ours(final, "the kit's sample builder") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # our own temporary folder (already renamed away on success)
    return final

