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

import os
import re
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, TypedDict

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError

from shared.errors import InputError
from shared.inventory_rules import check_rules, vip_required
from shared.models import (
    DEFAULT_POD_CIDR,
    DEFAULT_SERVICE_CIDR,
    DNS1123_LABEL,
    HOST_ID_PATTERN,
    MAX_CIDR_TEXT,
    MAX_CLUSTER_NAME,
    MAX_IP_TEXT,
    VERSION_PATTERN,
    ClusterSpec,
    HostRef,
    normalize_cidr,
    normalize_ip,
    normalize_version,
)
from shared.safe_json import JsonRefused, Problem, json_path, loads, short, structure_problems

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
LINUX_USER_PATTERN = r"^[a-z_][a-z0-9_-]{0,31}$"
#: Where ``ssh_key_file`` must point (where the Helm chart mounts the keys; ``O2_FOCOM_SSH_KEY_DIR`` and
#: ``O2_HOSTPREP_SSH_KEY_DIR`` override it): a key outside it, a ``..`` escape or a symlink out of it is refused.
DEFAULT_SSH_KEY_DIR = Path("/etc/focom-o2ims/ssh")
MAX_PASSWORD = 1024
MAX_PATH = 4096
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


# ── field types: each failure is a custom error whose type is the rule name ──────────────────


def _matcher(rule: str, pattern: str, what: str, max_length: int) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        # fullmatch: with match, "$" also matches before a trailing newline ("c1\n" would pass).
        if len(value) > max_length or not compiled.fullmatch(value):
            raise PydanticCustomError(rule, "{value} is not {what}", {"value": short(value), "what": what})
        return value

    return AfterValidator(check)


def _ip(value: str) -> str:
    try:
        return normalize_ip(value)
    except ValueError:
        raise PydanticCustomError("ip-address", "{value} is not an IP address (no zone id, ASCII only)",
                                  {"value": short(value)}) from None  # fmt: skip


def _cidr(value: str) -> str:
    try:
        return normalize_cidr(value)
    except ValueError as exc:
        raise PydanticCustomError("cidr", "{value} is not a network in CIDR form ({why})",
                                  {"value": short(value), "why": str(exc)[:80]}) from None  # fmt: skip


def _version(value: str) -> str:
    try:
        return normalize_version(value)
    except ValueError:
        raise PydanticCustomError("k8s-version", "{value} is not a Kubernetes version [v]X.Y.Z",
                                  {"value": short(value)}) from None  # fmt: skip


def _host_id_in(value: Any) -> Any:
    # Older inventories number their hosts (``"host_id": 1``); a host id is a label value, so text.
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    return value


def _labels(value: dict[str, str]) -> dict[str, str]:
    for key, val in value.items():
        if len(key) > 253 or not _LABEL_KEY.fullmatch(key) or len(key.rpartition("/")[2]) > 63:
            raise PydanticCustomError("label-key", "{key} is not a label key", {"key": short(key)})
        if len(val) > 63 or not _LABEL_VALUE.fullmatch(val):
            raise PydanticCustomError("label-value", "{value} is not a label value", {"value": short(val)})
    return value


def key_file_problem(value: str, key_dir: Path) -> str | None:
    """Why ``value`` is not an acceptable ``ssh_key_file`` under ``key_dir``, or None.

    A relative path names a file inside the key directory; an absolute one must lie inside it.
    ``..`` is refused outright (even when it would come back inside), and where the file can be
    seen here its real path (symlinks followed) must stay inside the directory's real path.
    """
    if not value or len(value) > MAX_PATH or any(ord(c) < 0x20 or c == "\x7f" for c in value):
        return "is not a usable file path"
    path = PurePosixPath(value)
    if ".." in path.parts:
        return "may not contain '..'"
    full = path if path.is_absolute() else PurePosixPath(key_dir) / path
    if not full.is_relative_to(PurePosixPath(key_dir)) or full == PurePosixPath(key_dir):
        return f"must be a file in the SSH key directory {key_dir}"
    if os.path.lexists(full):
        real, real_dir = Path(os.path.realpath(full)), Path(os.path.realpath(key_dir))
        if not real.is_relative_to(real_dir):
            return f"leads out of the SSH key directory {key_dir} (a symlink)"
    return None


def resolve_key_file(value: str, key_dir: Path) -> Path:
    """The key file's path (relative names are inside ``key_dir``); ValueError when it is not acceptable."""
    problem = key_file_problem(value, key_dir)
    if problem:
        raise ValueError(f"ssh_key_file {short(value)} {problem}")
    path = Path(value)
    return path if path.is_absolute() else key_dir / path


def _key_file(value: str, info: ValidationInfo) -> str:
    key_dir = Path((info.context or {}).get("ssh_key_dir") or DEFAULT_SSH_KEY_DIR)
    problem = key_file_problem(value, key_dir)
    if problem:
        rule = "path" if problem.startswith("is not") else "key-dir"
        raise PydanticCustomError(rule, "{value} {problem}", {"value": short(value), "problem": problem})
    return value


def _password(value: Any) -> Any:
    # Checked before SecretStr wraps it, so the rule is the same as every other over-long string.
    if isinstance(value, str) and len(value) > MAX_PASSWORD:
        raise PydanticCustomError("max-length", "the password is longer than {limit} characters",
                                  {"limit": MAX_PASSWORD})  # fmt: skip
    return value


def _schema(**extra: Any) -> Any:
    return Field(json_schema_extra=extra)


