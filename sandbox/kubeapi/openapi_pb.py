"""OpenAPI v2 in protobuf, the only form client-go reads from ``/openapi/v2``.

client-go asks for ``application/com.github.proto-openapi.spec.v2@v1.0+protobuf`` and decodes gnostic's
``openapi.v2.Document`` message; kubectl falls back to it when ``/openapi/v3`` fails, and
``kubectl explain --output=plaintext-openapiv2`` always uses it. This module writes that message from the JSON
document ``OpenApi.v2_document()`` builds, with a minimal protobuf writer (varints and length-delimited fields
only, plus doubles); the field numbers are those of gnostic's ``OpenAPIv2.proto``. Values gnostic keeps as
``Any`` (defaults, enums, examples, vendor extensions) are carried as YAML text, for which JSON is used.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Mapping
from typing import Any


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int64 values take ten bytes, as protobuf encodes them
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _bytes(field: int, data: bytes) -> bytes:
    return _key(field, 2) + _varint(len(data)) + data


def _str(field: int, value: Any) -> bytes:
    return _bytes(field, str(value).encode()) if value not in (None, "") else b""


def _strs(field: int, values: Iterable[Any]) -> bytes:
    return b"".join(_bytes(field, str(v).encode()) for v in values)


def _bool(field: int, value: Any) -> bytes:
    return _key(field, 0) + b"\x01" if value is True else b""


def _int(field: int, value: Any) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return b""
    return _key(field, 0) + _varint(int(value))


def _double(field: int, value: Any) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return b""
    return _key(field, 1) + struct.pack("<d", float(value))


def _any(field: int, value: Any) -> bytes:
    # Any { google.protobuf.Any value = 1; string yaml = 2; }
    return _bytes(field, _str(2, json.dumps(value, separators=(",", ":"))))


def _extensions(field: int, node: Mapping[str, Any]) -> bytes:
    # NamedAny { string name = 1; Any value = 2; }
    return b"".join(_bytes(field, _str(1, k) + _any(2, v)) for k, v in node.items() if k.startswith("x-"))


def schema(node: Mapping[str, Any]) -> bytes:
    """An ``openapi.v2.Schema``."""
    out = [
        _str(1, node.get("$ref")),
        _str(2, node.get("format")),
        _str(3, node.get("title")),
        _str(4, node.get("description")),
    ]
    if "default" in node:
        out.append(_any(5, node["default"]))
    out += [
        _double(6, node.get("multipleOf")),
        _double(7, node.get("maximum")),
        _bool(8, node.get("exclusiveMaximum")),
        _double(9, node.get("minimum")),
        _bool(10, node.get("exclusiveMinimum")),
        _int(11, node.get("maxLength")),
        _int(12, node.get("minLength")),
        _str(13, node.get("pattern")),
        _int(14, node.get("maxItems")),
        _int(15, node.get("minItems")),
        _bool(16, node.get("uniqueItems")),
        _int(17, node.get("maxProperties")),
        _int(18, node.get("minProperties")),
        _strs(19, node.get("required") or ()),
    ]
    out += [_any(20, v) for v in node.get("enum") or ()]
    extra = node.get("additionalProperties")
    if isinstance(extra, Mapping):
        out.append(_bytes(21, _bytes(1, schema(extra))))  # AdditionalPropertiesItem.schema
    elif isinstance(extra, bool):
        out.append(_bytes(21, _key(2, 0) + (b"\x01" if extra else b"\x00")))  # AdditionalPropertiesItem.boolean
    kind = node.get("type")
    if kind:
        out.append(_bytes(22, _strs(1, kind if isinstance(kind, list) else [kind])))  # TypeItem
    items = node.get("items")
    if isinstance(items, Mapping):
        out.append(_bytes(23, _bytes(1, schema(items))))  # ItemsItem
    out += [_bytes(24, schema(s)) for s in node.get("allOf") or () if isinstance(s, Mapping)]
    props = node.get("properties")
    if isinstance(props, Mapping):
        out.append(_bytes(25, _named(props)))  # Properties
    out += [_bool(27, node.get("readOnly")), _extensions(31, node)]
    if "example" in node:
        out.append(_any(30, node["example"]))
    return b"".join(out)


def _named(schemas: Mapping[str, Any]) -> bytes:
    # repeated NamedSchema { string name = 1; Schema value = 2; } as field 1 of Properties/Definitions
    return b"".join(_bytes(1, _str(1, name) + _bytes(2, schema(s))) for name, s in schemas.items())


def _parameter(p: Mapping[str, Any]) -> bytes:
    # ParametersItem.parameter -> Parameter.non_body_parameter -> NonBodyParameter.{query,path}_parameter_sub_schema
    if p.get("in") == "path":
        sub = (
            _bool(1, p.get("required"))
            + _str(2, "path")
            + _str(3, p.get("description"))
            + _str(4, p["name"])
            + _str(5, p.get("type"))
            + _bool(19, p.get("uniqueItems"))
        )
        non_body = _bytes(4, sub)
    else:
        sub = (
            _bool(1, p.get("required"))
            + _str(2, "query")
            + _str(3, p.get("description"))
            + _str(4, p["name"])
            + _str(6, p.get("type"))
            + _bool(20, p.get("uniqueItems"))
        )
        non_body = _bytes(3, sub)
    return _bytes(1, _bytes(2, non_body))


def _operation(op: Mapping[str, Any]) -> bytes:
    out = [
        _str(3, op.get("description")),
        _str(5, op.get("operationId")),
        _strs(6, op.get("produces") or ()),
        _strs(7, op.get("consumes") or ()),
    ]
    out += [_bytes(8, _parameter(p)) for p in op.get("parameters") or ()]
    # Responses { repeated NamedResponseValue response_code = 1; } -> ResponseValue.response -> Response.description
    codes = b"".join(
        _bytes(1, _str(1, code) + _bytes(2, _bytes(1, _str(1, (r or {}).get("description") or code))))
        for code, r in (op.get("responses") or {}).items()
    )
    out += [_bytes(9, codes), _extensions(13, op)]
    return b"".join(out)


_VERBS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def _path_item(item: Mapping[str, Any]) -> bytes:
    out = [_bytes(field, _operation(item[verb])) for verb, field in _VERBS.items() if verb in item]
    out += [_bytes(9, _parameter(p)) for p in item.get("parameters") or ()]
    return b"".join(out)


def document(doc: Mapping[str, Any]) -> bytes:
    """An ``openapi.v2.Document`` for the JSON document ``doc`` (``swagger: "2.0"``)."""
    info = doc.get("info") or {}
    paths = b"".join(
        _bytes(2, _str(1, path) + _bytes(2, _path_item(item)))  # Paths.path: NamedPathItem
        for path, item in (doc.get("paths") or {}).items()
    )
    return b"".join(
        [
            _str(1, doc.get("swagger", "2.0")),
            _bytes(2, _str(1, info.get("title")) + _str(2, info.get("version"))),
            _bytes(8, paths),
            _bytes(9, _named(doc.get("definitions") or {})),
        ]
    )
