"""The ``finetuned`` kind: backbones made by ``kit.adapt``, folders under ``$KIT_HOME/models/finetuned/<name>``
holding a ``features/`` and a ``classifier/`` SavedModel, the trained weights and a ``kit-finetuned.json`` note
(written last: a folder without it is not a finished backbone); found again by name in every process."""
from __future__ import annotations

import json
from pathlib import Path

from .._utils.config import kit_home
from ._base import BackboneSpec, register_kind
from ._hub import SavedModelKind

FINETUNED_NOTE = "kit-finetuned.json"


def finetuned_root() -> Path:
    """Where ``kit.adapt`` saves fine-tuned backbones: ``$KIT_HOME/models/finetuned`` (not created here)."""
    return kit_home() / "models" / "finetuned"


def finetuned_note(folder: Path) -> dict | None:
    """The note ``kit.adapt`` writes last into a fine-tuned backbone's folder, or None when absent/unreadable."""
    try:
        note = json.loads((Path(folder) / FINETUNED_NOTE).read_text())
    except (OSError, ValueError):
        return None
    return note if isinstance(note, dict) and {"name", "base", "input_size", "feature_dim"} <= set(note) else None


def finetuned_spec(name: str) -> BackboneSpec | None:
    """The spec of the fine-tuned backbone ``name``, or None when there is none."""
    folder = finetuned_root() / name
    note = finetuned_note(folder)
    if note is None or note["name"] != name:
        return None
    params = note.get("params", {})
    how = ", ".join(f"{k}={v}" for k, v in params.items() if k in ("method", "trainable_blocks", "epochs_run"))
    return BackboneSpec(name=name, source="finetuned", handle=str(folder / "features"),
                        input_size=int(note["input_size"]), feature_dim=int(note["feature_dim"]),
                        classifier_handle=str(folder / "classifier"),
                        description=f"{note['base']} fine-tuned on {note.get('n_images', '?')} photos of "
                                    f"{note.get('images', '?')} ({how}), kit.adapt")


def finetuned_names() -> list:
    """Names of the fine-tuned backbones saved under ``finetuned_root()``, sorted."""
    root = finetuned_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".") and finetuned_note(p) is not None)


class FinetunedKind(SavedModelKind):
    """A backbone fine-tuned by ``kit.adapt``; its note records a digest of the trained weights."""

    source = "finetuned"

    def cache_key(self, spec):
        note = finetuned_note(Path(spec.handle).parent) or {}
        return f"finetuned:{spec.name}:{note.get('base', '?')}:{note.get('weights_digest', 'missing')}"


register_kind(FinetunedKind())