DnsLabel = Annotated[
    str, _matcher("dns1123", DNS1123_LABEL, "a DNS-1123 label (lower-case a-z, 0-9, '-', ≤ 63)", 63),
    _schema(pattern=DNS1123_LABEL, maxLength=63),
]  # fmt: skip
ClusterNameField = Annotated[
    str,
    _matcher("dns1123", DNS1123_LABEL, f"a DNS-1123 label of at most {MAX_CLUSTER_NAME} characters",
             MAX_CLUSTER_NAME),
    _schema(pattern=DNS1123_LABEL, maxLength=MAX_CLUSTER_NAME),
]  # fmt: skip


def _host_id_schema(schema: dict[str, Any]) -> None:
    schema.pop("type", None)
    schema["anyOf"] = [{"type": "string", "pattern": HOST_ID_PATTERN, "maxLength": 63},
                       {"type": "integer", "minimum": 0, "description": "older inventories number their hosts"}]


HostIdField = Annotated[
    str, BeforeValidator(_host_id_in),
    _matcher("label-value", HOST_ID_PATTERN, "a host id (label-value syntax, ≤ 63)", 63),
    Field(json_schema_extra=_host_id_schema),
]  # fmt: skip
# StringConstraints both enforce maxLength and publish it in the schema, so the two cannot disagree.
IpField = Annotated[
    str, StringConstraints(max_length=MAX_IP_TEXT), AfterValidator(_ip),
    _schema(anyOf=[{"format": "ipv4"}, {"format": "ipv6"}], pattern=r"^[0-9A-Fa-f:.]+$"),
]  # fmt: skip
CidrField = Annotated[
    str, StringConstraints(max_length=MAX_CIDR_TEXT), AfterValidator(_cidr),
    _schema(description="an IPv4 or IPv6 network, host bits zero", pattern=r"^[0-9A-Fa-f:.]+/[0-9]+$"),
]  # fmt: skip
VersionField = Annotated[str, StringConstraints(max_length=32), AfterValidator(_version),
                         _schema(pattern=VERSION_PATTERN)]  # fmt: skip
LinuxUser = Annotated[
    str, _matcher("linux-user", LINUX_USER_PATTERN, "a login name", 32),
    _schema(pattern=LINUX_USER_PATTERN, maxLength=32),
]  # fmt: skip


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
    host_pwd: Annotated[SecretStr, BeforeValidator(_password)] | None = Field(
        None, description="Accepted but discouraged: use keys", json_schema_extra={"maxLength": MAX_PASSWORD})
    ssh_port: int = Field(22, ge=1, le=65535, strict=True)
    ssh_key_file: Annotated[str, StringConstraints(max_length=MAX_PATH), AfterValidator(_key_file)] | None = Field(
        None, description="A private key file inside the SSH key directory (O2_FOCOM_SSH_KEY_DIR); relative names are "
        "taken inside it")  # fmt: skip
    labels: Annotated[dict[str, str], AfterValidator(_labels)] = Field(default_factory=dict, max_length=64)

    def ref(self) -> HostRef:
        """The bus-safe view: identity and address only."""
        return HostRef(host_id=self.host_id, host_name=self.host_name, host_ip=self.host_ip,
                       ssh_port=self.ssh_port, ssh_user=self.host_user)  # fmt: skip


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

    def cluster_spec(self, cluster: InventoryCluster, *, default_cni: str | None = "calico",
                     path: str | None = None, vip: str | None = None) -> ClusterSpec:  # fmt: skip
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
                path=f"{where}.control_plane_endpoint", reason="VipRequired",
            )  # fmt: skip
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
        super().__init__(f"{source} is invalid ({len(problems)} problem(s)): {shown}{more}",
                         path=problems[0].path if problems else "$", reason="InvalidInventory")  # fmt: skip
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
    data: Any, *, window: Window = DEFAULT_WINDOW, vip_pool: bool = False,
    ssh_key_dir: Path = DEFAULT_SSH_KEY_DIR, source: str = "inventory",
) -> Inventory:  # fmt: skip
    """Validate decoded JSON; returns the model or raises ``InventoryError`` with *all* problems.

    This is the one rule set: focom runs it for every request and ``o2ctl validate`` runs it with
    the same settings (``vip_pool``: whether a VIP pool is configured, so control planes of several
    hosts may come without a ``control_plane_endpoint``; ``ssh_key_dir``: where key files must be).
    """
    if not isinstance(data, dict):
        raise InventoryError([Problem("$", "type", f"the inventory must be a JSON object, not {type(data).__name__}")],
                             source=source)  # fmt: skip
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
        return [Problem("$.clusters", "no-clusters", "the inventory defines no clusters (allClusters has nothing to "
                        "create)")]  # fmt: skip
    if n > max_clusters:
        return [Problem("$.clusters", "max-items", f"the inventory has {n} clusters; at most {max_clusters} per "
                        "request")]  # fmt: skip
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
            raise InventoryError([Problem("$", "file-size", f"{size:,} bytes; the limit is {max_bytes:,}")],
                                 source=source)  # fmt: skip
        with file.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise InventoryError([Problem("$", "file", f"cannot read {file.name}: {exc.strerror or exc}")],
                             source=source) from None  # fmt: skip
    return parse_inventory(data, max_bytes=max_bytes, window=window, vip_pool=vip_pool, ssh_key_dir=ssh_key_dir,
                           source=source)  # fmt: skip


def inventory_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``input.json`` (``o2ctl schema inventory``)."""
    schema = Inventory.model_json_schema(mode="validation", by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://focom-o2ims.example/schemas/inventory.json",
        **schema,
        "title": "focom-o2ims inventory (input.json)",
    }
