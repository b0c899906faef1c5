"""Reading untrusted JSON documents into plain Python values, refusing hostile input with located problems.

A file an operator edits (the inventory) or a request an outsider sends may be oversized, not UTF-8,
nested absurdly deep, carry the same key twice, or hold ``NaN``; each of these is reported as a
:class:`Problem` with a JSON path and a rule name instead of an exception escaping. The JSON path
syntax (``$.hosts[2].host_ip``) is shared by every validator that reports problems.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

#: No inventory or request needs more nesting than this; deeper input is refused before validation.
MAX_DEPTH = 32
_IDENT = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")


@dataclass(frozen=True)
class Problem:
    """One validation failure: where (a JSON path), which rule, and a message without secrets."""

    path: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path} [{self.rule}]: {self.message}"


def json_path(loc: Iterable[object], root: str = "$") -> str:
    """``("hosts", 2, "host_ip")`` → ``$.hosts[2].host_ip`` (odd keys are quoted: ``$['a b']``)."""
    out = root
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        elif isinstance(part, str) and _IDENT.match(part):
            out += f".{part}"
        else:
            out += f"[{json.dumps(str(part)[:64])}]"
    return out


def short(value: object, limit: int = 64) -> str:
    """A bounded ``repr`` for messages: hostile input must not blow up an error text."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Object(dict[str, Any]):
    """A decoded JSON object that remembers keys it saw more than once."""

    duplicates: tuple[str, ...] = ()


def _pairs(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        dups: list[str] = []
        for key, _ in pairs:
            if key in seen and key not in dups:
                dups.append(key)
            seen.add(key)
        obj.duplicates = tuple(dups)
    return obj


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class JsonRefused(Exception):
    """The document could not be read at all; ``problems`` says why."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = tuple(problems)


def decode_text(data: bytes, *, max_bytes: int, what: str = "document") -> str:
    """UTF-8 text of ``data`` (a leading BOM is allowed) within ``max_bytes``; else ``JsonRefused``."""
    if len(data) > max_bytes:
        raise JsonRefused([Problem("$", "file-size", f"{what} is {len(data):,} bytes; the limit is {max_bytes:,}")])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise JsonRefused([Problem("$", "encoding", f"{what} is not UTF-8 (byte {exc.start}: {exc.reason})")]) from None


def loads(data: bytes | str, *, max_bytes: int, what: str = "document") -> tuple[Any, list[Problem]]:
    """Parse untrusted JSON: the value plus structural problems (duplicate keys, depth).

    Raises :class:`JsonRefused` when nothing usable could be read (size, encoding, syntax, nesting).
    """
    text = data if isinstance(data, str) else decode_text(data, max_bytes=max_bytes, what=what)
    if isinstance(data, str) and len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise JsonRefused([Problem("$", "file-size", f"{what} exceeds the limit of {max_bytes:,} bytes")])
    try:
        value = json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise JsonRefused([Problem("$", "json-syntax", f"line {exc.lineno} column {exc.colno}: {exc.msg}")]) from None
    except RecursionError:
        raise JsonRefused([Problem("$", "max-depth", f"nesting deeper than {MAX_DEPTH} levels")]) from None
    except ValueError as exc:  # NaN/Infinity, or integers beyond Python's digit limit
        raise JsonRefused([Problem("$", "json-syntax", str(exc)[:200])]) from None
    return value, structure_problems(value)


def structure_problems(value: Any, *, max_depth: int = MAX_DEPTH) -> list[Problem]:
    """Duplicate keys and excessive nesting anywhere in an already decoded value (iterative walk)."""
    problems: list[Problem] = []
    stack: list[tuple[Any, tuple[object, ...]]] = [(value, ())]
    while stack:
        node, loc = stack.pop()
        if len(loc) > max_depth:
            problems.append(Problem(json_path(loc), "max-depth", f"nesting deeper than {max_depth} levels"))
            continue
        if isinstance(node, dict):
            for key in getattr(node, "duplicates", ()):
                problems.append(Problem(json_path((*loc, key)), "duplicate-key", f"key {short(key)} appears twice"))
            stack.extend((child, (*loc, key)) for key, child in node.items())
        elif isinstance(node, list):
            stack.extend((child, (*loc, i)) for i, child in enumerate(node))
    problems.sort(key=lambda p: p.path)
    return problems
