"""The resource types the emulator serves: built-in core kinds plus every kind of the registered CRDs.

It answers "which type is at /apis/<group>/<version>/<plural>" and produces the discovery documents.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.crd_schema import CrdSchemas

CRD_GROUP = "apiextensions.k8s.io"
_ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key putting the version Kubernetes prefers first (v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > other)."""
    m = _VERSION.match(version)
    if not m:
        return (3, 0, 0, version)
    stage = {"": 0, "beta": 1, "alpha": 2}[m.group(2) or ""]
    return (stage, -int(m.group(1)), -int(m.group(3) or 0), version)


@dataclass(frozen=True)
class ResourceType:
    """A REST resource (all its served versions share one stored object per name)."""

    group: str
    kind: str
    plural: str
    singular: str
    list_kind: str
    namespaced: bool
    versions: tuple[str, ...]
    storage_version: str
    status_versions: frozenset[str]
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    builtin: bool = False
    has_generation: bool = True
    verbs: tuple[str, ...] = _ALL_VERBS

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version

    def has_status(self, version: str) -> bool:
        return version in self.status_versions

    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


_BUILTINS = (
    ResourceType(
        "",
        "Namespace",
        "namespaces",
        "namespace",
        "NamespaceList",
        False,
        ("v1",),
        "v1",
        frozenset({"v1"}),
        ("ns",),
        (),
        True,
        False,
        ("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    ResourceType(
        "", "Secret", "secrets", "secret", "SecretList", True, ("v1",), "v1", frozenset(), (), (), True, False
    ),
    ResourceType(
        "",
        "ConfigMap",
        "configmaps",
        "configmap",
        "ConfigMapList",
        True,
        ("v1",),
        "v1",
        frozenset(),
        ("cm",),
        (),
        True,
        False,
    ),
    ResourceType(
        "", "Event", "events", "event", "EventList", True, ("v1",), "v1", frozenset(), ("ev",), (), True, False
    ),
    ResourceType(
        CRD_GROUP,
        "CustomResourceDefinition",
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinitionList",
        False,
        ("v1",),
        "v1",
        frozenset({"v1"}),
        ("crd", "crds"),
        ("api-extensions",),
        True,
        True,
    ),
)


class Registry:
    """Lookup of resource types by REST coordinates, rebuilt whenever the set of CRDs changes."""

    def __init__(self, schemas: CrdSchemas) -> None:
        self.schemas = schemas
        self._types: dict[tuple[str, str], ResourceType] = {}
        self._by_kind: dict[tuple[str, str], ResourceType] = {}
        self._columns: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        self.set_schemas(schemas)

    def set_schemas(self, schemas: CrdSchemas) -> None:
        self.schemas = schemas
        types = {t.key: t for t in _BUILTINS}
        grouped: dict[tuple[str, str], list[Any]] = {}
        for info in schemas.resources():
            grouped.setdefault((info.group, info.plural), []).append(info)
        storage = {(i.group, i.plural): i.version for i in schemas.resources() if i.storage}
        for key, infos in grouped.items():
            if key in types:
                continue
            infos.sort(key=lambda i: version_priority(i.version))
            first = infos[0]
            types[key] = ResourceType(
                first.group,
                first.kind,
                first.plural,
                first.singular,
                first.list_kind,
                first.namespaced,
                tuple(i.version for i in infos),
                storage.get(key, first.version),
                frozenset(i.version for i in infos if i.status_subresource),
                first.short_names,
                first.categories,
            )
        self._types = types
        self._by_kind = {(t.api_version(v), t.kind): t for t in types.values() for v in t.versions}
        self._columns = {
            (crd["spec"]["group"], crd["spec"]["names"]["plural"], str(v.get("name"))): list(
                v.get("additionalPrinterColumns") or []
            )
            for crd in schemas.crds()
            for v in crd["spec"].get("versions") or ()
        }

    def printer_columns(self, rtype: ResourceType, version: str) -> list[dict[str, Any]]:
        """The CRD version's ``additionalPrinterColumns`` (empty for built-in kinds and CRDs without any)."""
        return self._columns.get((rtype.group, rtype.plural, version), [])

    def types(self) -> Iterable[ResourceType]:
        return self._types.values()

    def get(self, group: str, plural: str) -> ResourceType | None:
        return self._types.get((group, plural))

    def resolve(self, group: str, version: str, plural: str) -> ResourceType | None:
        rtype = self._types.get((group, plural))
        return rtype if rtype is not None and version in rtype.versions else None

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((api_version, kind))

    def schema(self, rtype: ResourceType, version: str) -> Mapping[str, Any] | None:
        return None if rtype.builtin else self.schemas.schema(rtype.api_version(version), rtype.kind)

    # discovery documents

    def group_versions(self) -> dict[str, list[str]]:
        out: dict[str, set[str]] = {}
        for t in self._types.values():
            if t.group:
                out.setdefault(t.group, set()).update(t.versions)
        return {g: sorted(vs, key=version_priority) for g, vs in sorted(out.items())}

    def api_group(self, group: str) -> dict[str, Any] | None:
        versions = self.group_versions().get(group)
        if not versions:
            return None
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": group,
            "versions": entries,
            "preferredVersion": dict(entries[0]),
        }

    def api_group_list(self) -> dict[str, Any]:
        groups = []
        for group in self.group_versions():
            doc = self.api_group(group)
            if doc is not None:
                doc.pop("kind")
                doc.pop("apiVersion")
                groups.append(doc)
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def resource_list(self, group: str, version: str) -> dict[str, Any] | None:
        resources: list[dict[str, Any]] = []
        for t in sorted(self._types.values(), key=lambda t: t.plural):
            if t.group != group or version not in t.versions:
                continue
            entry: dict[str, Any] = {
                "name": t.plural,
                "singularName": t.singular,
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": list(t.verbs),
            }
            if t.short_names:
                entry["shortNames"] = list(t.short_names)
            if t.categories:
                entry["categories"] = list(t.categories)
            resources.append(entry)
            if t.has_status(version):
                resources.append(
                    {
                        "name": f"{t.plural}/status",
                        "singularName": "",
                        "namespaced": t.namespaced,
                        "kind": t.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
        if not resources:
            return None
        group_version = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}
