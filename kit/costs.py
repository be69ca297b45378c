"""How long a step will take on this machine, from what the same step cost here before.

Long steps (embedding photos with a backbone, projecting with t-SNE or UMAP) record what they cost: a fixed part
(``startup``: loading a model, compiling) and a time per item, measured on this machine. :func:`estimate` turns
them into a forecast for N items, which the dashboard and the CLI show before they start. The record is a small
JSON file in the kit's home (``$KIT_HOME/costs.json``), written atomically; the kit writes nothing else here.

Examples
--------
>>> from kit import costs
>>> costs.estimate("embed", "no-such-backbone", 1000) is None   # never measured: no forecast
True
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

from ._utils.config import kit_home
from ._utils.files import atomic_file

COSTS_FILE = "costs.json"
_LOCK = threading.Lock()


def _path() -> Path:
    return kit_home() / COSTS_FILE


def _read() -> dict:
    try:
        data = json.loads(_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class Estimate:
    """A forecast: ``seconds`` in all, from ``per_item`` seconds per item and a fixed ``startup`` (0 when the
    model is already loaded in this process), measured on this machine over ``measured_items`` items."""

    seconds: float
    per_item: float
    startup: float
    measured_items: int

    @property
    def text(self) -> str:
        s = self.seconds
        when = f"{s:.0f} s" if s < 90 else f"{s / 60:.0f} min" if s < 5400 else f"{s / 3600:.1f} h"
        return f"about {when} (measured here: {self.per_item * 1000:.1f} ms per item)"


def record(step: str, key: str, n_items: int, seconds: float, startup: float = 0.0) -> None:
    """Remember that ``step`` (e.g. ``"embed"``) with ``key`` (e.g. the backbone) took ``seconds`` for ``n_items``
    items after a fixed ``startup``. Later records are averaged with earlier ones, weighted by items."""
    if n_items <= 0 or seconds < 0:
        return
    name = f"{step}:{key}"
    with _LOCK:
        data = _read()
        old = data.get(name, {})
        items = int(old.get("items", 0))
        keep = min(items, 10 * n_items)  # older measurements fade as new ones come in
        per_item = (old.get("per_item", 0.0) * keep + seconds) / (keep + n_items)
        entry = {"per_item": per_item, "items": keep + n_items,
                 "startup": startup if startup > 0 else old.get("startup", 0.0)}
        data[name] = entry
        path = _path()
        try:
            with atomic_file(path, "w", prefix=".costs-") as f:
                json.dump(data, f, indent=1)
        except OSError:  # a read-only home: no forecast later, never a failure now
            pass


def estimate(step: str, key: str, n_items: int, include_startup: bool = True) -> Estimate | None:
    """The forecast for ``n_items`` items of ``step``/``key``, or None when it was never measured here."""
    entry = _read().get(f"{step}:{key}")
    if not entry or n_items < 0:
        return None
    startup = float(entry.get("startup", 0.0)) if include_startup else 0.0
    per_item = float(entry["per_item"])
    return Estimate(seconds=startup + per_item * n_items, per_item=per_item, startup=startup,
                    measured_items=int(entry.get("items", 0)))
