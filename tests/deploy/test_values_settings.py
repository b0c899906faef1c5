"""The chart's values mirror the services' settings models, field by field (a renamed setting fails here)."""

from __future__ import annotations

import json
import os
import typing
from pathlib import Path
from typing import Any

import pytest
from annotated_types import Ge, Gt, Le, Lt
from pydantic.fields import FieldInfo

from shared.settings import ServiceSettings
from tests.deploy.chart import AUTH_VARIANTS, CHART, FULL_VALUES, load_values, merge, production_values, render
from tests.deploy.settings_schema import (
    COMMON_DERIVED,
    COMMON_UNOFFERED,
    SERVICE_DERIVED,
    SERVICES,
    env_names,
    field_schema,
    own_fields,
    settings_section,
)

SCHEMA = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))

#: Values for user-set fields whose default is None (a sample of the right shape).
SAMPLES: dict[str, Any] = {
    "templates_dir": "/mnt/templates",
    "kubeconfig": "/mnt/kubeconfig",
    "management_api_url": "https://10.0.0.1:6443",
    "management_ca_file": "/mnt/ca.pem",
    "agent_binary_url": "https://artifacts.example.com/byoh-{arch}",
    "agent_binary_sha256": "a" * 64,
    "kube_context": "admin@mgmt",
    "crd_dirs": ["/mnt/crds", "/mnt/more-crds"],
    "vip_pool": ["10.0.200.0/28", "10.0.201.10-10.0.201.20"],
    "cni_releases": {"calico": "https://mirror.example.com/calico/v3.28.2/calico.yaml"},
    "cni_sha256": {"calico": "b" * 64},
    "cni_sources": {"cilium": "/mnt/cni/cilium.yaml"},
    "cni_cache_dir": "/var/cache/cni",
}
#: None-default fields left out of the round trip, with the reason.
SKIPPED = {"agent_binary_file": "excludes agent_binary_url (the settings refuse both)"}


def _strip(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k != "description"}


def _check_section(section: dict[str, Any], cls: type[ServiceSettings], names: list[str]) -> None:
    assert section["type"] == "object" and section["additionalProperties"] is False
    actual = {name: _strip(prop) for name, prop in section["properties"].items()}
    expected = {name: field_schema(cls.model_fields[name]) for name in names}
    unknown = sorted(set(actual) - set(expected))
    missing = sorted(set(expected) - set(actual))
    assert not unknown, f"values.schema.json lists settings that {cls.__name__} does not have: {unknown}"
    assert not missing, (
        f"values.schema.json lacks settings of {cls.__name__}; add: {json.dumps({n: expected[n] for n in missing})}"
    )
    for name in names:
        assert actual[name] == expected[name], (
            f"{cls.__name__}.{name}: the schema says {json.dumps(actual[name])}, the model {json.dumps(expected[name])}"
        )


def test_common_settings_in_the_schema_are_the_model_fields() -> None:
    assert set(ServiceSettings.model_fields) >= COMMON_DERIVED, "a derived common field was renamed"
    names = [n for n in ServiceSettings.model_fields if n not in COMMON_DERIVED]
    _check_section(settings_section(SCHEMA, None), ServiceSettings, names)


@pytest.mark.parametrize("key", list(SERVICES))
def test_service_settings_in_the_schema_are_the_model_fields(key: str) -> None:
    cls, _ = SERVICES[key]
    assert SERVICE_DERIVED[key] <= set(own_fields(cls)), f"a derived field of {key} was renamed"
    names = [n for n in own_fields(cls) if n not in SERVICE_DERIVED[key]]
    _check_section(settings_section(SCHEMA, key), cls, names)


def test_the_check_notices_a_renamed_setting() -> None:
    cls, _ = SERVICES["hostprep"]
    names = [n for n in own_fields(cls) if n not in SERVICE_DERIVED["hostprep"]]
    section = json.loads(json.dumps(settings_section(SCHEMA, "hostprep")))
    section["properties"]["max_hosts_in_parallel"] = section["properties"].pop("max_parallel_hosts")
    with pytest.raises(AssertionError, match="max_hosts_in_parallel"):
        _check_section(section, cls, names)


def _renders() -> list[Any]:
    return [
        render(),
        render(production_values()),
        render(FULL_VALUES),
        *(render(merge(FULL_VALUES, v)) for v in AUTH_VARIANTS),
    ]


