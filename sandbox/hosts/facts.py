"""What a sandbox host looks like from the inside: OS, kernel, network, sizes (configurable per host)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

GIB = 1024**3

# Packages a stock Ubuntu server image already carries (name -> version).
DEFAULT_PREINSTALLED: dict[str, str] = {
    "iproute2": "5.15.0-1ubuntu2",
    "curl": "7.81.0-1ubuntu1.16",
    "gpg": "2.2.27-3ubuntu2.1",
    "ca-certificates": "20240203~22.04.1",
    "iptables": "1.8.7-1ubuntu5.2",
}


@dataclass(frozen=True)
class HostFacts:
    """Facts a host reports; every field has an Ubuntu 22.04 x86_64 default."""

    os_id: str = "ubuntu"
    os_version_id: str = "22.04"
    os_pretty_name: str = "Ubuntu 22.04.4 LTS"
    os_codename: str = "jammy"
    arch: str = "x86_64"
    kernel_name: str = "Linux"
    kernel_release: str = "5.15.0-91-generic"
    cgroup_fs: str = "cgroup2fs"
    interface: str = "eth0"
    prefix_length: int = 24
    #: None means "<first three octets of the host IP>.254".
    gateway: str | None = None
    default_route: bool = True
    #: None means "the host name" (node-001, ...).
    hostname: str | None = None
    cpus: int = 4
    memory_bytes: int = 8 * GIB
    swap_bytes: int = 2 * GIB
    swap_enabled: bool = True
    var_free_bytes: int = 50 * GIB
    disk_bytes: int = 100 * GIB
    preinstalled: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PREINSTALLED))

    @property
    def dpkg_arch(self) -> str:
        return {"x86_64": "amd64", "aarch64": "arm64"}.get(self.arch, self.arch)

    def gateway_for(self, ip: str) -> str:
        if self.gateway:
            return self.gateway
        net = ipaddress.ip_network(f"{ip}/24", strict=False)
        return str(net.network_address + 254)

    def mac_for(self, ip: str) -> str:
        octets = [int(x) for x in ip.split(".")]
        return "52:54:00:{:02x}:{:02x}:{:02x}".format(*octets[1:])

    def os_release(self) -> str:
        version = self.os_pretty_name.removeprefix("Ubuntu ").removesuffix(" LTS")
        return (
            f'PRETTY_NAME="{self.os_pretty_name}"\n'
            f'NAME="{self.os_id.capitalize()}"\n'
            f'VERSION_ID="{self.os_version_id}"\n'
            f'VERSION="{version} ({self.os_codename.capitalize()})"\n'
            f"VERSION_CODENAME={self.os_codename}\n"
            f"ID={self.os_id}\n"
            "ID_LIKE=debian\n"
            f"UBUNTU_CODENAME={self.os_codename}\n"
        )

    def to_json(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> HostFacts:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)  # type: ignore[arg-type]
