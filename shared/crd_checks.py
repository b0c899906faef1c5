"""The value constraints of one CRD schema node (enum, pattern, format, bounds, sizes), compiled to closures.

``shared.crd_schema`` compiles each schema node once; the checks here are the part of a node that
looks at one value only, each a closure returning a ``FieldError`` or None, with the API server's messages.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from typing import Any

from shared.crd_meta import FieldError, show

#: One constraint: (value, path) to an error, or None when the value satisfies it.
Check = Callable[[Any, str], FieldError | None]

_DATE_TIME = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_SIZES = {  # keyword: (applies to, is a minimum, message)
    "minLength": (str, True, "should be at least {n} chars long"),
    "maxLength": (str, False, "may not be longer than {n}"),
    "minItems": (list, True, "should have at least {n} items"),
    "maxItems": (list, False, "must have at most {n} items"),
    "minProperties": (dict, True, "should have at least {n} properties"),
    "maxProperties": (dict, False, "should have at most {n} properties"),
}


def _is_base64(v: str) -> bool:
    try:
        return base64.b64decode(v, validate=True) is not None
    except (binascii.Error, ValueError):
        return False


def _format_ok(fmt: str) -> Callable[[Any], bool] | None:
    if fmt in _INT_RANGES:
        lo, hi = _INT_RANGES[fmt]
        return lambda v: not isinstance(v, int | float) or lo <= v <= hi
    if fmt == "date-time":
        return lambda v: not isinstance(v, str) or bool(_DATE_TIME.fullmatch(v))
    if fmt == "byte":
        return lambda v: not isinstance(v, str) or _is_base64(v)
    return None  # other formats are not checked (documented)


def scalar_checks(s: Mapping[str, Any]) -> list[Check]:
    """Value constraints of one schema node, each a small closure returning an error or None."""
    checks: list[Check] = []
    if "enum" in s:
        allowed = list(s["enum"])
        shown = ", ".join(show(a) for a in allowed)
        checks.append(
            lambda v, p: (
                None
                if v in allowed
                else FieldError(p, "enum", f"Unsupported value: {show(v)}: supported values: {shown}")
            )
        )
    if "pattern" in s:
        rx = re.compile(s["pattern"])
        checks.append(
            lambda v, p: (
                None
                if not isinstance(v, str) or rx.search(v)
                else FieldError(p, "pattern", f"Invalid value: {show(v)}: {p} in body should match '{rx.pattern}'")
            )
        )
    fmt_ok = _format_ok(str(s.get("format", "")))
    if fmt_ok is not None:
        fmt = s["format"]
        checks.append(
            lambda v, p: (
                None
                if fmt_ok(v)
                else FieldError(p, "format", f"Invalid value: {show(v)}: {p} in body must be of type {fmt}")
            )
        )
    for key, exclusive_key, word in (
        ("minimum", "exclusiveMinimum", "greater than"),
        ("maximum", "exclusiveMaximum", "less than"),
    ):
        if key in s:
            checks.append(_bound_check(key, s[key], bool(s.get(exclusive_key)), word))
    checks.extend(_size_check(key, int(s[key])) for key in _SIZES if key in s)
    return checks


def _bound_check(rule: str, bound: float, exclusive: bool, word: str) -> Check:
    rel = word if exclusive else f"{word} or equal to"

    def check(v: Any, p: str) -> FieldError | None:
        if isinstance(v, bool) or not isinstance(v, int | float):
            return None
        low, high = (v, bound) if rule == "minimum" else (bound, v)
        if high < low or (not exclusive and high == low):
            return None
        return FieldError(p, rule, f"Invalid value: {show(v)}: {p} in body should be {rel} {bound}")

    return check


def _size_check(rule: str, n: int) -> Check:
    kind, is_min, text = _SIZES[rule]

    def check(v: Any, p: str) -> FieldError | None:
        if isinstance(v, kind) and ((len(v) < n) if is_min else (len(v) > n)):
            return FieldError(p, rule, f"Invalid value: {len(v)}: {p} in body {text.format(n=n)}")
        return None

    return check
