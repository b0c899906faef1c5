"""Label and field selectors: parsed once per request into predicates over stored objects."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import bad_request
from .registry import ResourceType

Predicate = Callable[[Mapping[str, Any]], bool]
_PREFIX = r"(?:[a-z0-9]([-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
_KEY = _PREFIX + r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_EXISTS = re.compile(rf"^(?P<not>!)?\s*(?P<key>{_KEY})$")
_EQUALS = re.compile(rf"^(?P<key>{_KEY})\s*(?P<op>==|=|!=)\s*(?P<value>{_VALUE})$")
_SET = re.compile(rf"^(?P<key>{_KEY})\s+(?P<op>in|notin)\s+\((?P<values>[^()]*)\)$")
_VALUE_ONLY = re.compile(rf"^{_VALUE}$")


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _requirement(part: str) -> Callable[[Mapping[str, str]], bool]:
    m = _EQUALS.match(part)
    if m:
        key, value = m.group("key"), m.group("value")
        if m.group("op") == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    m = _SET.match(part)
    if m:
        key = m.group("key")
        values = frozenset(v.strip() for v in m.group("values").split(","))
        if not all(_VALUE_ONLY.match(v) for v in values):
            raise bad_request(f"unable to parse requirement: invalid label value in {part!r}")
        if m.group("op") == "in":
            return lambda labels: key in labels and labels[key] in values
        return lambda labels: labels.get(key) not in values
    m = _EXISTS.match(part)
    if m:
        key = m.group("key")
        if m.group("not"):
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise bad_request(f"unable to parse requirement: {part!r} is not a valid label selector requirement")


def label_selector(text: str | None) -> Predicate | None:
    """A predicate over objects, or None when the selector selects everything."""
    if not text or not text.strip():
        return None
    reqs = [_requirement(p) for p in _split_top_level(text) if p]

    def match(obj: Mapping[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(req(labels) for req in reqs)

    return match


def _field_getter(rtype: ResourceType, field: str) -> Callable[[Mapping[str, Any]], str]:
    if field == "metadata.name":
        return lambda o: str((o.get("metadata") or {}).get("name", ""))
    if field == "metadata.namespace" and rtype.namespaced:
        return lambda o: str((o.get("metadata") or {}).get("namespace", ""))
    if rtype.builtin and rtype.kind == "Secret" and field == "type":
        return lambda o: str(o.get("type", ""))
    if rtype.builtin and rtype.kind == "Namespace" and field == "status.phase":
        return lambda o: str((o.get("status") or {}).get("phase", ""))
    raise bad_request(f"field label not supported: {field}")


def field_selector(rtype: ResourceType, text: str | None) -> Predicate | None:
    """``metadata.name`` and ``metadata.namespace`` (plus a few built-in fields) with ``=``, ``==``, ``!=``."""
    if not text or not text.strip():
        return None
    reqs: list[tuple[Callable[[Mapping[str, Any]], str], bool, str]] = []
    for part in _split_top_level(text):
        m = re.match(r"^([A-Za-z0-9_.\-]+)\s*(==|=|!=)\s*(.*)$", part)
        if not m:
            raise bad_request(f"invalid selector: {part!r}; can't understand it")
        reqs.append((_field_getter(rtype, m.group(1)), m.group(2) == "!=", m.group(3)))

    def match(obj: Mapping[str, Any]) -> bool:
        return all((get(obj) != value) if negate else (get(obj) == value) for get, negate, value in reqs)

    return match


def selected_name(text: str | None) -> str | None:
    """The one object name a field selector requires (``metadata.name=x`` among its terms), else None.

    Lets the store look the object up, and route a watch only that object's events, instead of testing the
    selector against every object; the selector itself is still applied to what is found.
    """
    if not text:
        return None
    for part in _split_top_level(text):
        m = re.match(r"^metadata\.name\s*(==|=)\s*(.*)$", part)
        if m:
            return m.group(2)
    return None


def both(first: Predicate | None, second: Predicate | None) -> Predicate | None:
    if first is None or second is None:
        return first or second
    return lambda obj: first(obj) and second(obj)
