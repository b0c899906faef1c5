"""Field-level differences between rendered objects, and walks over their fields (for validation and reports)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from services.capi_renderer.domain import describe


def arg_fields(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """``(path, value)`` of every component-argument field (``extraArgs``, ``kubeletExtraArgs``)."""
    if isinstance(value, Mapping):
        for key, sub in value.items():
            sub_path = f"{path}.{key}" if path else str(key)
            if key in ("extraArgs", "kubeletExtraArgs"):
                yield sub_path, sub
            else:
                yield from arg_fields(sub, sub_path)
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            yield from arg_fields(sub, f"{path}[{i}]")


def walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Yield ``(path, leaf)`` for every scalar of a JSON-like value; paths look like ``spec.files[0].path``."""
    if isinstance(value, Mapping):
        for key, sub in value.items():
            yield from walk(sub, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for i, sub in enumerate(value):
            yield from walk(sub, f"{path}[{i}]")
    else:
        yield path, value


def diff(before: Any, after: Any, path: str = "") -> list[str]:
    """Paths at which two JSON-like values differ (added, removed or changed)."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        out: list[str] = []
        for key in sorted({*before, *after}, key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in before or key not in after:
                out.append(sub)
            else:
                out.extend(diff(before[key], after[key], sub))
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [p for i, (b, a) in enumerate(zip(before, after, strict=True)) for p in diff(b, a, f"{path}[{i}]")]
    return [] if before == after else [path]


def changed_objects(before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """``Kind/name`` → differing paths, for objects that differ, appear or disappear between two renders."""
    old = {describe(o): o for o in before}
    new = {describe(o): o for o in after}
    out: dict[str, list[str]] = {}
    for key in sorted({*old, *new}):
        if key not in old or key not in new:
            out[key] = [""]
        else:
            paths = diff(old[key], new[key])
            if paths:
                out[key] = paths
    return out
