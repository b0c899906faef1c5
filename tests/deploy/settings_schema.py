"""What the chart's values must say about the services' settings, derived from the settings models.

Each settings field is either *user-set* (listed by name in ``values.schema.json`` under
``settings`` for the common ``O2_*`` fields, or ``services.<key>.settings`` for a service's own) or
*chart-derived* (the chart computes it from other values: mounted file paths, the NATS connection,
the HTTP listener). ``field_schema`` is the JSON Schema a user-set field must have in the values
schema: its type, enum, bounds, pattern and default, straight from the pydantic field.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from services.capi_renderer.settings import CapiRendererSettings
from services.focom.settings import FocomSettings
from services.hostprep.settings import HostprepSettings
from services.o2ims.settings import O2imsSettings
from services.status_watcher.settings import StatusWatcherSettings
from shared.settings import ServiceSettings

#: values key -> (settings class, Python module under services/)
SERVICES: dict[str, tuple[type[ServiceSettings], str]] = {
    "focom": (FocomSettings, "focom"),
    "o2ims": (O2imsSettings, "o2ims"),
    "hostprep": (HostprepSettings, "hostprep"),
    "capiRenderer": (CapiRendererSettings, "capi_renderer"),
    "statusWatcher": (StatusWatcherSettings, "status_watcher"),
}

#: Common fields the chart derives (from nats.* and http.*); the rest of the common fields are user-set.
COMMON_DERIVED = frozenset(
    {
        "nats_url",
        "nats_user",
        "nats_password",
        "nats_token",
        "nats_creds_file",
        "nats_tls_ca",
        "nats_tls_cert",
        "nats_tls_key",
        "http_host",
        "http_port",
    }
)
#: Common fields the chart deliberately never sets: a token is one identity shared by every service, which
#: cannot carry per-service permissions (the chart gives each service its own user or .creds file).
COMMON_UNOFFERED = frozenset({"nats_token"})

#: Per service, the fields the chart derives from other values (mounts, RBAC-relevant switches).
SERVICE_DERIVED: dict[str, frozenset[str]] = {
    "focom": frozenset({"inventory_path", "templates_dir", "kube_enabled", "cr_namespace", "ssh_key_dir"}),
    "o2ims": frozenset({"mirror_enabled", "mirror_kubeconfig"}),
    "hostprep": frozenset(
        {
            "inventory_file",
            "ssh_key_file",
            "ssh_key_passphrase",
            "known_hosts_file",
            "pinned_host_keys_file",
            "kubeconfig",
            "ssh_key_dir",
        }
    ),
    "capiRenderer": frozenset({"kubeconfig", "cni_manifests"}),
    "statusWatcher": frozenset({"kubeconfig", "namespaces"}),
}


def env_prefix(cls: type[ServiceSettings]) -> str:
    return str(cls.model_config.get("env_prefix", ""))


def common_env_name(field: str) -> str:
    """The ``O2_*`` variable of a common field, read from the field's own alias (not assumed)."""
    alias = ServiceSettings.model_fields[field].validation_alias
    names = [c for c in getattr(alias, "choices", []) if isinstance(c, str) and c.startswith("O2_")]
    assert len(names) == 1, f"common field {field} has no single O2_ alias: {alias}"
    return names[0]


def env_names(cls: type[ServiceSettings]) -> dict[str, str]:
    """Every environment variable the class reads -> its field name."""
    out = {common_env_name(name): name for name in ServiceSettings.model_fields}
    for name in cls.model_fields:
        if name not in ServiceSettings.model_fields:
            out[f"{env_prefix(cls)}{name.upper()}"] = name
    return out


def own_fields(cls: type[ServiceSettings]) -> list[str]:
    return [n for n in cls.model_fields if n not in ServiceSettings.model_fields]


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True)."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        assert len(rest) == 1, annotation
        return rest[0], True
    return annotation, False


def _base(annotation: Any) -> dict[str, Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _base(typing.get_args(annotation)[0])
    if origin is typing.Literal:
        values = list(typing.get_args(annotation))
        return {"type": "string", "enum": values}
    if origin in (list, tuple):
        item = typing.get_args(annotation)[0]
        return {"type": "array", "items": _base(item)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _base(typing.get_args(annotation)[1])}
    simple = {bool: "boolean", int: "integer", float: "number", str: "string", Path: "string"}
    if annotation in simple:
        return {"type": simple[annotation]}
    raise AssertionError(f"no JSON Schema mapping for {annotation!r}: extend tests/deploy/settings_schema.py")


def field_schema(field: FieldInfo) -> dict[str, Any]:
    """The values-schema property a user-set settings field must have."""
    annotation, optional = _unwrap(field.annotation)
    assert annotation is not SecretStr, "secrets are never plain values: derive them from a Secret"
    schema = _base(annotation)
    for meta in field.metadata:
        if isinstance(meta, Ge):
            schema["minimum"] = meta.ge
        elif isinstance(meta, Gt):
            schema["exclusiveMinimum"] = meta.gt
        elif isinstance(meta, Le):
            schema["maximum"] = meta.le
        elif isinstance(meta, Lt):
            schema["exclusiveMaximum"] = meta.lt
        elif isinstance(meta, MinLen):
            schema["minLength"] = meta.min_length
        elif isinstance(meta, MaxLen):
            schema["maxLength"] = meta.max_length
        elif getattr(meta, "pattern", None) is not None:
            schema["pattern"] = meta.pattern
    if optional:
        schema["type"] = [schema["type"], "null"]
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
    if field.default is not PydanticUndefined and field.default_factory is None:
        default = field.default
        schema["default"] = str(default) if isinstance(default, Path) else default
    return schema


def settings_section(schema: dict[str, Any], key: str | None) -> dict[str, Any]:
    """The ``settings`` object of the values schema (``key`` None: the common one)."""
    if key is None:
        return schema["properties"]["settings"]
    return schema["properties"]["services"]["properties"][key]["properties"]["settings"]
