"""Value types shared by several services: the validated cluster spec, host identities and addresses.

These are the nouns of the system as they travel on the bus (inside message payloads) and
as the renderer consumes them. They carry host ids and addresses, never credentials.
Validation here is structural (names, versions, addresses); inventory-wide rules such as
"no host in two clusters" live with the inventory model in focom.

Addresses are parsed strictly and kept in one canonical text form (``IpAddress``/``IpNetwork``):
only ASCII hex digits, ``:`` and ``.`` are accepted, so an IPv6 zone id (``fe80::1%eth0``, and
whatever text follows the ``%``) is refused, and an IPv4-mapped IPv6 address (``::ffff:10.0.0.1``)
becomes the IPv4 address it names. Equal text therefore means the same machine, which every
uniqueness rule (one host per address, a VIP that is no host's address) relies on.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

# Every pattern here spells its classes in ASCII ([0-9], not \d): Python's \d also matches
# other scripts' digits, and int() accepts them (Arabic-Indic digits would read as a valid version).
DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
#: Kubernetes object names used for clusters must stay short enough for derived names
#: such as ``<cluster>-control-plane`` and ``cni-<cluster>-crs-0`` to remain valid labels.
MAX_CLUSTER_NAME = 40

ClusterName = Annotated[str, StringConstraints(pattern=DNS1123_LABEL, min_length=1, max_length=MAX_CLUSTER_NAME)]
Namespace = Annotated[str, StringConstraints(pattern=DNS1123_LABEL, min_length=1, max_length=63)]
#: A host name becomes the ByoHost and Node name, so it must be a DNS-1123 label.
HostName = Annotated[str, StringConstraints(pattern=DNS1123_LABEL, min_length=1, max_length=63)]
HOST_ID_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
#: Host ids become label values (``o2ims.oran.org/host-id=<id>``), so they follow label-value syntax.
HostId = Annotated[str, StringConstraints(pattern=HOST_ID_PATTERN, min_length=1, max_length=63)]

VERSION_PATTERN = r"^v?[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,6}$"
_VERSION = re.compile(r"^v?([0-9]{1,4})\.([0-9]{1,4})\.([0-9]{1,6})$")

DEFAULT_POD_CIDR = "10.244.0.0/16"
DEFAULT_SERVICE_CIDR = "10.96.0.0/12"

# ── addresses ────────────────────────────────────────────────────────────────────────────

IpAddr = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNet = ipaddress.IPv4Network | ipaddress.IPv6Network
#: The longest address text (IPv6 with an embedded IPv4 tail) and network text (plus ``/128``).
MAX_IP_TEXT = 45
MAX_CIDR_TEXT = 49
_IP_TEXT = re.compile(r"[0-9A-Fa-f:.]{2,45}")
_CIDR_TEXT = re.compile(r"[0-9A-Fa-f:.]{2,45}/[0-9]{1,3}")
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def parse_ip(value: object) -> IpAddr:
    """An IPv4 or IPv6 address, canonical (IPv4-mapped IPv6 → IPv4); ValueError for anything else.

    Refused before ``ipaddress`` sees it: non-text, over-long text, and any character outside ASCII
    hex digits, ``:`` and ``.``, so an IPv6 zone id (``%eth0``, or ``%`` followed by newlines, ``$()``
    or ``;``) never passes.
    """
    if not isinstance(value, str) or len(value) > MAX_IP_TEXT or not _IP_TEXT.fullmatch(value):
        raise ValueError("not an IP address (ASCII digits, a-f, ':' and '.' only; no zone id)")
    addr = ipaddress.ip_address(value)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def parse_cidr(value: object) -> IpNet:
    """A network in CIDR form with host bits zero, canonical (IPv4-mapped IPv6 → IPv4); ValueError otherwise."""
    if not isinstance(value, str) or len(value) > MAX_CIDR_TEXT or not _CIDR_TEXT.fullmatch(value):
        raise ValueError("not a network in CIDR form (ASCII address/prefix; no zone id)")
    net = ipaddress.ip_network(value, strict=True)
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96 and net.subnet_of(_MAPPED):
        mapped = net.network_address.ipv4_mapped
        assert mapped is not None
        return ipaddress.IPv4Network((mapped, net.prefixlen - 96))
    return net


def normalize_ip(value: object) -> str:
    """The canonical text of an address (what every comparison uses); ValueError if it is none."""
    return str(parse_ip(value))


def normalize_cidr(value: object) -> str:
    return str(parse_cidr(value))


#: An address as it travels on the bus and in specs: strictly parsed, stored canonical.
IpAddress = Annotated[str, StringConstraints(max_length=MAX_IP_TEXT), AfterValidator(normalize_ip)]
#: A network in CIDR form (host bits zero), strictly parsed, stored canonical.
IpNetwork = Annotated[str, StringConstraints(max_length=MAX_CIDR_TEXT), AfterValidator(normalize_cidr)]


def normalize_version(value: str) -> str:
    """Return ``vX.Y.Z`` for ``X.Y.Z`` or ``vX.Y.Z`` (ASCII digits only); raise ValueError otherwise."""
    m = _VERSION.fullmatch(value.strip(" ")) if isinstance(value, str) and len(value) <= 32 else None
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
    host_ip: IpAddress
    #: Where and as whom hostprep connects; credentials themselves never travel (see hostprep settings).
    ssh_port: int = Field(22, ge=1, le=65535)
    ssh_user: str = Field("root", pattern=r"^[a-z_][a-z0-9_-]{0,31}$", max_length=32)


class ClusterSpec(_Frozen):
    """Everything needed to render and watch one workload cluster."""

    name: ClusterName
    namespace: Namespace = "default"
    k8s_version: Annotated[str, StringConstraints(max_length=32)]
    control_plane: tuple[HostRef, ...] = Field(min_length=1)
    workers: tuple[HostRef, ...] = ()
    #: The floating control-plane address served by kube-vip; never one of the hosts' own addresses.
    #: None only for a single control-plane host: its own address is then the API endpoint (no kube-vip),
    #: which is why such a control plane can never grow (see ``endpoint``).
    vip: IpAddress | None = None
    pod_cidr: IpNetwork = DEFAULT_POD_CIDR
    service_cidr: IpNetwork = DEFAULT_SERVICE_CIDR
    #: Name of a CNI manifest known to the renderer's settings (``O2_CAPI_RENDERER_CNI_MANIFESTS``),
    #: or None to install no CNI through a ClusterResourceSet.
    cni: Annotated[str, StringConstraints(pattern=DNS1123_LABEL, min_length=1, max_length=63)] | None = None

    @field_validator("k8s_version")
    @classmethod
    def _version(cls, v: str) -> str:
        return normalize_version(v)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        n_cp = len(self.control_plane)
        if n_cp % 2 == 0:
            raise ValueError(f"control-plane host count must be odd, got {n_cp}")
        if self.vip is None and n_cp != 1:
            raise ValueError(
                f"a control plane of {n_cp} hosts needs a VIP (control_plane_endpoint or the VIP pool); a cluster "
                "without one uses its single control-plane host's address as the endpoint, so its control plane "
                "cannot be scaled"
            )
        ids = [h.host_id for h in self.all_hosts]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"host ids used more than once: {', '.join(dup)}")
        addresses = [h.host_ip for h in self.all_hosts]  # canonical text: equal text = same machine
        dup = sorted({a for a in addresses if addresses.count(a) > 1})
        if dup:
            raise ValueError(f"host addresses used by more than one host: {', '.join(dup)}")
        if self.vip is not None and self.vip in addresses:
            raise ValueError(f"VIP {self.vip} equals a host address; it must be a free address")
        pods, svcs = parse_cidr(self.pod_cidr), parse_cidr(self.service_cidr)
        if pods.version == svcs.version and pods.overlaps(svcs):
            raise ValueError(f"pod CIDR {self.pod_cidr} overlaps service CIDR {self.service_cidr}")
        named = [(f"host {h.host_id} address {h.host_ip}", h.host_ip) for h in self.all_hosts]
        if self.vip is not None:
            named.append((f"VIP {self.vip}", self.vip))
        for what, text in named:
            addr = parse_ip(text)
            for net in (pods, svcs):
                if addr.version == net.version and addr in net:
                    raise ValueError(f"{what} lies inside {net}")
        return self

    @property
    def endpoint(self) -> str:
        """The API server address: the VIP, or the single control-plane host's own address."""
        return self.vip if self.vip is not None else self.control_plane[0].host_ip

    @property
    def all_hosts(self) -> tuple[HostRef, ...]:
        return self.control_plane + self.workers

    @property
    def minor(self) -> tuple[int, int]:
        major, minor, _ = version_tuple(self.k8s_version)
        return major, minor
