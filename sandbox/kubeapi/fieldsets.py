"""Field paths for server-side apply: compute the set of fields a value sets, read/delete by path, merge.

A path is a tuple of FieldsV1 segments: ``f:<name>`` (object field), ``k:<json keys>`` (item of a list whose
``x-kubernetes-list-type`` is ``map``), ``v:<json value>`` (item of a ``set`` list). Other lists and
``x-kubernetes-map-type: atomic`` objects are single leaves, as in the real structured-merge-diff.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

FieldPath = tuple[str, ...]
Schema = Mapping[str, Any] | None
MISSING: Any = object()
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
META_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
        "finalizers": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
        "ownerReferences": {
            "type": "array",
            "items": {"type": "object"},
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["uid"],
        },
    },
}
TRACKED_META = ("labels", "annotations", "finalizers", "ownerReferences")


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def child(schema: Schema, key: str) -> Schema:
    if not schema:
        return None
    found = (schema.get("properties") or {}).get(key)
    if found is None and isinstance(schema.get("additionalProperties"), dict):
        found = schema["additionalProperties"]
    return found if isinstance(found, Mapping) else None


def items(schema: Schema) -> Schema:
    found = schema.get("items") if schema else None
    return found if isinstance(found, Mapping) else None


def _list_kind(schema: Schema) -> tuple[str, tuple[str, ...]]:
    if not schema:
        return "atomic", ()
    kind = schema.get("x-kubernetes-list-type") or "atomic"
    return kind, tuple(schema.get("x-kubernetes-list-map-keys") or ())


def _atomic_map(schema: Schema) -> bool:
    return bool(schema) and schema is not None and schema.get("x-kubernetes-map-type") == "atomic"


def _item_key(item: Any, keys: tuple[str, ...]) -> str | None:
    if not isinstance(item, dict) or not any(k in item for k in keys):
        return None
    return "k:" + json.dumps({k: item[k] for k in keys if k in item}, separators=(",", ":"))


def _collect(value: Any, schema: Schema, prefix: FieldPath, out: set[FieldPath]) -> None:
    if isinstance(value, dict) and value and not _atomic_map(schema):
        for key, val in value.items():
            _collect(val, child(schema, key), (*prefix, f"f:{key}"), out)
        return
    if isinstance(value, list) and value:
        kind, keys = _list_kind(schema)
        if kind == "map" and keys and all(_item_key(i, keys) for i in value):
            for item in value:
                path = (*prefix, str(_item_key(item, keys)))
                out.add(path)
                for key, val in item.items():
                    _collect(val, child(items(schema), key), (*path, f"f:{key}"), out)
            return
        if kind == "set":
            out.update((*prefix, f"v:{_dump(item)}") for item in value)
            return
    if prefix:
        out.add(prefix)


def fields_of(obj: Mapping[str, Any], schema: Schema) -> set[FieldPath]:
    """Every field ``obj`` sets (metadata: only labels, annotations, finalizers and ownerReferences)."""
    out: set[FieldPath] = set()
    for key, val in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        if key == "metadata":
            md = val if isinstance(val, dict) else {}
            for mk in TRACKED_META:
                if mk in md:
                    _collect(md[mk], child(META_SCHEMA, mk), ("f:metadata", f"f:{mk}"), out)
            continue
        _collect(val, child(schema, key), (f"f:{key}",), out)
    return out


def _find(node: Any, seg: str) -> tuple[int | str, Any]:
    """(index or key, value) of ``seg`` inside ``node``; value is MISSING when absent."""
    if seg.startswith("f:"):
        name = seg[2:]
        return name, node.get(name, MISSING) if isinstance(node, dict) else MISSING
    if not isinstance(node, list):
        return -1, MISSING
    if seg.startswith("k:"):
        want = json.loads(seg[2:])
        for i, item in enumerate(node):
            if isinstance(item, dict) and all(item.get(k, MISSING) == v for k, v in want.items()):
                return i, item
        return -1, MISSING
    want_value = json.loads(seg[2:])
    for i, item in enumerate(node):
        if item == want_value:
            return i, item
    return -1, MISSING


def get_path(obj: Any, path: FieldPath) -> Any:
    node = obj
    for seg in path:
        _, node = _find(node, seg)
        if node is MISSING:
            return MISSING
    return node


def delete_path(obj: Any, path: FieldPath) -> Any:
    """A copy of ``obj`` without the field at ``path`` (containers along the path are copied, others shared)."""
    if not path:
        return obj
    where, found = _find(obj, path[0])
    if found is MISSING:
        return obj
    replacement = MISSING if len(path) == 1 else delete_path(found, path[1:])
    if replacement is found:
        return obj
    if isinstance(obj, dict):
        out_d = dict(obj)
        if replacement is MISSING:
            del out_d[str(where)]
        else:
            out_d[str(where)] = replacement
        return out_d
    out_l = list(obj)
    if replacement is MISSING:
        del out_l[int(where)]
    else:
        out_l[int(where)] = replacement
    return out_l


def merge(live: Any, cfg: Any, schema: Schema) -> Any:
    """Apply ``cfg`` on top of ``live``: objects field by field, map-lists by key, sets by union, rest replaced."""
    if isinstance(live, dict) and isinstance(cfg, dict) and not _atomic_map(schema):
        out = dict(live)
        for key, val in cfg.items():
            out[key] = merge(live[key], val, child(schema, key)) if key in live else val
        return out
    if isinstance(live, list) and isinstance(cfg, list):
        kind, keys = _list_kind(schema)
        if kind == "map" and keys:
            merged = list(live)
            index = {_item_key(item, keys): i for i, item in enumerate(merged)}
            for item in cfg:
                pos = index.get(_item_key(item, keys))
                if pos is None:
                    merged.append(item)
                else:
                    merged[pos] = merge(merged[pos], item, items(schema))
            return merged
        if kind == "set":
            return list(live) + [item for item in cfg if item not in live]
    return cfg


def encode(paths: Iterable[FieldPath]) -> dict[str, Any]:
    """FieldsV1 JSON for a set of paths (a path with owned children gets a ``"."`` entry)."""
    root: dict[str, Any] = {}
    ordered = sorted(paths)
    for path in ordered:
        node = root
        for seg in path:
            node = node.setdefault(seg, {})
    for path in ordered:
        node = root
        for seg in path:
            node = node[seg]
        if node and "." not in node:
            node["."] = {}
    return root


def decode(fields: Mapping[str, Any], prefix: FieldPath = ()) -> set[FieldPath]:
    out: set[FieldPath] = set()
    for seg, sub in fields.items():
        if seg == ".":
            out.add(prefix)
        elif isinstance(sub, Mapping) and sub:
            out |= decode(sub, (*prefix, seg))
        else:
            out.add((*prefix, seg))
    return out


def render(path: FieldPath) -> str:
    """Human form used in conflict messages, e.g. ``.spec.items[name="a"].value``."""
    out = ""
    for seg in path:
        if seg.startswith("f:"):
            out += f".{seg[2:]}"
        elif seg.startswith("k:"):
            keys = json.loads(seg[2:])
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in keys.items()) + "]"
        else:
            out += f"[={seg[2:]}]"
    return out


def is_key_field(path: FieldPath) -> bool:
    """True for a key field of a map-list item: it lives and dies with the item."""
    return len(path) >= 2 and path[-2].startswith("k:") and path[-1][2:] in json.loads(path[-2][2:])


def covers(paths: Iterable[FieldPath], path: FieldPath) -> bool:
    """True when ``paths`` contains ``path`` or anything below it."""
    n = len(path)
    return any(p[:n] == path for p in paths)
