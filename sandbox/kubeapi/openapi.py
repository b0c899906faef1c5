"""OpenAPI documents built from what the emulator serves: v3 (an index plus one document per group-version)
and v2 (one document), as kube-apiserver publishes them for ``kubectl``.

``kubectl`` reads ``/openapi/v3`` first: the PATCH operation of a kind's item path tells it whether the server
validates fields itself (the ``fieldValidation`` parameter; then it sends ``fieldValidation=Strict`` and skips
client-side validation) and whether it takes strategic merge patches (built-in kinds only). ``kubectl explain``
and client-side validation read the schemas under ``components.schemas``, found by their
``x-kubernetes-group-version-kind``. Custom resources are published with their CRD's ``openAPIV3Schema``
(``metadata`` replaced by a reference to ObjectMeta, as the real server does); built-in kinds with compact
schemas of the fields the emulator implements.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from . import openapi_pb
from .registry import CRD_GROUP, Registry, ResourceType

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
_STR = {"type": "string"}
_STR_MAP = {"type": "object", "additionalProperties": {"type": "string", "default": ""}}
_TIME = {"type": "string", "format": "date-time"}
_INT64 = {"type": "integer", "format": "int64"}


def definition_name(rtype: ResourceType, version: str, kind: str | None = None) -> str:
    """The schema name kube-apiserver uses (``io.k8s.api.core.v1.Secret``, ``org.nephio.focom.v1alpha1.X``)."""
    kind = kind or rtype.kind
    if rtype.group == "":
        prefix = "io.k8s.api.core"
    elif rtype.group == CRD_GROUP:
        prefix = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions"
    else:
        prefix = ".".join(reversed(rtype.group.split(".")))
    return f"{prefix}.{version}.{kind}"


def _ref(name: str, v3: bool) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}" if v3 else f"#/definitions/{name}"}


def _meta_schemas(v3: bool) -> dict[str, dict[str, Any]]:
    # No x-kubernetes-patch-strategy markers: the emulator applies strategic merge patches as JSON merge
    # patches, so kubectl must not send list directives ($setElementOrder, $patch) it would not understand.
    owner = {
        "type": "object",
        "required": ["apiVersion", "kind", "name", "uid"],
        "properties": {
            "apiVersion": _STR,
            "kind": _STR,
            "name": _STR,
            "uid": _STR,
            "controller": {"type": "boolean"},
            "blockOwnerDeletion": {"type": "boolean"},
        },
        "x-kubernetes-map-type": "atomic",
    }
    managed = {
        "type": "object",
        "properties": {
            "apiVersion": _STR,
            "fieldsType": _STR,
            "fieldsV1": _ref(f"{META}.FieldsV1", v3),
            "manager": _STR,
            "operation": _STR,
            "subresource": _STR,
            "time": _ref(f"{META}.Time", v3),
        },
    }
    object_meta = {
        "type": "object",
        "properties": {
            "annotations": _STR_MAP,
            "creationTimestamp": _ref(f"{META}.Time", v3),
            "deletionGracePeriodSeconds": _INT64,
            "deletionTimestamp": _ref(f"{META}.Time", v3),
            "finalizers": {
                "type": "array",
                "items": {"type": "string", "default": ""},
                "x-kubernetes-list-type": "set",
            },
            "generateName": _STR,
            "generation": _INT64,
            "labels": _STR_MAP,
            "managedFields": {
                "type": "array",
                "items": _ref(f"{META}.ManagedFieldsEntry", v3),
                "x-kubernetes-list-type": "atomic",
            },
            "name": _STR,
            "namespace": _STR,
            "ownerReferences": {
                "type": "array",
                "items": _ref(f"{META}.OwnerReference", v3),
                "x-kubernetes-list-map-keys": ["uid"],
                "x-kubernetes-list-type": "map",
            },
            "resourceVersion": _STR,
            "selfLink": _STR,
            "uid": _STR,
        },
    }
    list_meta = {
        "type": "object",
        "properties": {"continue": _STR, "remainingItemCount": _INT64, "resourceVersion": _STR, "selfLink": _STR},
    }
    return {
        f"{META}.ObjectMeta": object_meta,
        f"{META}.ListMeta": list_meta,
        f"{META}.OwnerReference": owner,
        f"{META}.ManagedFieldsEntry": managed,
        f"{META}.Time": _TIME,
        f"{META}.FieldsV1": {"type": "object"},
    }


def _builtin_schema(rtype: ResourceType) -> dict[str, Any]:
    """The fields the emulator implements for each built-in kind (others are refused by strict validation)."""
    bytes_map = {"type": "object", "additionalProperties": {"type": "string", "format": "byte"}}
    props: dict[str, Any]
    if rtype.kind == "Secret":
        props = {"data": bytes_map, "stringData": _STR_MAP, "type": _STR, "immutable": {"type": "boolean"}}
    elif rtype.kind == "ConfigMap":
        props = {"data": _STR_MAP, "binaryData": bytes_map, "immutable": {"type": "boolean"}}
    elif rtype.kind == "Namespace":
        props = {
            "spec": {"type": "object", "properties": {"finalizers": {"type": "array", "items": _STR}}},
            "status": {"type": "object", "properties": {"phase": _STR}},
        }
    elif rtype.kind == "Event":
        ref = {
            "type": "object",
            "properties": {
                k: _STR for k in ("apiVersion", "kind", "name", "namespace", "uid", "resourceVersion", "fieldPath")
            },
        }
        props = {
            "involvedObject": ref,
            "reason": _STR,
            "message": _STR,
            "type": _STR,
            "count": {"type": "integer"},
            "firstTimestamp": _TIME,
            "lastTimestamp": _TIME,
            "eventTime": _TIME,
            "action": _STR,
            "reportingComponent": _STR,
            "reportingInstance": _STR,
            "source": {"type": "object", "properties": {"component": _STR, "host": _STR}},
        }
    else:  # CustomResourceDefinition: its spec is checked by the emulator itself
        open_object = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        props = {"spec": open_object, "status": open_object}
    return {"type": "object", "properties": props}


class OpenApi:
    """The documents for the registry's current resource types (rebuilt when the CRD set changes)."""

    def __init__(self, registry: Registry, server_version: str) -> None:
        self.registry = registry
        self.server_version = server_version
        self._built_for: object = None
        self._v3: dict[str, bytes] = {}
        self._v3_hash: dict[str, str] = {}
        self._v2: bytes = b""
        self._v2_pb: bytes | None = None

    def _refresh(self) -> None:
        schemas = self.registry.schemas
        if self._built_for is schemas:
            return
        by_gv: dict[str, list[tuple[ResourceType, str]]] = {}
        for rtype in self.registry.types():
            for version in rtype.versions:
                path = f"api/{version}" if rtype.group == "" else f"apis/{rtype.group}/{version}"
                by_gv.setdefault(path, []).append((rtype, version))
        self._v3 = {
            path: json.dumps(self._v3_doc(entries), separators=(",", ":")).encode()
            for path, entries in sorted(by_gv.items())
        }
        self._v3_hash = {path: hashlib.sha512(body).hexdigest().upper() for path, body in self._v3.items()}
        everything = [entry for entries in by_gv.values() for entry in entries]
        self._v2 = json.dumps(self._v2_doc(everything), separators=(",", ":")).encode()
        self._v2_pb = None  # encoded when first asked for
        self._built_for = schemas

    # public

    def v3_index(self) -> bytes:
        self._refresh()
        paths = {p: {"serverRelativeURL": f"/openapi/v3/{p}?hash={h}"} for p, h in self._v3_hash.items()}
        return json.dumps({"paths": paths}, separators=(",", ":")).encode()

    def v3_document(self, path: str) -> tuple[bytes, str] | None:
        """The document of ``path`` (``api/v1``, ``apis/<group>/<version>``) and its hash; None when unknown."""
        self._refresh()
        body = self._v3.get(path)
        return None if body is None else (body, self._v3_hash[path])

    def v2_document(self) -> bytes:
        self._refresh()
        return self._v2

    def v2_protobuf(self) -> bytes:
        """The v2 document as gnostic's ``openapi.v2.Document`` message (what client-go decodes)."""
        self._refresh()
        if self._v2_pb is None:
            self._v2_pb = openapi_pb.document(json.loads(self._v2))
        return self._v2_pb

    # building

    def _kind_schema(self, rtype: ResourceType, version: str, v3: bool) -> dict[str, Any]:
        raw = self.registry.schema(rtype, version)
        schema = copy.deepcopy(dict(raw)) if raw is not None else _builtin_schema(rtype)
        if not v3:
            schema = _to_v2(schema)
        props = dict(schema.get("properties") or {})
        props["apiVersion"] = {
            "type": "string",
            "description": "APIVersion defines the versioned schema of this representation of an object.",
        }
        props["kind"] = {
            "type": "string",
            "description": "Kind is a string value representing the REST resource this object represents.",
        }
        props["metadata"] = _ref(f"{META}.ObjectMeta", v3)
        schema["properties"] = props
        schema["type"] = "object"
        schema["x-kubernetes-group-version-kind"] = [{"group": rtype.group, "kind": rtype.kind, "version": version}]
        return schema

    def _list_schema(self, rtype: ResourceType, version: str, v3: bool) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["items"],
            "properties": {
                "apiVersion": _STR,
                "kind": _STR,
                "metadata": _ref(f"{META}.ListMeta", v3),
                "items": {"type": "array", "items": _ref(definition_name(rtype, version), v3)},
            },
            "x-kubernetes-group-version-kind": [{"group": rtype.group, "kind": rtype.list_kind, "version": version}],
        }

    def _paths(self, rtype: ResourceType, version: str, v3: bool) -> dict[str, Any]:
        base = "/api/v1" if rtype.group == "" else f"/apis/{rtype.group}/{version}"
        scope = f"{base}/namespaces/{{namespace}}/{rtype.plural}" if rtype.namespaced else f"{base}/{rtype.plural}"
        gvk = {"group": rtype.group, "kind": rtype.kind, "version": version}
        name = rtype.kind + version.capitalize()
        patch_types = ["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"]
        if rtype.builtin:
            patch_types.insert(2, "application/strategic-merge-patch+json")
        write_params = [_param(n, "query", v3) for n in ("dryRun", "fieldManager", "fieldValidation")]
        path_params = [_param("name", "path", v3), *([_param("namespace", "path", v3)] if rtype.namespaced else [])]

        def op(action: str, verb: str, params: list[dict[str, Any]], body: list[str] | None = None) -> dict[str, Any]:
            out: dict[str, Any] = {
                "operationId": f"{verb}{name}",
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
            }
            if body is not None:
                if v3:
                    out["requestBody"] = {"content": {t: {"schema": {"type": "object"}} for t in body}}
                else:
                    out["consumes"] = body
            return out

        item = {
            "get": op("get", "read", []),
            "put": op("put", "replace", write_params, ["*/*"]),
            "patch": op("patch", "patch", [*write_params, _param("force", "query", v3, "boolean")], patch_types),
            "delete": op("delete", "delete", [_param("dryRun", "query", v3)], ["*/*"]),
            # kubectl looks for fieldValidation among the path's parameters; the operations carry it too.
            "parameters": [*path_params, *write_params],
        }
        collection = {
            "get": op(
                "list",
                "list",
                [
                    _param(n, "query", v3)
                    for n in ("labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "watch")
                ],
            ),
            "post": op("post", "create", write_params, ["*/*"]),
            "parameters": path_params[1:],
        }
        out = {scope: collection, f"{scope}/{{name}}": item}
        if rtype.has_status(version):
            out[f"{scope}/{{name}}/status"] = {
                "get": op("get", "read", []),
                "put": op("put", "replace", write_params, ["*/*"]),
                "patch": op("patch", "patch", write_params, patch_types),
                "parameters": [*path_params, *write_params],
            }
        return out

    def _v3_doc(self, entries: list[tuple[ResourceType, str]]) -> dict[str, Any]:
        schemas = _meta_schemas(True)
        paths: dict[str, Any] = {}
        for rtype, version in entries:
            schemas[definition_name(rtype, version)] = self._kind_schema(rtype, version, True)
            schemas[definition_name(rtype, version, rtype.list_kind)] = self._list_schema(rtype, version, True)
            paths.update(self._paths(rtype, version, True))
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": self.server_version},
            "paths": paths,
            "components": {"schemas": schemas},
        }

    def _v2_doc(self, entries: list[tuple[ResourceType, str]]) -> dict[str, Any]:
        definitions = _meta_schemas(False)
        paths: dict[str, Any] = {}
        for rtype, version in entries:
            definitions[definition_name(rtype, version)] = self._kind_schema(rtype, version, False)
            definitions[definition_name(rtype, version, rtype.list_kind)] = self._list_schema(rtype, version, False)
            paths.update(self._paths(rtype, version, False))
        return {
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": self.server_version},
            "paths": paths,
            "definitions": definitions,
        }


