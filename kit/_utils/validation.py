"""Parameter validation shared by every public estimator and function of the kit (scikit-learn style).

Each parameter gets a list of constraints; a value is valid when it satisfies at least one of them:

- ``Interval(Integral, 1, None, closed="left")``: an int (Python or numpy, never a bool) in a range;
  ``Interval(Real, 0, 1, closed="both")``: a float or an int (never a bool, never NaN) in a range;
- ``StrOptions({"a", "b"})``: one of these strings; ``Options(Integral, {2, 3})``: one of these values;
- ``"boolean"`` (``bool`` or ``numpy.bool_``), ``"array-like"``, ``"random_state"`` (an int in
  ``[0, 2**32 - 1]``, a ``numpy.random.RandomState`` or None), ``None``, ``callable``, or any class
  (``str``, ``dict``, ``os.PathLike``...) meaning "an instance of it".

``validate_params(constraints, params, caller)`` checks a dict of values; estimators declare a class-level
``_parameter_constraints`` dict and call ``self._validate_params()`` first thing in ``fit`` (``__init__``
only stores), so a bad parameter is refused before any work is done. The error,
:class:`InvalidParameterError` (both a ``ValueError`` and a ``TypeError``), names the parameter, the
caller, what is allowed and the value received::

    The 'n_clusters' parameter of KMeans must be an int in the range [1, inf); got True (bool).

Only the standard library and numpy are imported here: ``import kit`` stays cheap.
"""
from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

__all__ = ["InvalidParameterError", "Interval", "StrOptions", "Options", "validate_params",
           "ParamsValidationMixin", "make_constraint"]


class InvalidParameterError(ValueError, TypeError):
    """A parameter has a wrong type or value. Subclasses both ValueError and TypeError (as in scikit-learn),
    so callers catching either keep working."""


def _is_bool(value) -> bool:
    return isinstance(value, (bool, np.bool_))


def _type_name(t) -> str:
    module = getattr(t, "__module__", "builtins")
    qualname = getattr(t, "__qualname__", str(t))
    return qualname if module == "builtins" else f"{module}.{qualname}"


