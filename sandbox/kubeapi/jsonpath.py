"""The JSONPath subset of CRD ``additionalPrinterColumns``, evaluated as kube-apiserver's table printer does.

Supported: ``.field``, ``['key']`` / ``["key"]`` (with ``\\.`` escapes inside, as in
``.metadata.labels['cluster\\.x-k8s\\.io/cluster-name']``), ``[N]`` (negative counts from the end), ``[*]``
and ``[?(@.a.b=="x")]`` / ``!=`` filters with a string, number or boolean on the right. A path that does not
resolve gives no value (an empty cell), never an error: that is how the real server prints missing fields.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

Step = Callable[[list[Any]], list[Any]]

_NAME = re.compile(r"\.([A-Za-z0-9_$-]+)")
_QUOTED = re.compile(r"""\[\s*(['"])((?:\\.|(?!\1).)*)\1\s*\]""")
_INDEX = re.compile(r"\[\s*(-?\d+)\s*\]")
_WILD = re.compile(r"\[\s*\*\s*\]|\.\*")
_FILTER = re.compile(r"""\[\s*\?\(\s*@((?:\.[A-Za-z0-9_$-]+)+)\s*(==|!=)\s*(.+?)\s*\)\s*\]""")


class JsonPathError(ValueError):
    """The expression is outside the supported subset."""


def _field(name: str) -> Step:
    return lambda values: [v[name] for v in values if isinstance(v, dict) and name in v]


def _index(i: int) -> Step:
    return lambda values: [v[i] for v in values if isinstance(v, list) and -len(v) <= i < len(v)]


def _all(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if isinstance(v, list):
            out.extend(v)
        elif isinstance(v, dict):
            out.extend(v.values())
    return out


def _literal(text: str) -> Any:
    if text[:1] in ("'", '"') and text[-1:] == text[:1]:
        return text[1:-1]
    try:
        return json.loads(text)
    except ValueError as exc:
        raise JsonPathError(f"unsupported filter value {text!r}") from exc


def _filter(fields: str, op: str, literal: str) -> Step:
    keys = fields.strip(".").split(".")
    want = _literal(literal)

    def matches(item: Any) -> bool:
        for key in keys:
            if not isinstance(item, dict) or key not in item:
                return False
            item = item[key]
        return bool(item == want) == (op == "==")

    return lambda values: [item for item in _all(values) if matches(item)]


@lru_cache(maxsize=512)
def compile_path(expr: str) -> tuple[Step, ...]:
    """The steps of ``expr`` (``.a.b``, optionally wrapped in ``{}``); raises ``JsonPathError``."""
    text = expr.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    steps: list[Step] = []
    pos = 0
    while pos < len(text):
        if m := _WILD.match(text, pos):
            steps.append(_all)
        elif m := _NAME.match(text, pos):
            steps.append(_field(m.group(1)))
        elif m := _QUOTED.match(text, pos):
            steps.append(_field(re.sub(r"\\(.)", r"\1", m.group(2))))
        elif m := _INDEX.match(text, pos):
            steps.append(_index(int(m.group(1))))
        elif m := _FILTER.match(text, pos):
            steps.append(_filter(m.group(1), m.group(2), m.group(3)))
        else:
            raise JsonPathError(f"unsupported JSONPath {expr!r} at {text[pos:]!r}")
        pos = m.end()
    return tuple(steps)


def evaluate(expr: str, obj: Any) -> list[Any]:
    """Every value ``expr`` selects in ``obj`` (an empty list when nothing matches)."""
    values = [obj]
    for step in compile_path(expr):
        values = step(values)
    return values
