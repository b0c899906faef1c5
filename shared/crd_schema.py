"""Validate and default custom resources against CustomResourceDefinition schemas, like the API server.

Each version's ``openAPIV3Schema`` is compiled once into a tree of ``_Node`` objects; validating an
object then walks only the object, so the cost grows with the object, not with the (large) schema.
Used by the renderer before applying, by the Kubernetes API emulator on every write, and by tests.
CEL rules (``x-kubernetes-validations``) are not evaluated. A node's value constraints are built by
``shared.crd_checks``.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from shared.crd_checks import scalar_checks
from shared.crd_meta import FieldError, invalid, show, validate_metadata

__all__ = ["CrdSchemas", "FieldError", "ResourceInfo", "validate_metadata"]

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MISSING: Any = object()
_ROOT_FIELDS = ("apiVersion", "kind", "metadata")
_OPEN_SCHEMA = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


@dataclass(frozen=True)
class ResourceInfo:
    """One served version of a custom resource type."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    list_kind: str
    namespaced: bool
    status_subresource: bool
    served: bool
    storage: bool
    short_names: tuple[str, ...]
    categories: tuple[str, ...]

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: not isinstance(v, bool) and (isinstance(v, int) or (isinstance(v, float) and v.is_integer())),
    "number": lambda v: not isinstance(v, bool) and isinstance(v, int | float),
}
_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", dict: "object", list: "array"}


class _Node:
    """A compiled schema node; unset parts are None/empty so the walker can skip them cheaply."""

    __slots__ = (
        "additional",
        "checks",
        "combos",
        "default",
        "embedded",
        "int_or_string",
        "items",
        "list_type",
        "map_keys",
        "not_",
        "nullable",
        "preserve",
        "props",
        "required",
        "type",
    )

    def __init__(self, s: Mapping[str, Any]) -> None:
        self.type: str | None = s.get("type")
        self.nullable = bool(s.get("nullable"))
        self.int_or_string = bool(s.get("x-kubernetes-int-or-string"))
        self.preserve = bool(s.get("x-kubernetes-preserve-unknown-fields"))
        self.embedded = bool(s.get("x-kubernetes-embedded-resource"))
        self.props: dict[str, _Node] = {k: _Node(v) for k, v in (s.get("properties") or {}).items()}
        self.required: tuple[str, ...] = tuple(s.get("required") or ())
        add = s.get("additionalProperties")
        self.additional: _Node | bool | None = _Node(add) if isinstance(add, dict) else add
        self.items = _Node(s["items"]) if isinstance(s.get("items"), dict) else None
        self.list_type: str | None = s.get("x-kubernetes-list-type")
        self.map_keys: tuple[str, ...] = tuple(s.get("x-kubernetes-list-map-keys") or ())
        self.checks = scalar_checks(s)
        self.combos = {k: [_Node(x) for x in s[k]] for k in ("allOf", "anyOf", "oneOf") if s.get(k)}
        self.not_ = _Node(s["not"]) if isinstance(s.get("not"), dict) else None
        self.default: Any = s.get("default", _MISSING)

    def child(self, key: str) -> _Node | None:
        found = self.props.get(key)
        return self.additional if found is None and isinstance(self.additional, _Node) else found

    def allows(self, key: str) -> bool:
        """Whether an undeclared ``key`` is kept here (preserved, additionalProperties, embedded object meta)."""
        return (
            self.preserve
            or self.additional is True
            or isinstance(self.additional, _Node)
            or (self.embedded and key in _ROOT_FIELDS)
        )


def _check(node: _Node, v: Any, path: str, errs: list[FieldError], strict: bool) -> None:
    """Validate value ``v`` at ``path`` against ``node``, appending every failure to ``errs``."""
    if v is None:
        if not node.nullable:
            errs.append(invalid(path, "nullable", "null", f"{path} in body must be of type {node.type or 'object'}"))
        return
    if node.int_or_string:
        if isinstance(v, bool) or not isinstance(v, int | str):
            errs.append(
                invalid(path, "x-kubernetes-int-or-string", v, f"{path} in body must be of type integer or string")
            )
            return
    elif node.type and not _TYPES.get(node.type, lambda _: True)(v):
        kind = show(_JSON_TYPES.get(type(v), "unknown"))
        errs.append(invalid(path, "type", v, f"{path} in body must be of type {node.type}: {kind}"))
        return
    errs.extend(err for chk in node.checks if (err := chk(v, path)) is not None)
    if isinstance(v, dict):
        _check_object(node, v, path, errs, strict)
    elif isinstance(v, list):
        _check_array(node, v, path, errs, strict)
    if node.combos or node.not_:
        _check_combinators(node, v, path, errs)