@pytest.mark.parametrize("key", list(SERVICES))
def test_every_rendered_variable_is_a_real_setting_and_every_setting_is_reachable(key: str) -> None:
    cls, _ = SERVICES[key]
    known = env_names(cls)
    rendered: set[str] = set()
    for r in _renders():
        names = {n for n in r.env(key) if n.startswith("O2_")}
        unknown = sorted(names - set(known))
        assert not unknown, f"{key} gets variables no settings field reads: {unknown}"
        rendered |= names
    user_set = {f"O2_{n.upper()}" for n in settings_section(SCHEMA, None)["properties"]}
    user_set |= {f"{cls.model_config['env_prefix']}{n.upper()}" for n in settings_section(SCHEMA, key)["properties"]}
    unoffered = {v for v, f in known.items() if f in COMMON_UNOFFERED}
    assert not unoffered & rendered, f"{key} gets a setting the chart must not offer: {sorted(unoffered & rendered)}"
    unreachable = sorted(set(known) - rendered - user_set - unoffered)
    assert not unreachable, f"settings of {key} no values can set: {unreachable}"
    derived = {v for v, f in known.items() if f in COMMON_DERIVED or f in SERVICE_DERIVED[key]} - unoffered
    assert derived <= rendered, f"derived settings of {key} never rendered: {sorted(derived - rendered)}"


def _bounds(field: FieldInfo) -> tuple[float | None, float | None]:
    lo = hi = None
    for m in field.metadata:
        if isinstance(m, Ge):
            lo = float(m.ge)
        elif isinstance(m, Gt):
            lo = float(m.gt) + 1
        elif isinstance(m, Le):
            hi = float(m.le)
        elif isinstance(m, Lt):
            hi = float(m.lt) - 1
    return lo, hi


def _sample(name: str, field: FieldInfo) -> Any:
    """A value for the field that differs from its default where the type allows."""
    if name in SAMPLES:
        return SAMPLES[name]
    default = field.default
    annotation = field.annotation
    if default is None or field.default_factory is not None:
        raise AssertionError(f"add a sample for {name} to SAMPLES (or to SKIPPED with a reason)")
    if isinstance(default, bool):
        return not default
    if isinstance(default, int | float):
        lo, hi = _bounds(field)
        candidate = default + 1 if hi is None or default + 1 <= hi else default - 1
        assert lo is None or candidate >= lo
        return candidate if isinstance(default, int) else candidate + 0.5
    literal = [a for a in typing.get_args(annotation) if isinstance(a, str)] if annotation is not str else []
    others = [a for a in literal if a != default]
    if others:
        return others[0]
    return str(default)


def _as_plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [_as_plain(v) for v in value]
    return value


@pytest.mark.parametrize("key", list(SERVICES))
def test_user_settings_reach_the_service_unchanged(key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Render every user-set field with a non-default value, then build the settings class from that env."""
    cls, _ = SERVICES[key]
    own = {n: _sample(n, cls.model_fields[n]) for n in settings_section(SCHEMA, key)["properties"] if n not in SKIPPED}
    common = {n: _sample(n, ServiceSettings.model_fields[n]) for n in settings_section(SCHEMA, None)["properties"]}
    values = merge(FULL_VALUES, {"settings": common, "services": {key: {"settings": own}}})
    env = render(values).env(key)
    for name in list(os.environ):
        if name.startswith("O2_"):
            monkeypatch.delenv(name)
    for name, var in env.items():
        if "value" in var:
            monkeypatch.setenv(name, var["value"])
        elif "valueFrom" in var:
            monkeypatch.setenv(name, "from-a-secret")
    settings = cls()
    for name, expected in {**common, **own}.items():
        assert _as_plain(getattr(settings, name)) == expected, name


@pytest.mark.parametrize("path", ["values.yaml", "values-production.yaml"])
def test_values_files_set_only_schema_settings(path: str) -> None:
    values = load_values(CHART / path)
    allowed = set(settings_section(SCHEMA, None)["properties"])
    assert set(values.get("settings", {})) <= allowed
    for key, svc in values.get("services", {}).items():
        assert set(svc.get("settings") or {}) <= set(settings_section(SCHEMA, key)["properties"]), key
