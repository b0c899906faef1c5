"""Normalization and validation of the built-in kinds (Namespace, Secret, ConfigMap, Event, CRD)."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from shared.crd_schema import FieldError, validate_metadata

from .errors import ApiError, bad_request, invalid
from .registry import CRD_GROUP, ResourceType

_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_REASONS = {
    "required": "FieldValueRequired",
    "enum": "FieldValueNotSupported",
    "maxLength": "FieldValueTooLong",
    "maxItems": "FieldValueTooMany",
    "x-kubernetes-list-type": "FieldValueDuplicate",
    "type": "FieldValueTypeInvalid",
    "forbidden": "FieldValueForbidden",
}


def cause(err: FieldError) -> tuple[str, str, str]:
    """A ``Status`` cause triple (field, reason, message) for a schema error."""
    return err.path, _REASONS.get(err.rule, "FieldValueInvalid"), err.message


def _check_b64_map(rtype: ResourceType, value: Any, field: str) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise bad_request(f'{rtype.kind} in version "v1" cannot be handled as a {rtype.kind}: {field} must be a map')
    for key, raw in value.items():
        try:
            if not isinstance(raw, str):
                raise ValueError(key)
            base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise bad_request(
                f'{rtype.kind} in version "v1" cannot be handled as a {rtype.kind}: illegal base64 '
                f"data in {field}[{key}]"
            ) from exc


def _key_errors(data: Any, field: str) -> list[FieldError]:
    return [
        FieldError(
            f"{field}[{key}]",
            "pattern",
            f"Invalid value: {key!r}: a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
        )
        for key in (data or {})
        if not _CONFIG_KEY.match(str(key))
    ]


def normalize(rtype: ResourceType, old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """``new`` as the server would store it; raises ``ApiError`` (400/422) when it is not acceptable."""
    errs = validate_metadata(new.get("metadata"))
    if rtype.kind == "Secret":
        new, more = _secret(rtype, old, new)
        errs += more
    elif rtype.kind == "ConfigMap":
        _check_b64_map(rtype, new.get("binaryData"), "binaryData")
        errs += _key_errors(new.get("data"), "data") + _key_errors(new.get("binaryData"), "binaryData")
        if any(not isinstance(v, str) for v in (new.get("data") or {}).values()):
            raise bad_request('ConfigMap in version "v1" cannot be handled as a ConfigMap: data values must be strings')
        errs += _immutable(old, new, ("data", "binaryData"))
    elif rtype.kind == "Namespace":
        name = str((new.get("metadata") or {}).get("name", ""))
        if name and not _DNS1123_LABEL.match(name):
            errs.append(
                FieldError(
                    "metadata.name", "pattern", f"Invalid value: {name!r}: a lowercase RFC 1123 label is required"
                )
            )
        status = dict(new.get("status") or {})
        status.setdefault("phase", "Active")
        spec = dict(new.get("spec") or {})
        spec.setdefault("finalizers", ["kubernetes"])
        new = {**new, "spec": spec, "status": status}
    elif rtype.group == CRD_GROUP:
        new, more = _crd(new)
        errs += more
    if errs:
        name = str((new.get("metadata") or {}).get("name", ""))
        raise invalid(rtype.kind, rtype.group, name, [cause(e) for e in errs])
    return new


def _immutable(old: dict[str, Any] | None, new: dict[str, Any], fields: tuple[str, ...]) -> list[FieldError]:
    if old is None or not old.get("immutable"):
        return []
    errs = [
        FieldError(f, "forbidden", "Forbidden: field is immutable when `immutable` is set")
        for f in fields
        if old.get(f) != new.get(f)
    ]
    if not new.get("immutable"):
        errs.append(FieldError("immutable", "forbidden", "Forbidden: field is immutable when `immutable` is set"))
    return errs


def _secret(
    rtype: ResourceType, old: dict[str, Any] | None, new: dict[str, Any]
) -> tuple[dict[str, Any], list[FieldError]]:
    _check_b64_map(rtype, new.get("data"), "data")
    data = dict(new.get("data") or {})
    string_data = new.get("stringData") or {}
    if not isinstance(string_data, dict) or any(not isinstance(v, str) for v in string_data.values()):
        raise bad_request('Secret in version "v1" cannot be handled as a Secret: stringData must map to strings')
    for key, text in string_data.items():
        data[key] = base64.b64encode(text.encode()).decode()
    out = {k: v for k, v in new.items() if k not in ("stringData", "data")}
    if data:
        out["data"] = data
    out["type"] = new.get("type") or "Opaque"
    errs = _key_errors(data, "data")
    if old is not None and old.get("type", "Opaque") != out["type"]:
        errs.append(FieldError("type", "forbidden", f"Invalid value: {out['type']!r}: field is immutable"))
    errs += _immutable(old, out, ("data",))
    return out, errs


def _crd(new: dict[str, Any]) -> tuple[dict[str, Any], list[FieldError]]:
    spec = new.get("spec") or {}
    names = spec.get("names") or {}
    errs: list[FieldError] = []
    for field, value in (
        ("spec.group", spec.get("group")),
        ("spec.names.plural", names.get("plural")),
        ("spec.names.kind", names.get("kind")),
    ):
        if not value:
            errs.append(FieldError(field, "required", "Required value"))
    versions = spec.get("versions") or []
    if not versions:
        errs.append(FieldError("spec.versions", "required", "Required value"))
    elif sum(1 for v in versions if v.get("storage")) != 1:
        errs.append(
            FieldError(
                "spec.versions", "forbidden", "Invalid value: must have exactly one version marked as storage version"
            )
        )
    expected = f"{names.get('plural')}.{spec.get('group')}"
    if not errs and (new.get("metadata") or {}).get("name") != expected:
        errs.append(
            FieldError(
                "metadata.name", "pattern", f'Invalid value: must be spec.names.plural+"."+spec.group ({expected})'
            )
        )
    accepted = {k: v for k, v in names.items()}
    accepted.setdefault("singular", str(names.get("kind", "")).lower())
    accepted.setdefault("listKind", f"{names.get('kind')}List")
    status = {
        "acceptedNames": accepted,
        "conditions": [
            {
                "type": t,
                "status": "True",
                "reason": r,
                "message": m,
                "lastTransitionTime": (new.get("metadata") or {}).get("creationTimestamp", ""),
            }
            for t, r, m in (
                ("NamesAccepted", "NoConflicts", "no conflicts found"),
                ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            )
        ],
        "storedVersions": [v["name"] for v in versions if v.get("storage")],
    }
    return {**new, "status": status}, errs


def api_error_for_unknown(kind: str, version: str, unknown: list[FieldError]) -> ApiError:
    """Strict field validation failure: the real server answers 400 BadRequest (a decoding error)."""
    listed = ", ".join(f'unknown field "{e.path}"' for e in unknown)
    err = bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}: strict decoding error: {listed}')
    err.details = {
        "kind": kind,
        "causes": [
            {"reason": "FieldValueUnknown", "message": f'unknown field "{e.path}"', "field": e.path} for e in unknown
        ],
    }
    return err
