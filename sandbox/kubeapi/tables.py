"""Server-side printing: ``Table`` and ``PartialObjectMetadata`` responses, chosen by the ``Accept`` header.

``kubectl get`` asks for ``application/json;as=Table;v=v1;g=meta.k8s.io`` and prints the columns the server
sends: a custom resource's ``additionalPrinterColumns`` (evaluated with the JSONPath subset of
``sandbox.kubeapi.jsonpath``; ``date`` columns become ages, as kube-apiserver renders them) after ``Name``, or
``Name`` and ``Age`` when the CRD declares none; built-in kinds get the columns kube-apiserver prints for them.
Metadata-only clients ask for ``as=PartialObjectMetadata[List]``. Each row carries the object's metadata by
default (``includeObject=Metadata``), the whole object with ``Object``, nothing with ``None``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import ApiError, bad_request
from .jsonpath import JsonPathError, evaluate
from .registry import Registry, ResourceType

META_GROUP = "meta.k8s.io"
_NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "priority": 0,
    "description": "Name must be unique within a namespace.",
}
_AGE = {
    "name": "Age",
    "type": "date",
    "jsonPath": ".metadata.creationTimestamp",
    "description": "CreationTimestamp is the time the object was created.",
}
#: Columns of the built-in kinds, as kube-apiserver prints them (Name comes first for all but Event).
_BUILTIN_COLUMNS: dict[str, list[dict[str, Any]]] = {
    "Namespace": [{"name": "Status", "type": "string", "jsonPath": ".status.phase"}, _AGE],
    "Secret": [
        {"name": "Type", "type": "string", "jsonPath": ".type"},
        {"name": "Data", "type": "integer", "jsonPath": ".data", "count": True},
        _AGE,
    ],
    "ConfigMap": [{"name": "Data", "type": "integer", "jsonPath": ".data", "count": True}, _AGE],
    "CustomResourceDefinition": [
        {"name": "Created At", "type": "string", "format": "date", "jsonPath": ".metadata.creationTimestamp"}
    ],
    "Event": [
        {"name": "Last Seen", "type": "date", "jsonPath": ".lastTimestamp"},
        {"name": "Type", "type": "string", "jsonPath": ".type"},
        {"name": "Reason", "type": "string", "jsonPath": ".reason"},
        {"name": "Object", "type": "string", "jsonPath": ".involvedObject", "object_ref": True},
        {"name": "Message", "type": "string", "jsonPath": ".message"},
    ],
}


@dataclass(frozen=True)
class Rendering:
    """How to answer one read: ``object`` (as stored), ``table`` or ``partial`` (metadata only)."""

    kind: str
    version: str = "v1"

    @property
    def api_version(self) -> str:
        return f"{META_GROUP}/{self.version}"


OBJECT = Rendering("object")


def _params(part: str) -> tuple[str, dict[str, str]]:
    media, *rest = [p.strip() for p in part.split(";")]
    params = {}
    for p in rest:
        key, _, value = p.partition("=")
        params[key.strip().lower()] = value.strip()
    return media.lower(), params


def negotiate(accept: str | None, *, collection: bool) -> Rendering:
    """The first rendering of ``accept`` the emulator can produce; 406 when there is none."""
    if not accept:
        return OBJECT
    for part in accept.split(","):
        media, params = _params(part)
        if media not in ("application/json", "application/*", "*/*"):
            continue
        as_ = params.get("as")
        if as_ is None:
            return OBJECT
        if params.get("g") != META_GROUP or params.get("v") not in ("v1", "v1beta1"):
            continue
        if as_ == "Table":
            return Rendering("table", params["v"])
        if as_ in ("PartialObjectMetadata", "PartialObjectMetadataList") and (
            as_.endswith("List") == collection or not collection
        ):
            return Rendering("partial", params["v"])
    raise ApiError(
        406,
        "NotAcceptable",
        f"only the following media types are accepted: application/json, "
        f"application/json;as=Table;v=v1;g={META_GROUP}, "
        f"application/json;as=PartialObjectMetadata;v=v1;g={META_GROUP}",
    )


def human_duration(seconds: float) -> str:
    """kube-apiserver's age format (``45s``, ``3m12s``, ``4h5m``, ``2d3h``, ``3y20d``)."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes, hours = s // 60, s // 3600
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def _age(value: Any, now: datetime) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        then = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return "<invalid>"
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return human_duration((now - then).total_seconds())


def _string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _cell(column: dict[str, Any], obj: dict[str, Any], now: datetime) -> Any:
    try:
        values = evaluate(str(column.get("jsonPath", "")), obj)
    except JsonPathError:
        return None
    if column.get("count"):
        return len(values[0]) if values and isinstance(values[0], dict) else 0
    if not values or values[0] is None:
        return None
    value = values[0]
    if column.get("object_ref") and isinstance(value, dict):
        return f"{str(value.get('kind', '')).lower()}/{value.get('name', '')}"
    kind = column.get("type")
    if kind == "string":
        return _string(value)
    if kind == "date":
        return _age(value, now)
    if kind == "integer":
        return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    if kind == "number":
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    return None


def partial(obj: dict[str, Any], rendering: Rendering) -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": rendering.api_version, "metadata": obj.get("metadata", {})}


class Printer:
    """Builds Table rows for one resource type and version."""

    def __init__(
        self, registry: Registry, rtype: ResourceType, version: str, rendering: Rendering, include_object: str | None
    ) -> None:
        if include_object not in (None, "", "None", "Object", "Metadata"):
            raise bad_request(
                f'includeObject: Unsupported value: "{include_object}": supported values: "None", "Metadata", "Object"'
            )
        self.rendering = rendering
        self.include = include_object or "Metadata"
        if rtype.builtin:
            columns = list(_BUILTIN_COLUMNS.get(rtype.kind, [_AGE]))
        else:
            columns = registry.printer_columns(rtype, version) or [_AGE]
        self.columns = columns
        first = [] if rtype.kind == "Event" else [_NAME_COLUMN]
        self.definitions = [
            *first,
            *(
                {
                    "name": c["name"],
                    "type": "string" if c["type"] == "date" and rtype.builtin else c["type"],
                    "format": c.get("format", ""),
                    "description": c.get("description", ""),
                    "priority": int(c.get("priority", 0)),
                }
                for c in columns
            ),
        ]
        self._named = bool(first)

    def row(self, obj: dict[str, Any], now: datetime) -> dict[str, Any]:
        cells = [obj.get("metadata", {}).get("name", "")] if self._named else []
        cells += [_cell(c, obj, now) for c in self.columns]
        row: dict[str, Any] = {"cells": cells}
        if self.include == "Object":
            row["object"] = obj
        elif self.include == "Metadata":
            row["object"] = partial(obj, self.rendering)
        return row

    def table(self, objs: list[dict[str, Any]], metadata: dict[str, Any], *, headers: bool = True) -> dict[str, Any]:
        now = datetime.now(UTC)
        return {
            "kind": "Table",
            "apiVersion": self.rendering.api_version,
            "metadata": metadata,
            "columnDefinitions": self.definitions if headers else [],
            "rows": [self.row(o, now) for o in objs],
        }

    def watch_renderer(self) -> Callable[[dict[str, Any]], dict[str, Any]]:
        """One-row Tables for a watch stream: only the first event carries the column definitions."""
        first = [True]

        def render(obj: dict[str, Any]) -> dict[str, Any]:
            headers, first[0] = first[0], False
            meta = {"resourceVersion": obj.get("metadata", {}).get("resourceVersion", "")}
            return self.table([obj], meta, headers=headers)

        return render
