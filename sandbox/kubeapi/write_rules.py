"""The rules a write applies to one object body: its options, its type and identity, its schema.

Type and identity checks compare the body with the URL; ``validate_write`` defaults or prunes it
against the CRD schema and reports only errors in the sections this write changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.crd_schema import CrdSchemas, FieldError
from shared.objects import meta

from . import builtins
from .errors import bad_request, invalid
from .registry import Registry, ResourceType


@dataclass
class WriteParams:
    """Per-request options of a write."""

    manager: str = ""
    field_validation: str = "Strict"
    dry_run: bool = False
    force: bool = False
    warnings: list[str] = field(default_factory=list)
    #: The authenticated user making the request (what admission webhooks see); None for the server's own writes.
    user: str | None = None


def without_rv(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` without its resourceVersion, to compare two versions of it."""
    return {**obj, "metadata": {k: v for k, v in meta(obj).items() if k != "resourceVersion"}}


def same_content(old: dict[str, Any], new: dict[str, Any], skip: tuple[str, ...]) -> bool:
    """Whether ``old`` and ``new`` agree on every top-level key but ``skip``."""
    keys = (set(old) | set(new)) - set(skip)
    return all(old.get(k) == new.get(k) for k in keys)


def validate_write(
    registry: Registry,
    rtype: ResourceType,
    version: str,
    old: dict[str, Any] | None,
    new: dict[str, Any],
    params: WriteParams,
) -> dict[str, Any]:
    """``new`` defaulted (or pruned) and validated; only errors in sections this write changes count."""
    if rtype.builtin:
        return builtins.normalize(rtype, old, new)
    schemas: CrdSchemas = registry.schemas
    fixed = ("apiVersion", "kind", "metadata")
    changed = {k for k in new if k not in fixed and (old is None or old.get(k) != new[k])}
    if params.field_validation == "Strict":
        out, dropped = schemas.apply_defaults(new), list[FieldError]()
    else:
        out, dropped = schemas.prune_unknown(new)
    if old is not None:
        # Sections this request leaves alone may have been written through another served version;
        # keep them byte for byte instead of re-defaulting them with this version's schema.
        for key in list(out):
            if key not in fixed and key not in changed and key in old:
                out[key] = old[key]
    errs = [e for e in schemas.validate(out) if e.path.split(".")[0].split("[")[0] in changed | {"metadata"}]
    unknown = [e for e in errs if e.rule == "unknown-field"]
    if unknown:
        raise builtins.api_error_for_unknown(rtype.kind, version, unknown)
    if errs:
        raise invalid(rtype.kind, rtype.group, str(meta(new).get("name", "")), [builtins.cause(e) for e in errs])
    if params.field_validation == "Warn":
        params.warnings.extend(f'unknown field "{e.path}"' for e in dropped)
    return out


def check_type(rtype: ResourceType, version: str, body: dict[str, Any]) -> None:
    api_version, kind = body.get("apiVersion"), body.get("kind")
    if rtype.builtin and not api_version and not kind:
        return
    if not kind:
        raise bad_request("Object 'Kind' is missing in the request body")
    if not api_version:
        raise bad_request("Object 'apiVersion' is missing in the request body")
    if kind != rtype.kind:
        raise bad_request(f"the kind in the body ({kind}) does not match the kind of the resource ({rtype.kind})")
    if api_version != rtype.api_version(version):
        raise bad_request(
            f"the API version in the data ({api_version}) does not match the expected API "
            f"version ({rtype.api_version(version)})"
        )


def check_identity(rtype: ResourceType, namespace: str, name: str, body: dict[str, Any]) -> None:
    md = meta(body)
    if md.get("name") and md["name"] != name:
        raise bad_request(f"the name of the object ({md['name']}) does not match the name on the URL ({name})")
    if rtype.namespaced and md.get("namespace") and md["namespace"] != namespace:
        raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