def _check_object(node: _Node, v: dict[str, Any], path: str, errs: list[FieldError], strict: bool) -> None:
    prefix = f"{path}." if path else ""
    for key in node.required:
        child = node.props.get(key)
        missing = v.get(key) is None and not (key in v and child is not None and child.nullable)
        if missing and (child is None or child.default is _MISSING):
            errs.append(FieldError(f"{prefix}{key}", "required", "Required value"))
    if node.embedded:
        errs.extend(
            FieldError(f"{prefix}{key}", "x-kubernetes-embedded-resource", "Required value")
            for key in ("apiVersion", "kind")
            if not isinstance(v.get(key), str) or not v[key]
        )
        if isinstance(v.get("metadata"), dict):
            errs.extend(validate_metadata(v["metadata"], f"{prefix}metadata", embedded=True))
    typed = node.type == "object" or bool(node.props) or node.additional is not None
    for key, val in v.items():
        child = node.props.get(key)
        sub = f"{prefix}{key}"
        if child is None and isinstance(node.additional, _Node):
            child, sub = node.additional, f"{path}[{key}]"
        if child is not None:
            if val is not None or child.nullable:  # the server drops nulls of non-nullable fields first
                _check(child, val, sub, errs, strict)
        elif strict and typed and not node.allows(key):
            errs.append(FieldError(sub, "unknown-field", f'unknown field "{sub}"'))


def _check_array(node: _Node, v: list[Any], path: str, errs: list[FieldError], strict: bool) -> None:
    if node.items is not None:
        for i, item in enumerate(v):
            _check(node.items, item, f"{path}[{i}]", errs, strict)
    if node.list_type not in ("set", "map") or (node.list_type == "map" and not node.map_keys):
        return
    seen: set[str] = set()
    for i, item in enumerate(v):
        if node.list_type == "map":
            if not isinstance(item, dict):
                continue
            item = {k: item.get(k) for k in node.map_keys}  # noqa: PLW2901 - compare by key fields only
        key = show(item)
        if key in seen:
            errs.append(FieldError(f"{path}[{i}]", "x-kubernetes-list-type", f"Duplicate value: {key}"))
        seen.add(key)


def _check_combinators(node: _Node, v: Any, path: str, errs: list[FieldError]) -> None:
    def fails(sub: _Node) -> list[FieldError]:
        found: list[FieldError] = []
        _check(sub, v, path, found, False)
        return found

    for sub in node.combos.get("allOf", ()):
        errs.extend(fails(sub))
    if "anyOf" in node.combos and all(fails(sub) for sub in node.combos["anyOf"]):
        errs.append(invalid(path, "anyOf", v, f"{path} in body must match at least one schema in anyOf"))
    if "oneOf" in node.combos and sum(1 for sub in node.combos["oneOf"] if not fails(sub)) != 1:
        errs.append(invalid(path, "oneOf", v, f"{path} in body must match exactly one schema in oneOf"))
    if node.not_ is not None and not fails(node.not_):
        errs.append(invalid(path, "not", v, f"{path} in body must not match the schema"))


def _plain_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_copy(v) for v in value]
    return value


def _normalize(node: _Node | None, v: Any, path: str, prune: bool, dropped: list[FieldError]) -> Any:
    """Copy ``v``: drop non-nullable nulls, apply defaults, and (when ``prune``) drop undeclared fields."""
    if node is None:
        return _plain_copy(v)
    if isinstance(v, list):
        return [_normalize(node.items, item, f"{path}[{i}]", prune, dropped) for i, item in enumerate(v)]
    if not isinstance(v, dict):
        return v
    out: dict[str, Any] = {}
    prefix = f"{path}." if path else ""
    for key, val in v.items():
        child = node.child(key)
        if child is None:
            if prune and not node.allows(key) and (node.type == "object" or node.props):
                dropped.append(FieldError(f"{prefix}{key}", "unknown-field", f'unknown field "{prefix}{key}"'))
            else:
                out[key] = _plain_copy(val)
        elif val is not None or child.nullable:
            out[key] = _normalize(child, val, f"{prefix}{key}", prune, dropped)
    for key, child in node.props.items():
        if key not in out and child.default is not _MISSING and not (key in v and child.nullable):
            out[key] = _normalize(child, copy.deepcopy(child.default), f"{prefix}{key}", prune, dropped)
    return out


@functools.lru_cache(maxsize=256)
def _load_docs(path: str, _mtime: int) -> list[Any]:
    with open(path, encoding="utf-8") as fh:
        return [d for d in yaml.load_all(fh, Loader=_LOADER) if isinstance(d, dict)]


