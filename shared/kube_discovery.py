"""Kubernetes discovery, as the adapter needs it: which REST path serves an (apiVersion, kind)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote


@dataclass(frozen=True)
class ApiResource:
    """What discovery says about one kind in one group version."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool
    subresources: frozenset[str]

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name:
            base += f"/{quote(name, safe='')}"
        if subresource:
            base += f"/{subresource}"
        return base


def parse_resource_list(api_version: str, data: Mapping[str, Any]) -> dict[str, ApiResource]:
    """Kinds of one ``APIResourceList`` (``/api/v1`` or ``/apis/<group>/<version>``), subresources attached."""
    entries = [e for e in data.get("resources") or [] if isinstance(e, Mapping)]
    subresources: dict[str, set[str]] = {}
    for entry in entries:
        parent, slash, sub = str(entry.get("name", "")).partition("/")
        if slash:
            subresources.setdefault(parent, set()).add(sub)
    found: dict[str, ApiResource] = {}
    for entry in entries:
        name = str(entry.get("name", ""))
        if "/" in name or "kind" not in entry:
            continue
        found[str(entry["kind"])] = ApiResource(
            api_version=api_version,
            kind=str(entry["kind"]),
            plural=name,
            namespaced=bool(entry.get("namespaced")),
            subresources=frozenset(subresources.get(name, ())),
        )
    return found
