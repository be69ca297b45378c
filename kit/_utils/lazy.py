"""Packages whose public names live in private modules that are imported on first use (so that ``import kit.x``
stays cheap: scikit-learn, Dask or dlib load only when a name that needs them is used)."""
from __future__ import annotations

import importlib
import sys


def attach(package: str, where: dict) -> tuple:
    """``(__getattr__, __dir__, __all__)`` for ``package``: ``where`` maps each public name to the module that
    defines it (relative to ``package``, such as ``"._estimators"``), or to ``(module, name there)``."""

    def __getattr__(name):
        target = where.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attr = target if isinstance(target, tuple) else (target, name)
        value = getattr(importlib.import_module(module, package), attr)
        setattr(sys.modules[package], name, value)  # found directly from now on
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__, sorted(where)
