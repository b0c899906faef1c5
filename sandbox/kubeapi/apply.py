"""Server-side apply and ``metadata.managedFields`` bookkeeping (operations Apply and Update).

Simplifications (documented in docs/sandbox-kubeapi.md): field sets are tracked per manager, operation and
subresource but not per API version; conflicts are detected on leaf fields only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.objects import now_timestamp

from . import fieldsets as fs
from .errors import apply_conflict
from .fieldsets import FieldPath, Schema

EntryKey = tuple[str, str, str]  # (manager, operation, subresource)


@dataclass
class Ownership:
    """The decoded managedFields of an object: field sets plus the entry they came from."""

    sets: dict[EntryKey, set[FieldPath]]
    entries: dict[EntryKey, dict[str, Any]]

    @classmethod
    def of(cls, obj: Mapping[str, Any] | None) -> Ownership:
        sets: dict[EntryKey, set[FieldPath]] = {}
        entries: dict[EntryKey, dict[str, Any]] = {}
        for entry in ((obj or {}).get("metadata") or {}).get("managedFields") or ():
            if not isinstance(entry, dict):
                continue
            key = (str(entry.get("manager", "")), str(entry.get("operation", "")), str(entry.get("subresource", "")))
            sets[key] = fs.decode(entry.get("fieldsV1") or {})
            entries[key] = entry

        return cls(sets, entries)

    def render(self, api_version: str, touched: set[EntryKey]) -> list[dict[str, Any]]:
        """managedFields entries; only entries in ``touched`` whose set changed get a new time."""
        out: list[dict[str, Any]] = []
        for key, paths in self.sets.items():
            if not paths:
                continue
            manager, operation, subresource = key
            old = self.entries.get(key)
            encoded = fs.encode(paths)
            if old is not None and old.get("fieldsV1") == encoded:
                out.append(old)
                continue
            if old is not None and key not in touched:
                out.append({**old, "fieldsV1": encoded})  # lost fields to another manager: keep its time
                continue
            entry: dict[str, Any] = {
                "manager": manager,
                "operation": operation,
                "apiVersion": api_version,
                "time": now_timestamp(),
                "fieldsType": "FieldsV1",
                "fieldsV1": encoded,
            }
            if subresource:
                entry["subresource"] = subresource
            out.append(entry)
        return out


def _with_managed(obj: dict[str, Any], managed: list[dict[str, Any]]) -> dict[str, Any]:
    md = dict(obj.get("metadata") or {})
    if managed:
        md["managedFields"] = managed
    else:
        md.pop("managedFields", None)
    return {**obj, "metadata": md}


def record_update(
    old: Mapping[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str,
    subresource: str,
    schema: Schema,
    api_version: str,
) -> dict[str, Any]:
    """``new`` with managedFields updated for an Update operation (create, PUT, merge/JSON patch)."""
    own = Ownership.of(old)
    new_fields = fs.fields_of(new, schema)
    old_fields = fs.fields_of(old, schema) if old is not None else set()
    changed = {p for p in new_fields if old is None or fs.get_path(old, p) != fs.get_path(new, p)}
    gone = old_fields - new_fields
    if not changed and not gone:
        return _with_managed(new, list(((old or {}).get("metadata") or {}).get("managedFields") or []))
    for owned in own.sets.values():
        owned.difference_update(changed, gone)
    key = (manager, "Update", subresource)
    own.sets.setdefault(key, set()).update(changed)
    return _with_managed(new, own.render(api_version, {key}))


def server_side_apply(
    live: dict[str, Any] | None,
    cfg: dict[str, Any],
    *,
    manager: str,
    force: bool,
    subresource: str,
    schema: Schema,
    api_version: str,
) -> dict[str, Any]:
    """The object after applying ``cfg`` as ``manager`` (before defaulting and validation)."""
    own = Ownership.of(live)
    key = (manager, "Apply", subresource)
    applied = fs.fields_of(cfg, schema)
    if live is None:
        own.sets[key] = applied
        md = {k: v for k, v in (cfg.get("metadata") or {}).items() if k != "managedFields"}
        return _with_managed({**cfg, "metadata": md}, own.render(api_version, {key}))
    conflicts: list[tuple[EntryKey, FieldPath]] = []
    for path in sorted(applied):
        if path[-1].startswith("k:"):
            continue
        current = fs.get_path(live, path)
        if current is fs.MISSING or current == fs.get_path(cfg, path):
            continue
        conflicts.extend((other, path) for other, paths in own.sets.items() if other != key and path in paths)
    if conflicts and not force:
        raise apply_conflict([(other[0], fs.render(path)) for other, path in conflicts])
    for other, path in conflicts:
        own.sets[other].discard(path)
    previous = own.sets.get(key, set())
    own.sets[key] = applied
    merged: dict[str, Any] = fs.merge(live, {k: v for k, v in cfg.items() if k != "metadata"}, schema)
    cfg_meta = cfg.get("metadata") or {}
    live_meta = {k: v for k, v in (live.get("metadata") or {}).items()}
    merged["metadata"] = fs.merge(live_meta, {k: cfg_meta[k] for k in fs.TRACKED_META if k in cfg_meta}, fs.META_SCHEMA)
    others = [paths for other, paths in own.sets.items() if other != key]
    removed: list[FieldPath] = []
    for path in sorted(previous - applied, key=len):
        if any(path[: len(r)] == r for r in removed) or fs.is_key_field(path):
            continue
        if not any(fs.covers(paths, path) for paths in others):
            merged = fs.delete_path(merged, path)
            removed.append(path)
    return _with_managed(merged, own.render(api_version, {key}))
