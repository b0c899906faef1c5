"""Object metadata rules the API server applies to every object, and the error type of schema checks.

Split from ``shared.crd_schema`` (which re-exports ``FieldError`` and ``validate_metadata``): names
are RFC 1123 labels/subdomains, label and annotation keys are qualified names, label values are
short qualified names, finalizers are qualified names, owner references are complete. Every
pattern is matched against the whole string.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)


@dataclass(frozen=True)
class FieldError:
    """One validation failure: where (dotted path with ``[i]``/``[key]``), which rule, and a readable message."""

    path: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def show(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def invalid(path: str, rule: str, value: Any, text: str) -> FieldError:
    return FieldError(path, rule, f"Invalid value: {show(value)}: {text}")


def _qualified_ok(key: Any) -> bool:
    prefix, _, name = key.rpartition("/") if isinstance(key, str) else ("", "", "")
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(prefix)):
        return False
    return bool(name) and len(name) <= 63 and bool(_QUALIFIED_NAME.fullmatch(name))


_QUALIFIED_TEXT = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character (at most 63 characters)"
)


def _check_string_map(value: Any, path: str, errs: list[FieldError], *, labels: bool) -> None:
    if not isinstance(value, dict):
        errs.append(invalid(path, "type", value, f"{path} must be of type object"))
        return
    for key, val in value.items():
        sub = f"{path}[{key}]"
        if not _qualified_ok(key):
            errs.append(invalid(sub, "metadata", key, _QUALIFIED_TEXT))
        if not isinstance(val, str):
            errs.append(invalid(sub, "type", val, f"{sub} must be of type string"))
        elif labels and val and (len(val) > 63 or not _QUALIFIED_NAME.fullmatch(val)):
            errs.append(
                invalid(
                    sub,
                    "metadata",
                    val,
                    "a valid label must be an empty string or consist of "
                    "alphanumeric characters, '-', '_' or '.' (at most 63)",
                )
            )


def validate_metadata(meta: Any, path: str = "metadata", *, embedded: bool = False) -> list[FieldError]:
    """ObjectMeta rules the server applies to every object (and built-in kinds), whatever the schema says."""
    if not isinstance(meta, dict):
        return [invalid(path, "type", meta, f"{path} must be of type object")]
    errs: list[FieldError] = []
    name, namespace = meta.get("name"), meta.get("namespace")
    if not embedded and not name and not meta.get("generateName"):
        errs.append(FieldError(f"{path}.name", "required", "Required value: name or generateName is required"))
    if name is not None and (not isinstance(name, str) or len(name) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(name)):
        errs.append(
            invalid(
                f"{path}.name",
                "metadata",
                name,
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'",
            )
        )
    if namespace and (not isinstance(namespace, str) or len(namespace) > 63 or not _DNS1123_LABEL.fullmatch(namespace)):
        errs.append(invalid(f"{path}.namespace", "metadata", namespace, "a lowercase RFC 1123 label is required"))
    for key in ("labels", "annotations"):
        if meta.get(key) is not None:
            _check_string_map(meta[key], f"{path}.{key}", errs, labels=key == "labels")
    finalizers = meta.get("finalizers")
    if finalizers is not None and not isinstance(finalizers, list):
        errs.append(invalid(f"{path}.finalizers", "type", finalizers, "must be of type array"))
    errs.extend(
        invalid(f"{path}.finalizers[{i}]", "metadata", fin, _QUALIFIED_TEXT)
        for i, fin in enumerate(finalizers if isinstance(finalizers, list) else ())
        if not _qualified_ok(fin)
    )
    errs.extend(
        FieldError(f"{path}.ownerReferences[{i}].{key}", "required", "Required value")
        for i, ref in enumerate(meta.get("ownerReferences") or ())
        for key in ("apiVersion", "kind", "name", "uid")
        if not isinstance(ref, dict) or not ref.get(key)
    )
    if not embedded:
        errs.extend(
            FieldError(f"{path}.{key}", "unknown-field", f'unknown field "{path}.{key}"')
            for key in meta
            if key not in _META_FIELDS
        )
    return errs