def _short_repr(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Constraint:
    def is_satisfied_by(self, value) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def __str__(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


class Interval(_Constraint):
    """A number of ``type`` (``numbers.Integral`` or ``numbers.Real``) between ``left`` and ``right``.

    ``None`` as a bound means unbounded. ``closed`` is ``"left"``, ``"right"``, ``"both"`` or ``"neither"``.
    Booleans are never numbers here; NaN is never in a Real interval. ``Interval(Real, ...)`` also accepts ints.
    """

    _CLOSED = ("left", "right", "both", "neither")

    def __init__(self, type, left, right, *, closed):
        if type not in (Integral, Real):
            raise TypeError(f"Interval type={type!r} must be numbers.Integral or numbers.Real")
        if closed not in self._CLOSED:
            raise ValueError(f"Interval closed={closed!r} must be one of {self._CLOSED}")
        for side, bound in (("left", left), ("right", right)):
            if bound is not None and (_is_bool(bound) or not isinstance(bound, Real)):
                raise TypeError(f"Interval {side}={bound!r} must be a number or None")
            if type is Integral and bound is not None and not isinstance(bound, Integral):
                raise TypeError(f"Interval {side}={bound!r} must be an int for an Integral interval")
        if left is not None and right is not None and right < left:
            raise ValueError(f"Interval right={right!r} is below left={left!r}")
        self.type, self.left, self.right, self.closed = type, left, right, closed

    def __contains__(self, value) -> bool:
        if isinstance(value, Real) and not isinstance(value, Integral) and math.isnan(value):
            return False
        if self.left is not None:
            if self.closed in ("left", "both") and value < self.left:
                return False
            if self.closed in ("right", "neither") and value <= self.left:
                return False
        if self.right is not None:
            if self.closed in ("right", "both") and value > self.right:
                return False
            if self.closed in ("left", "neither") and value >= self.right:
                return False
        return True

    def is_satisfied_by(self, value) -> bool:
        if _is_bool(value) or not isinstance(value, self.type):
            return False
        return value in self

    def __str__(self) -> str:
        kind = "an int" if self.type is Integral else "a float"
        lb = "[" if self.closed in ("left", "both") else "("
        rb = "]" if self.closed in ("right", "both") else ")"
        left = "-inf" if self.left is None else self.left
        right = "inf" if self.right is None else self.right
        if self.left is None:
            lb = "("
        if self.right is None:
            rb = ")"
        return f"{kind} in the range {lb}{left}, {right}{rb}"


class Options(_Constraint):
    """One of a finite set of values of a given type (bools are not numbers)."""

    def __init__(self, type, options):
        self.type = type
        self.options = frozenset(options)
        for option in self.options:
            if not isinstance(option, type):
                raise TypeError(f"Options: option {option!r} is not an instance of {_type_name(type)}")

    def is_satisfied_by(self, value) -> bool:
        if _is_bool(value) and self.type is not bool:
            return False
        if not isinstance(value, self.type):
            return False
        try:
            return value in self.options
        except TypeError:  # unhashable
            return False

    def _kind(self) -> str:
        return {Integral: "an int", Real: "a float", str: "a str"}.get(self.type, f"a {_type_name(self.type)}")

    def __str__(self) -> str:
        listed = ", ".join(repr(o) for o in sorted(self.options, key=repr))
        return f"{self._kind()} among {{{listed}}}"


class StrOptions(Options):
    """One of a finite set of strings; the error lists them, sorted."""

    def __init__(self, options):
        super().__init__(str, options)

    def __str__(self) -> str:
        listed = ", ".join(repr(o) for o in sorted(self.options))
        return f"a str among {{{listed}}}"


class _InstancesOf(_Constraint):
    def __init__(self, type):
        self.type = type

    def is_satisfied_by(self, value) -> bool:
        return isinstance(value, self.type)

    def __str__(self) -> str:
        return f"an instance of {_type_name(self.type)!r}"


class _NoneConstraint(_Constraint):
    def is_satisfied_by(self, value) -> bool:
        return value is None

    def __str__(self) -> str:
        return "None"


class _Booleans(_Constraint):
    def is_satisfied_by(self, value) -> bool:
        return _is_bool(value)

    def __str__(self) -> str:
        return "a bool (True or False)"


class _Callables(_Constraint):
    def is_satisfied_by(self, value) -> bool:
        return callable(value)

    def __str__(self) -> str:
        return "a callable"


class _ArrayLikes(_Constraint):
    def is_satisfied_by(self, value) -> bool:
        if isinstance(value, (str, bytes)) or np.isscalar(value):
            return False
        if isinstance(value, np.ndarray):
            return value.ndim > 0
        return hasattr(value, "__len__") or hasattr(value, "shape") or hasattr(value, "__array__")

    def __str__(self) -> str:
        return "an array-like"


class _NoValidation(_Constraint):
    def is_satisfied_by(self, value) -> bool:
        return True

    def __str__(self) -> str:
        return "anything"


_RANDOM_STATE = (Interval(Integral, 0, 2**32 - 1, closed="both"), _InstancesOf(np.random.RandomState),
                 _NoneConstraint())


def make_constraint(constraint) -> list:
    """The constraint objects a user-level constraint stands for (``"random_state"`` stands for three)."""
    if isinstance(constraint, _Constraint):
        return [constraint]
    if constraint is None:
        return [_NoneConstraint()]
    if isinstance(constraint, str):
        table = {"boolean": [_Booleans()], "array-like": [_ArrayLikes()], "callable": [_Callables()],
                 "random_state": list(_RANDOM_STATE), "no_validation": [_NoValidation()]}
        if constraint not in table:
            raise ValueError(f"unknown constraint {constraint!r}; use one of {sorted(table)} or a constraint object")
        return table[constraint]
    if constraint is callable:
        return [_Callables()]
    if isinstance(constraint, type):
        return [_InstancesOf(constraint)]
    raise TypeError(f"unknown constraint {constraint!r}")


def _describe(constraints: list) -> str:
    texts = [str(c) for c in constraints]
    # "None" reads best last, as in "an int in the range [1, inf) or None"
    texts = [t for t in texts if t != "None"] + [t for t in texts if t == "None"]
    if len(texts) == 1:
        return texts[0]
    return f"{', '.join(texts[:-1])} or {texts[-1]}"


def validate_params(constraints: dict, params: dict, caller: str) -> None:
    """Check every value of ``params`` against ``constraints[name]`` (a list; any one may be satisfied).

    Raises
    ------
    InvalidParameterError
        ``The 'k' parameter of k_distance must be an int in the range [1, inf); got 0 (int).``
    KeyError
        When ``params`` holds a name ``constraints`` does not know (a mistake in the kit, not the user's).
    """
    for name, value in params.items():
        if name not in constraints:
            raise KeyError(f"{caller}: no constraint declared for parameter {name!r}")
        options = [c for entry in constraints[name] for c in make_constraint(entry)]
        if any(c.is_satisfied_by(value) for c in options):
            continue
        raise InvalidParameterError(
            f"The {name!r} parameter of {caller} must be {_describe(options)}; "
            f"got {_short_repr(value)} ({type(value).__name__}).")


def check_exclusive(caller: str, **params) -> None:
    """Refuse two (or more) parameters given together, naming all of them, e.g. ``n_clusters`` and
    ``distance_threshold`` of ``Agglomerative``: give exactly one, set the others to None."""
    given = {name: value for name, value in params.items() if value is not None}
    if len(given) > 1:
        both = " and ".join(f"{name}={_short_repr(value)}" for name, value in given.items())
        names = " or ".join(repr(n) for n in params)
        raise InvalidParameterError(f"{caller} takes {names}, not both; got {both}. "
                                    f"Set all but one of them to None.")


class ParamsValidationMixin:
    """For estimators: declare ``_parameter_constraints = {"name": [constraint, ...]}`` on the class and call
    ``self._validate_params()`` at the top of ``fit`` (before touching ``X``)."""

    _parameter_constraints: dict = {}

    def _validate_params(self) -> None:
        params = {name: getattr(self, name) for name in self._parameter_constraints}
        validate_params(self._parameter_constraints, params, caller=type(self).__name__)