class CrdSchemas:
    """The resource types and compiled schemas of a set of CRDs (immutable after construction)."""

    def __init__(self, crds: Iterable[Mapping[str, Any]]) -> None:
        self._crds: list[dict[str, Any]] = []
        self._by_kind: dict[tuple[str, str], ResourceInfo] = {}
        self._by_plural: dict[tuple[str, str, str], ResourceInfo] = {}
        self._raw: dict[tuple[str, str], dict[str, Any]] = {}
        self._nodes: dict[tuple[str, str], _Node] = {}
        for crd in crds:
            if crd.get("kind") == "CustomResourceDefinition":
                self._add(crd)

    def _add(self, crd: Mapping[str, Any]) -> None:
        own = copy.deepcopy(dict(crd))
        self._crds.append(own)
        spec, names = own["spec"], own["spec"]["names"]
        for ver in spec.get("versions") or ():
            info = ResourceInfo(
                group=spec["group"],
                version=ver["name"],
                kind=names["kind"],
                plural=names["plural"],
                singular=names.get("singular") or names["kind"].lower(),
                list_kind=names.get("listKind") or f"{names['kind']}List",
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                status_subresource="status" in (ver.get("subresources") or {}),
                served=bool(ver.get("served", True)),
                storage=bool(ver.get("storage", False)),
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
            )
            if info.served:
                key = (info.api_version, info.kind)
                self._by_kind[key] = self._by_plural[(info.group, info.version, info.plural)] = info
                self._raw[key] = (ver.get("schema") or {}).get("openAPIV3Schema") or _OPEN_SCHEMA

    @classmethod
    def from_dirs(cls, dirs: Sequence[Path]) -> CrdSchemas:
        """Every ``*.yaml``/``*.yml`` below each dir (multi-document); non-CRD documents are ignored."""
        files = sorted(p for d in dirs for p in Path(d).rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        return _from_files(tuple((str(f), f.stat().st_mtime_ns) for f in files))

    @classmethod
    def from_crd_objects(cls, crds: Iterable[Mapping[str, Any]]) -> CrdSchemas:
        """From CRD objects as read from a live cluster (or any mapping shaped like one)."""
        return cls(crds)

    def crds(self) -> list[dict[str, Any]]:
        return copy.deepcopy(self._crds)

    def resources(self) -> list[ResourceInfo]:
        return list(self._by_kind.values())

    def lookup(self, api_version: str, kind: str) -> ResourceInfo | None:
        return self._by_kind.get((api_version, kind))

    def lookup_plural(self, group: str, version: str, plural: str) -> ResourceInfo | None:
        return self._by_plural.get((group, version, plural))

    def schema(self, api_version: str, kind: str) -> dict[str, Any] | None:
        return self._raw.get((api_version, kind))

    def _node(self, api_version: str, kind: str) -> _Node | None:
        key = (api_version, kind)
        node = self._nodes.get(key)
        if node is None and key in self._raw:
            node = self._nodes[key] = _Node(self._raw[key])
        return node

    def validate(self, obj: Mapping[str, Any], *, strict: bool = True) -> list[FieldError]:
        """Every schema and metadata violation of ``obj``; empty when the server would accept it."""
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        node = self._node(str(api_version), str(kind)) if api_version and kind else None
        if node is None:
            return [FieldError("kind", "unknown-kind", f'no matches for kind "{kind}" in version "{api_version}"')]
        errs = validate_metadata(obj.get("metadata"))
        body = {k: v for k, v in obj.items() if k not in _ROOT_FIELDS}
        _check(node, body, "", errs, strict)
        return errs

    def apply_defaults(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``obj`` with structural defaults applied and non-nullable nulls removed."""
        out, _ = self._normalized(obj, prune=False)
        return out

    def prune_unknown(self, obj: Mapping[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
        """A defaulted copy without undeclared fields (what ``fieldValidation=Ignore|Warn`` keeps) and the drops."""
        return self._normalized(obj, prune=True)

    def _normalized(self, obj: Mapping[str, Any], *, prune: bool) -> tuple[dict[str, Any], list[FieldError]]:
        node = self._node(str(obj.get("apiVersion")), str(obj.get("kind")))
        dropped: list[FieldError] = []
        body = {k: v for k, v in obj.items() if k not in _ROOT_FIELDS}
        out: dict[str, Any] = _normalize(node, body, "", prune, dropped) if node else _plain_copy(body)
        out.update({k: _plain_copy(obj[k]) for k in _ROOT_FIELDS if k in obj})
        return out, dropped


@functools.lru_cache(maxsize=16)
def _from_files(files: tuple[tuple[str, int], ...]) -> CrdSchemas:
    return CrdSchemas(doc for path, mtime in files for doc in _load_docs(path, mtime))
