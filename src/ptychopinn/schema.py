"""Strict typed loading of YAML sections into frozen dataclasses (one-line errors).

YAML reads ``1e-3`` as a string; pydantic's lax mode coerces it to the field's ``float``.
Booleans are strict (``yes`` is not ``true``), numbers are finite and never booleans, unknown
keys are refused. Every error is a :class:`~ptychopinn.errors.PtychoInputError` naming the
file and ``section.field``.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from ptychopinn.errors import PtychoInputError

__all__ = ["build_section", "check_keys", "coerce", "default_of", "read_yaml"]


def read_yaml(path: str | os.PathLike, *, what: str = "file") -> Any:
    """Parse a YAML file (safe loader); missing file or bad syntax is one line."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise PtychoInputError(f"{what} not found", path=path)
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise PtychoInputError(f"invalid YAML ({' '.join(str(e).split())})", path=path) from None


def default_of(klass: type, name: str) -> Any:
    """The default of dataclass field ``name`` (so one class owns each default)."""
    f = next(f for f in dataclasses.fields(klass) if f.name == name)
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    raise TypeError(f"{klass.__name__}.{name} has no default")


def check_keys(values: Mapping, allowed: Iterable[str], *, section: str | None,
               source: object | None) -> None:
    """Refuse keys of ``values`` not in ``allowed`` (one line: section, keys, allowed)."""
    allowed = list(allowed)
    unknown = [k for k in values if k not in allowed]
    if unknown:
        where = f"in section '{section}'" if section else "at the top level"
        key = f"{section}.{unknown[0]}" if section else str(unknown[0])
        raise PtychoInputError(f"unknown key(s) {sorted(map(str, unknown))} {where}; "
                               f"allowed: {', '.join(allowed)}", path=source, key=key)


def build_section(klass: type, values: Any, *, section: str, source: object | None = None,
                  fixed: Mapping[str, Any] | None = None) -> Any:
    """Build dataclass ``klass`` from a YAML mapping, coercing each value to its field type.

    ``fixed`` fields are given by the caller (not allowed in ``values``). ``None`` or a missing
    section gives the defaults. ``__post_init__`` errors are reported against ``section``.
    """
    fixed = dict(fixed or {})
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise PtychoInputError(f"expected a mapping, got {type(values).__name__}", path=source,
                               key=section)
    hints = typing.get_type_hints(klass)
    names = [f.name for f in dataclasses.fields(klass) if f.init and f.name not in fixed]
    check_keys(values, names, section=section, source=source)
    kwargs = {k: coerce(hints[k], v, key=f"{section}.{k}", source=source)
              for k, v in values.items()}
    try:
        return klass(**kwargs, **fixed)
    except (TypeError, ValueError) as e:
        raise PtychoInputError(" ".join(str(e).split()), path=source, key=section) from None


def coerce(annotation: Any, value: Any, *, key: str, source: object | None = None) -> Any:
    """``value`` validated against ``annotation`` (pydantic lax mode, strict booleans)."""
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(_tighten(annotation)).validate_python(value)
    except ValidationError:
        raise PtychoInputError(f"expected {describe(annotation)}, got {value!r}", path=source,
                               key=key) from None


def describe(tp: Any) -> str:
    """Words for a type annotation: ``a number``, ``an integer or null``, ``one of a | b``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is bool:
        return "true/false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a finite number"
    if tp is str:
        return "a string"
    if tp is type(None):
        return "null"
    if origin is Literal:
        return "one of " + " | ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {describe(args[0]).removeprefix('a ').removeprefix('an ')}s"
        return "a list of " + ", ".join(describe(a) for a in args)
    if origin is Annotated:
        return describe(args[0])
    return getattr(tp, "__name__", str(tp))


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return value


def _tighten(tp: Any) -> Any:
    """Strict booleans; ints and floats refuse booleans; floats must be finite."""
    from pydantic import AllowInfNan, BeforeValidator, Strict

    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is bool:
        return Annotated[bool, Strict()]
    if tp is int:
        return Annotated[int, BeforeValidator(_not_bool)]
    if tp is float:
        return Annotated[float, BeforeValidator(_not_bool), AllowInfNan(False)]
    if origin in (typing.Union, types.UnionType):
        return typing.Union[tuple(_tighten(a) for a in args)]  # noqa: UP007
    if origin is tuple:
        return tuple[tuple(a if a is Ellipsis else _tighten(a) for a in args)]
    return tp
