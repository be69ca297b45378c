"""A user's own backbone: a Python callable on image batches (``kit.backbones.register``).

``fn`` maps a float32 batch ``(N, S, S, 3)`` in [0, 1] to an ``(N, D)`` array. The cache key is the name, the
function's qualified name, a digest of its code and the ``version`` the user gives: bump ``version`` when the
weights behind an unchanged function change.
"""
from __future__ import annotations

import hashlib

from ._base import BackboneSpec, BatchKind, register_kind

_FUNCTIONS: dict = {}  # spec.handle -> the callable (in this process)


def _digest(fn) -> str:
    code = getattr(fn, "__code__", None) or getattr(getattr(fn, "__call__", None), "__code__", None)
    if code is None:
        return "nocode"
    h = hashlib.blake2b(digest_size=8)
    h.update(code.co_code)
    h.update(repr(code.co_consts).encode())
    return h.hexdigest()


class CallableKind(BatchKind):
    source = "callable"

    def load(self, spec, classifier):
        if classifier:
            return super().load(spec, classifier)
        try:
            return _FUNCTIONS[spec.handle]
        except KeyError:
            raise ValueError(f"backbone {spec.name!r} was registered in another process; call "
                             f"kit.backbones.register({spec.name!r}, fn, ...) in this one (or list its module in "
                             f"KIT_PLUGINS)") from None

    def offline(self, spec):
        return spec.handle in _FUNCTIONS


register_kind(CallableKind())


def user_function(handle: str):
    """The callable registered under ``handle`` in this process (None when it was registered elsewhere)."""
    return _FUNCTIONS.get(handle)


def remember_function(handle: str, fn) -> None:
    """Register ``fn`` under ``handle`` in this process (a worker process receiving a user's backbone)."""
    _FUNCTIONS.setdefault(handle, fn)


def callable_spec(name: str, fn, input_size: int, feature_dim: int | None, description: str, version) -> BackboneSpec:
    qual = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"
    handle = f"{name}:{qual}:{_digest(fn)}:{version}"
    _FUNCTIONS[handle] = fn
    return BackboneSpec(name=name, source="callable", handle=handle, input_size=int(input_size),
                        feature_dim=feature_dim, description=description or f"user callable {qual}")
