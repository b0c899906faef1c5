"""Value types shared by several services: the validated cluster spec and host identities.

These are the nouns of the system as they travel on the bus (inside message payloads) and
as the renderer consumes them. They carry host ids and addresses, never credentials.
Validation here is structural (names, versions, addresses); inventory-wide rules such as
"no host in two clusters" live with the inventory model in focom.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
#: Kubernetes object names used for clusters must stay short enough for derived names
#: such as ``<cluster>-control-plane`` and ``cni-<cluster>-crs-0`` to remain valid labels.
MAX_CLUSTER_NAME = 40

ClusterName = Annotated[str, StringConstraints(pattern=DNS1123_LABEL, min_length=1, max_length=MAX_CLUSTER_NAME)]
Namespace = Annotated[str, StringConstraints(pattern=DNS1123_LABEL, min_length=1, max_length=63)]
#: A host name becomes the ByoHost and Node name, so it must be a DNS-1123 label.
HostName = Annotated[str, StringConstraints(pattern=DNS1123_LABEL, min_length=1, max_length=63)]
#: Host ids become label values (``o2ims.oran.org/host-id=<id>``), so they follow label-value syntax.
HostId = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", min_length=1, max_length=63)
]

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")

DEFAULT_POD_CIDR = "10.244.0.0/16"
DEFAULT_SERVICE_CIDR = "10.96.0.0/12"


def normalize_version(value: str) -> str:
    """Return ``vX.Y.Z`` for ``X.Y.Z`` or ``vX.Y.Z``; raise ValueError otherwise."""
    m = _VERSION.fullmatch(value.strip())
    if not m:
        raise ValueError(f"Kubernetes version {value!r} is not of the form [v]X.Y.Z")
    return "v{}.{}.{}".format(*m.groups())


def version_tuple(value: str) -> tuple[int, int, int]:
    """``v1.30.2`` → ``(1, 30, 2)``."""
    m = _VERSION.fullmatch(normalize_version(value))
    assert m is not None
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HostRef(_Frozen):
    """One host as the cluster spec needs it: identity and address, no credentials."""

    host_id: HostId
    host_name: HostName
    host_ip: str
    #: Where and as whom hostprep connects; credentials themselves never travel (see hostprep settings).
    ssh_port: int = Field(22, ge=1, le=65535)
    ssh_user: str = Field("root", pattern=r"^[a-z_][a-z0-9_-]{0,31}$")

    @field_validator("host_ip")
    @classmethod
    def _ip(cls, v: str) -> str:
        return str(ipaddress.ip_address(v))


class ClusterSpec(_Frozen):
    """Everything needed to render and watch one workload cluster."""

    name: ClusterName
    namespace: Namespace = "default"
    k8s_version: str
    control_plane: tuple[HostRef, ...] = Field(min_length=1)
    workers: tuple[HostRef, ...] = ()
    #: The control-plane endpoint (kube-vip VIP); never one of the hosts' own addresses.
    vip: str
    pod_cidr: str = DEFAULT_POD_CIDR
    service_cidr: str = DEFAULT_SERVICE_CIDR
    #: Name of a CNI manifest known to the renderer's settings (``O2_CAPI_RENDERER_CNI_MANIFESTS``),
    #: or None to install no CNI through a ClusterResourceSet.
    cni: str | None = None

    @field_validator("k8s_version")
    @classmethod
    def _version(cls, v: str) -> str:
        return normalize_version(v)

    @field_validator("vip")
    @classmethod
    def _vip(cls, v: str) -> str:
        return str(ipaddress.ip_address(v))

    @field_validator("pod_cidr", "service_cidr")
    @classmethod
    def _cidr(cls, v: str) -> str:
        return str(ipaddress.ip_network(v, strict=True))

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if len(self.control_plane) % 2 == 0:
            raise ValueError(f"control-plane host count must be odd, got {len(self.control_plane)}")
        ids = [h.host_id for h in self.all_hosts]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"host ids used more than once: {', '.join(dup)}")
        if self.vip in {h.host_ip for h in self.all_hosts}:
            raise ValueError(f"VIP {self.vip} equals a host address; it must be a free address")
        pods, svcs = ipaddress.ip_network(self.pod_cidr), ipaddress.ip_network(self.service_cidr)
        if pods.version == svcs.version and pods.overlaps(svcs):
            raise ValueError(f"pod CIDR {self.pod_cidr} overlaps service CIDR {self.service_cidr}")
        for h in self.all_hosts:
            addr = ipaddress.ip_address(h.host_ip)
            for net in (pods, svcs):
                if addr.version == net.version and addr in net:
                    raise ValueError(f"host {h.host_id} address {h.host_ip} lies inside {net}")
        return self

    @property
    def all_hosts(self) -> tuple[HostRef, ...]:
        return self.control_plane + self.workers

    @property
    def minor(self) -> tuple[int, int]:
        major, minor, _ = version_tuple(self.k8s_version)
        return major, minor
