"""The inventory (``input.json``): its pydantic model, its JSON Schema, and validation that reports every problem.

Backward compatible with the files users already have (``k8s_version``; ``hosts[]`` with
``host_id, host_name, host_ip, host_user, host_pwd``; ``clusters[]`` with ``cluster_name,
cluster_masters[{host_id}], cluster_workers[{host_id}]``), plus the optional fields of DESIGN §4.
Validation has two layers run together so that one pass reports everything: field rules in the
model (names, addresses, versions, unknown fields) and inventory-wide rules in
``shared.inventory_rules`` (uniqueness, references, control-plane count, VIP, CIDRs, version window).
Every problem names its JSON path and rule. The same model serves focom (clusters → ``ClusterSpec``),
``o2ctl validate``/``o2ctl schema inventory`` and hostprep (credentials by host id, which never travel).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, ValidationError

from shared.errors import InputError
from shared.inventory_fields import (
    DEFAULT_SSH_KEY_DIR,
    MAX_PASSWORD,
    CidrField,
    ClusterNameField,
    DnsLabel,
    HostIdField,
    IpField,
    KeyFileField,
    Labels,
    LinuxUser,
    PasswordField,
    VersionField,
    key_file_problem,
    resolve_key_file,
)
from shared.inventory_rules import check_rules, vip_required
from shared.models import DEFAULT_POD_CIDR, DEFAULT_SERVICE_CIDR, ClusterSpec, HostRef
from shared.safe_json import JsonRefused, Problem, json_path, loads, structure_problems

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_SSH_KEY_DIR",
    "DEFAULT_WINDOW",
    "Inventory",
    "InventoryCluster",
    "InventoryError",
    "InventoryHost",
    "InventoryRules",
    "Problem",
    "Window",
    "all_clusters_problems",
    "inventory_json_schema",
    "key_file_problem",
    "load_inventory",
    "parse_inventory",
    "resolve_key_file",
    "validate_inventory",
]

#: Inventories larger than this are refused unread (a setting overrides it).
DEFAULT_MAX_BYTES = 8 * 1024 * 1024
#: The Kubernetes minors supported by default, inclusive (a setting overrides it).
#: An inclusive range of Kubernetes (major, minor) versions.
Window = tuple[tuple[int, int], tuple[int, int]]
DEFAULT_WINDOW: Window = ((1, 29), (1, 36))
MAX_HOSTS = 20_000
MAX_CLUSTERS = 10_000


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, hide_input_in_errors=True)


class HostSelector(_Model):
    """A reference to a host of ``hosts[]`` by id."""

    host_id: HostIdField


class InventoryHost(_Model):
    """One bare-metal host: identity, address, SSH login. Credentials stay with the host, off the bus."""

    host_id: HostIdField
    host_name: DnsLabel = Field(description="Becomes the Node and ByoHost name")
    host_ip: IpField
    host_user: LinuxUser = "root"
    host_pwd: PasswordField | None = Field(
        None, description="Accepted but discouraged: use keys", json_schema_extra={"maxLength": MAX_PASSWORD}
    )
    ssh_port: int = Field(22, ge=1, le=65535, strict=True)
    ssh_key_file: KeyFileField | None = Field(
        None,
        description="A private key file inside the SSH key directory (O2_FOCOM_SSH_KEY_DIR); relative names are "
        "taken inside it",
    )
    labels: Labels = Field(default_factory=dict, max_length=64)

    def ref(self) -> HostRef:
        """The bus-safe view: identity and address only."""
        return HostRef(
            host_id=self.host_id,
            host_name=self.host_name,
            host_ip=self.host_ip,
            ssh_port=self.ssh_port,
            ssh_user=self.host_user,
        )


class InventoryCluster(_Model):
    """One wanted workload cluster: its hosts by role and optional version and network settings."""

    cluster_name: ClusterNameField
    cluster_masters: list[HostSelector] = Field(max_length=99)
    cluster_workers: list[HostSelector] = Field(default_factory=list, max_length=MAX_HOSTS)
    k8s_version: VersionField | None = None
    control_plane_endpoint: IpField | None = Field(None, description="The control-plane VIP (kube-vip)")
    pod_cidr: CidrField | None = None
    service_cidr: CidrField | None = None
    cni: DnsLabel | None = Field(None, description="A CNI known to the renderer; null for none, absent for default")

    @property
    def master_ids(self) -> list[str]:
        return [h.host_id for h in self.cluster_masters]

    @property
    def worker_ids(self) -> list[str]:
        return [h.host_id for h in self.cluster_workers]


class Inventory(_Model):
    """The whole ``input.json``."""

    schema_ref: str | None = Field(None, alias="$schema", max_length=2048)
    schema_version: Literal[1] = 1
    namespace: DnsLabel = "default"
    k8s_version: VersionField
    hosts: list[InventoryHost] = Field(max_length=MAX_HOSTS)
    clusters: list[InventoryCluster] = Field(default_factory=list, max_length=MAX_CLUSTERS)

    model_config = ConfigDict(populate_by_name=True)

    _host_index: dict[str, InventoryHost] | None = PrivateAttr(None)

    def host(self, host_id: str) -> InventoryHost | None:
        return self._hosts().get(host_id)

    def _hosts(self) -> dict[str, InventoryHost]:
        if self._host_index is None:
            self._host_index = {h.host_id: h for h in self.hosts}
        return self._host_index

    def cluster(self, name: str) -> InventoryCluster | None:
        return next((c for c in self.clusters if c.cluster_name == name), None)

    def cluster_index(self, name: str) -> int:
        return next((i for i, c in enumerate(self.clusters) if c.cluster_name == name), -1)

    def cluster_spec(
        self,
        cluster: InventoryCluster,
        *,
        default_cni: str | None = "calico",
        path: str | None = None,
        vip: str | None = None,
    ) -> ClusterSpec:
        """The bus-safe ``ClusterSpec`` of a validated cluster (hosts resolved, defaults applied).

        ``vip`` is the address allocated from the VIP pool for a cluster whose inventory entry names no
        ``control_plane_endpoint`` (the inventory's own endpoint always wins). A single control-plane
        host without either gets no VIP: its own address is the endpoint. Raises ``InputError`` naming
        ``path`` when the cluster cannot be rendered (several control-plane hosts and no VIP).
        """
        where = path or json_path(("clusters", self.cluster_index(cluster.cluster_name)))
        endpoint = cluster.control_plane_endpoint or vip
        if endpoint is None and len(cluster.cluster_masters) > 1:
            raise InputError(
                f"{where}.control_plane_endpoint [vip-required]: {vip_required(len(cluster.cluster_masters))}",
                path=f"{where}.control_plane_endpoint",
                reason="VipRequired",
            )
        hosts = self._hosts()
        cni = cluster.cni if "cni" in cluster.model_fields_set else default_cni
        try:
            return ClusterSpec(
                name=cluster.cluster_name,
                namespace=self.namespace,
                k8s_version=cluster.k8s_version or self.k8s_version,
                control_plane=tuple(hosts[i].ref() for i in cluster.master_ids),
                workers=tuple(hosts[i].ref() for i in cluster.worker_ids),
                vip=endpoint,
                pod_cidr=cluster.pod_cidr or DEFAULT_POD_CIDR,
                service_cidr=cluster.service_cidr or DEFAULT_SERVICE_CIDR,
                cni=cni,
            )
        except (KeyError, ValidationError) as exc:  # only for an inventory that skipped validation
            raise InputError(f"{where} [cluster-spec]: {exc}", path=where, reason="InvalidInventory") from None

    def credentials(self, host_id: str, key_dir: Path = DEFAULT_SSH_KEY_DIR) -> tuple[Path | None, SecretStr | None]:
        """For hostprep: the host's SSH key file (inside ``key_dir``) and password (either may be None)."""
        host = self.host(host_id)
        if host is None:
            return None, None
        return (resolve_key_file(host.ssh_key_file, key_dir) if host.ssh_key_file else None), host.host_pwd


class InventoryRules(TypedDict):
    """The deployment's settings the rules depend on (focom's; ``o2ctl validate`` reads the same)."""

    max_bytes: int
    window: Window
    vip_pool: bool
    ssh_key_dir: Path


class InventoryError(InputError):
    """The inventory is invalid; ``problems`` lists every failure (path, rule, message)."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...], *, source: str = "inventory") -> None:
        shown = "; ".join(str(p) for p in problems[:50])
        more = f"; … and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(
            f"{source} is invalid ({len(problems)} problem(s)): {shown}{more}",
            path=problems[0].path if problems else "$",
            reason="InvalidInventory",
        )
        self.problems = tuple(problems)


_RULES = {
    "missing": "required",
    "extra_forbidden": "unknown-field",
    "string_too_long": "max-length",
    "too_long": "max-items",
    "too_short": "min-items",
    "greater_than_equal": "range",
    "less_than_equal": "range",
    "literal_error": "enum",
}


def _from_pydantic(exc: ValidationError) -> list[Problem]:
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        kind = str(err["type"])
        rule = _RULES.get(kind) or ("type" if kind.endswith(("_type", "_parsing")) else kind)
        out.append(Problem(json_path(err["loc"]), rule, str(err["msg"])))
    return out


def validate_inventory(
    data: Any,
    *,
    window: Window = DEFAULT_WINDOW,
    vip_pool: bool = False,
    ssh_key_dir: Path = DEFAULT_SSH_KEY_DIR,
    source: str = "inventory",
) -> Inventory:
    """Validate decoded JSON; returns the model or raises ``InventoryError`` with *all* problems.

    This is the one rule set: focom runs it for every request and ``o2ctl validate`` runs it with
    the same settings (``vip_pool``: whether a VIP pool is configured, so control planes of several
    hosts may come without a ``control_plane_endpoint``; ``ssh_key_dir``: where key files must be).
    """
    if not isinstance(data, dict):
        raise InventoryError(
            [Problem("$", "type", f"the inventory must be a JSON object, not {type(data).__name__}")], source=source
        )
    problems = structure_problems(data)
    if any(p.rule == "max-depth" for p in problems):
        raise InventoryError(problems, source=source)
    model: Inventory | None = None
    try:
        model = Inventory.model_validate(data, context={"ssh_key_dir": ssh_key_dir})
    except ValidationError as exc:
        problems.extend(_from_pydantic(exc))
    problems.extend(check_rules(data, window, vip_pool=vip_pool))
    if problems:
        raise InventoryError(_dedupe(problems), source=source)
    assert model is not None
    return model


def all_clusters_problems(inventory: Inventory, *, max_clusters: int) -> list[Problem]:
    """What refuses an ``allClusters`` request for a valid inventory: no clusters, or more than one request takes."""
    n = len(inventory.clusters)
    if n == 0:
        return [
            Problem(
                "$.clusters", "no-clusters", "the inventory defines no clusters (allClusters has nothing to create)"
            )
        ]
    if n > max_clusters:
        return [
            Problem("$.clusters", "max-items", f"the inventory has {n} clusters; at most {max_clusters} per request")
        ]
    return []


def _dedupe(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


def parse_inventory(
    data: bytes | str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    window: Window = DEFAULT_WINDOW,
    vip_pool: bool = False,
    ssh_key_dir: Path = DEFAULT_SSH_KEY_DIR,
    source: str = "inventory",
) -> Inventory:
    """Parse and validate an inventory document (bytes from a file, or text); hostile input is refused."""
    try:
        value, _ = loads(data, max_bytes=max_bytes, what=source)
    except JsonRefused as exc:
        raise InventoryError(exc.problems, source=source) from None
    return validate_inventory(value, window=window, vip_pool=vip_pool, ssh_key_dir=ssh_key_dir, source=source)


def load_inventory(
    path: str | Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    window: Window = DEFAULT_WINDOW,
    vip_pool: bool = False,
    ssh_key_dir: Path = DEFAULT_SSH_KEY_DIR,
) -> Inventory:
    """Read and validate an inventory file (blocking: call it through ``asyncio.to_thread``)."""
    file = Path(path)
    source = f"inventory {file.name}"
    try:
        size = file.stat().st_size
        if size > max_bytes:
            raise InventoryError(
                [Problem("$", "file-size", f"{size:,} bytes; the limit is {max_bytes:,}")], source=source
            )
        with file.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise InventoryError(
            [Problem("$", "file", f"cannot read {file.name}: {exc.strerror or exc}")], source=source
        ) from None
    return parse_inventory(
        data, max_bytes=max_bytes, window=window, vip_pool=vip_pool, ssh_key_dir=ssh_key_dir, source=source
    )


def inventory_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``input.json`` (``o2ctl schema inventory``)."""
    schema = Inventory.model_json_schema(mode="validation", by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://focom-o2ims.example/schemas/inventory.json",
        **schema,
        "title": "focom-o2ims inventory (input.json)",
    }