def _param(name: str, where: str, v3: bool, type_: str = "string") -> dict[str, Any]:
    base: dict[str, Any] = {"name": name, "in": where, "uniqueItems": True}
    if where == "path":
        base["required"] = True
    if v3:
        return {**base, "schema": {"type": type_, "uniqueItems": True}}
    return {**base, "type": type_}


_V2_DROPPED = ("nullable", "oneOf", "anyOf", "not", "x-kubernetes-int-or-string", "x-kubernetes-embedded-resource")


def _to_v2(schema: Any) -> Any:
    """A CRD schema as v2 publishes it: what OpenAPI v2 cannot say is dropped (the server does the same).

    ``nullable`` and the combinators have no v2 form; int-or-string and nullable fields lose their type.
    """
    if not isinstance(schema, dict):
        return schema
    out = {k: v for k, v in schema.items() if k not in _V2_DROPPED}
    if schema.get("x-kubernetes-int-or-string") or schema.get("nullable"):
        out.pop("type", None)
    if isinstance(out.get("properties"), dict):
        out["properties"] = {name: _to_v2(sub) for name, sub in out["properties"].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = _to_v2(out[key])
    if isinstance(out.get("allOf"), list):
        out["allOf"] = [_to_v2(sub) for sub in out["allOf"]]
    return out
