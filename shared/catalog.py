"""The cluster templates of FOCOM's template mode and of O2IMS provisioning requests: name, version,
JSON Schema of ``templateParameters``, and how valid parameters become a cluster spec.

Templates are JSON files ``{"name", "version", "description", "parameters": <JSON Schema>}``: the
built-in ones in ``cluster_templates/`` beside this module (``byoh-workload-cluster`` v1.0.0) plus any
in the configured directory. A template's parameters become an inventory-style cluster, so the inventory's own rules
(host references, control-plane count, VIP, CIDRs, version window) apply to them as well; problems are
reported at ``$.templateParameters…`` paths.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError

from shared.errors import InputError
from shared.inventory import Inventory, InventoryCluster, InventoryError, Window, validate_inventory
from shared.models import ClusterSpec, normalize_version, version_tuple
from shared.safe_json import Problem, json_path

BUILTIN_DIR = Path(__file__).parent / "cluster_templates"
_KEYWORD_RULES = {"additionalProperties": "unknown-field", "required": "required", "type": "type"}
#: Template parameter names ↔ inventory cluster fields, for reporting inventory-rule problems at request paths.
PARAMETER_PATHS = {
    "cluster_name": ("clusterName",),
    "k8s_version": ("k8sVersion",),
    "cluster_masters": ("hosts", "masters"),
    "cluster_workers": ("hosts", "workers"),
    "host_id": ("hostId",),
    "control_plane_endpoint": ("controlPlaneEndpoint",),
    "pod_cidr": ("podCidr",),
    "service_cidr": ("serviceCidr",),
    "cni": ("cni",),
}


@dataclass(frozen=True)
class Template:
    name: str
    version: str
    description: str
    validator: Draft202012Validator

    def check(self, parameters: Any, root: tuple[object, ...] = ("templateParameters",)) -> list[Problem]:
        """Every schema violation of ``parameters``, each at its ``$.templateParameters…`` path."""
        problems = []
        for err in sorted(self.validator.iter_errors(parameters), key=lambda e: list(map(str, e.absolute_path))):
            rule = _KEYWORD_RULES.get(str(err.validator), str(err.validator))
            message = err.message if len(err.message) <= 200 else err.message[:197] + "..."
            problems.append(Problem(json_path((*root, *err.absolute_path)), rule, message))
        return problems


class Catalog:
    """Templates by (name, version); ``get`` without a version picks the newest."""

    def __init__(self, templates: list[Template]) -> None:
        self._by_key = {(t.name, t.version): t for t in templates}

    def names(self) -> list[str]:
        return sorted({name for name, _ in self._by_key})

    def get(self, name: str, version: str | None) -> Template | None:
        if version is not None:
            try:
                version = normalize_version(version if version.count(".") == 2 else version + ".0")
            except ValueError:
                return None
            return self._by_key.get((name, version))
        versions = [t for (n, _), t in self._by_key.items() if n == name]
        return max(versions, key=lambda t: version_tuple(t.version), default=None)

    def require(self, name: str, version: str | None) -> Template:
        found = self.get(name, version)
        if found is not None:
            return found
        known = ", ".join(f"{n} {v}" for n, v in sorted(self._by_key)) or "none"
        path = "$.templateVersion" if version is not None and self.get(name, None) else "$.templateName"
        raise InputError(
            f"{path} [template-exists]: no template {name!r}{f' {version}' if version else ''} (known: {known})",
            path=path,
            reason="UnknownTemplate",
        )


def _load_file(path: Path) -> Template:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        name, version, schema = doc["name"], normalize_version(doc["version"]), doc["parameters"]
        Draft202012Validator.check_schema(schema)
    except (OSError, ValueError, KeyError, TypeError, SchemaError) as exc:
        raise InputError(
            f"template file {path.name} is unusable: {type(exc).__name__}: {str(exc)[:200]}",
            path=str(path.name),
            reason="InvalidTemplate",
        ) from None
    if not isinstance(name, str) or not name:
        raise InputError(f"template file {path.name}: name must be a non-empty string", reason="InvalidTemplate")
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    return Template(name=name, version=version, description=str(doc.get("description", "")), validator=validator)


def load_catalog(extra_dir: Path | None = None) -> Catalog:
    """Built-in templates plus ``extra_dir/*.json`` (blocking: call at start-up, in a thread)."""
    files = sorted(BUILTIN_DIR.glob("*.json"))
    if extra_dir is not None:
        files += sorted(extra_dir.glob("*.json"))
    return Catalog([_load_file(f) for f in files])


def as_inventory_cluster(parameters: dict[str, Any]) -> dict[str, Any]:
    """Template parameters (already schema-valid) in the inventory's cluster vocabulary."""
    hosts = parameters.get("hosts") or {}
    cluster: dict[str, Any] = {
        "cluster_name": parameters["clusterName"],
        "k8s_version": parameters["k8sVersion"],
        "cluster_masters": [{"host_id": h["hostId"]} for h in hosts.get("masters", [])],
        "cluster_workers": [{"host_id": h["hostId"]} for h in hosts.get("workers", [])],
    }
    for param, field in (
        ("controlPlaneEndpoint", "control_plane_endpoint"),
        ("podCidr", "pod_cidr"),
        ("serviceCidr", "service_cidr"),
        ("cni", "cni"),
    ):
        if param in parameters:
            cluster[field] = parameters[param]
    return cluster


def parameter_path(inventory_path: str) -> str:
    """``$.clusters[0].cluster_masters[1].host_id`` → ``$.templateParameters.hosts.masters[1].hostId``."""
    parts: list[object] = ["templateParameters"]
    rest = inventory_path.removeprefix("$.clusters[0]").removeprefix("$")
    for token in rest.replace("[", ".[").split("."):
        if not token:
            continue
        if token.startswith("["):
            parts.append(int(token[1:-1]) if token[1:-1].isdigit() else token[1:-1])
        else:
            parts.extend(PARAMETER_PATHS.get(token, (token,)))
    return json_path(parts)


def resolve_entry(
    template: Template, parameters: Any, inventory: Inventory, *, window: Window, vip_pool: bool = False
) -> tuple[Inventory, InventoryCluster] | list[Problem]:
    """The parameters as a validated single-cluster inventory (hosts taken from ``inventory``) and its
    cluster; or every problem, at request paths.

    The parameters are checked against the template's schema first, then as an inventory cluster
    (host references, control-plane count, VIP, CIDRs, version window). ``vip_pool``: a VIP pool is
    configured, so a control plane of several hosts may come without ``controlPlaneEndpoint``.
    """
    problems = template.check(parameters)
    if problems:
        return problems
    synthetic = _synthetic_inventory(inventory, as_inventory_cluster(parameters))
    try:
        single = validate_inventory(synthetic, window=window, vip_pool=vip_pool)
    except InventoryError as exc:
        own = [
            Problem(parameter_path(x.path), x.rule, x.message)
            for x in exc.problems
            if x.path.startswith(("$.clusters[0]", "$.k8s_version"))
        ]
        return own or list(exc.problems)
    return single, single.clusters[0]


def resolve(
    template: Template,
    parameters: Any,
    inventory: Inventory,
    *,
    window: Window,
    default_cni: str | None,
    vip: str | None = None,
) -> ClusterSpec | list[Problem]:
    """The cluster ``parameters`` ask for as a spec (``vip``: one allocated from a pool); or every problem."""
    entry = resolve_entry(template, parameters, inventory, window=window, vip_pool=vip is not None)
    if isinstance(entry, list):
        return entry
    single, cluster = entry
    try:
        return single.cluster_spec(cluster, default_cni=default_cni, path="$.clusters[0]", vip=vip)
    except InputError as exc:
        return [Problem(parameter_path(exc.path), "vip-required", exc.message.split(": ", 1)[-1])]


def _synthetic_inventory(inventory: Inventory, cluster: dict[str, Any]) -> dict[str, Any]:
    hosts = [h.model_dump(mode="json", exclude={"host_pwd", "ssh_key_file"}) for h in inventory.hosts]
    return {
        "namespace": inventory.namespace,
        "k8s_version": cluster["k8s_version"],
        "hosts": hosts,
        "clusters": [cluster],
    }
