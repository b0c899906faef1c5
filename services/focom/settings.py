"""Settings of the focom service (environment prefix ``O2_FOCOM_``, common fields ``O2_*``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from shared.inventory import DEFAULT_MAX_BYTES, DEFAULT_SSH_KEY_DIR, InventoryRules, Window
from shared.models import DNS1123_LABEL, version_tuple
from shared.settings import ServiceSettings
from shared.vips import Entry, parse_pool

_MINOR = re.compile(r"v?([0-9]{1,4})\.([0-9]{1,4})(\.[0-9]{1,6})?")


def _pool_items(value: Any) -> Any:
    # Comma-separated in the environment (``10.0.0.0/28,10.0.1.10-10.0.1.20``) or a JSON list (as the
    # chart renders list values); a list from code.
    if isinstance(value, str):
        if value.lstrip().startswith("["):
            return json.loads(value)
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class FocomSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="O2_FOCOM_", extra="ignore", populate_by_name=True, frozen=True)

    #: The inventory (``input.json``); re-read (when changed) for every request.
    inventory_path: Path = Path("input.json")
    #: Larger inventories are refused unread.
    inventory_max_bytes: int = Field(DEFAULT_MAX_BYTES, ge=1024, le=256 * 1024 * 1024)
    #: The supported Kubernetes window, inclusive, as ``vX.Y`` (patch versions are all accepted).
    k8s_min_version: str = "v1.29"
    k8s_max_version: str = "v1.36"
    #: Extra template files (``*.json``: name, version, JSON Schema of the parameters) beside the built-in ones.
    templates_dir: Path | None = None
    #: The CNI of clusters whose inventory entry has no ``cni`` field (null there means none).
    default_cni: str | None = Field("calico", pattern=DNS1123_LABEL, max_length=63)
    #: Most clusters one request may fan out to (one FPR record, under NATS's 1 MiB value limit, lists them all).
    max_clusters_per_request: int = Field(1000, ge=1, le=2000)
    #: Check that every host's SSH port answers with an SSH banner before reserving it.
    ssh_preflight: bool = False
    ssh_preflight_timeout: float = Field(3.0, gt=0, le=60)
    ssh_preflight_concurrency: int = Field(64, ge=1, le=1024)
    #: Change control: a new create request waits in ``PendingApproval`` (nothing leased or prepared) until an
    #: approver approves it (``focom.decision``), when it is validated and checked for feasibility again.
    require_approval: bool = False
    #: The Kubernetes face: watch FocomProvisioningRequest CRs and write their status (on in the Helm chart).
    kube_enabled: bool = False
    #: Kubeconfig of the cluster holding the CRs; None = in-cluster service account (mounted kubeconfig path).
    kubeconfig: Path | None = None
    #: Namespace watched for CRs; None watches every namespace.
    cr_namespace: str | None = Field(None, pattern=DNS1123_LABEL, max_length=63)
    kube_timeout: float = Field(15.0, gt=0, le=300)
    #: Control-plane VIPs for clusters of several control-plane hosts whose inventory entry names no
    #: ``control_plane_endpoint``: comma-separated CIDRs (network and broadcast excluded) and ``first-last``
    #: ranges. Empty: such clusters are refused (``vip-required``).
    vip_pool: Annotated[list[str], NoDecode, BeforeValidator(_pool_items)] = []
    #: ``ssh_key_file`` in the inventory must name a file in this directory (checked by every validation).
    ssh_key_dir: Path = DEFAULT_SSH_KEY_DIR

    @field_validator("k8s_min_version", "k8s_max_version")
    @classmethod
    def _minor(cls, value: str) -> str:
        m = _MINOR.fullmatch(value.strip())  # ASCII digits only (str.isdigit takes any script's)
        if m is None:
            raise ValueError(f"{value!r} is not a Kubernetes version vX.Y")
        return f"v{int(m.group(1))}.{int(m.group(2))}"

    @field_validator("vip_pool")
    @classmethod
    def _pool(cls, value: list[str]) -> list[str]:
        parse_pool(value)  # refuses a malformed entry at start, naming it
        return value

    @property
    def vip_pool_entries(self) -> tuple[Entry, ...]:
        return parse_pool(self.vip_pool)

    def inventory_rules(self) -> InventoryRules:
        """How this focom validates inventories; ``o2ctl validate`` reads the same settings and passes these."""
        return InventoryRules(
            max_bytes=self.inventory_max_bytes,
            window=self.k8s_window,
            vip_pool=bool(self.vip_pool),
            ssh_key_dir=self.ssh_key_dir,
        )

    @property
    def k8s_window(self) -> Window:
        lo = version_tuple(self.k8s_min_version + ".0")
        hi = version_tuple(self.k8s_max_version + ".0")
        return (lo[0], lo[1]), (hi[0], hi[1])
