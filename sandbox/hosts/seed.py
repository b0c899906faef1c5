"""The first boot of a sandbox host: its state directory, a stock Ubuntu-like fs root, and its initial state."""

from __future__ import annotations

import json
import os
from pathlib import Path

from . import kernel
from .facts import HostFacts
from .packages import UNIVERSE
from .state import STATE_FILE, HostState, PackageRecord, ServiceRecord, write_atomically
from .units import BASE_UNITS

HOST_FILE = "host.json"
ROOT_DIR = "root"

_DIRS = (
    "etc/apt/sources.list.d",
    "etc/apt/keyrings",
    "etc/apt/trusted.gpg.d",
    "etc/modules-load.d",
    "etc/sysctl.d",
    "etc/systemd/system/multi-user.target.wants",
    "etc/default",
    "lib/systemd/system",
    "usr/bin",
    "usr/sbin",
    "usr/local/bin",
    "usr/local/sbin",
    "usr/lib/sysctl.d",
    "var/lib/dpkg",
    "var/lib/apt/lists",
    "var/log",
    "var/tmp",
    "tmp",
    "root",
    "home",
    "opt",
    "run",
    "mnt",
    "srv",
)


def hosts_file() -> str:
    # Deliberately without the host's own name: host preparation must add it.
    return (
        "127.0.0.1 localhost\n\n# The following lines are desirable for IPv6 capable hosts\n"
        "::1     ip6-localhost ip6-loopback\nfe00::0 ip6-localnet\nff00::0 ip6-mcastprefix\n"
        "ff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n"
    )


def fstab_file(swap: bool) -> str:
    text = (
        "# /etc/fstab: static file system information.\n#\n"
        "# <file system> <mount point>   <type>  <options>       <dump>  <pass>\n"
        "/dev/disk/by-uuid/5a8c3f3e-6f0b-4c35-9a58-3b2a0d0e2f11 / ext4 defaults 0 1\n"
        "/dev/disk/by-uuid/1B2C-3D4E /boot/efi vfat defaults 0 1\n"
    )
    return text + ("/swap.img\tnone\tswap\tsw\t0\t0\n" if swap else "")


def _write(root: Path, vpath: str, text: str, mode: int = 0o644) -> None:
    path = root / vpath.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode | 0o600)


def init_host_dir(
    directory: Path,
    *,
    host_id: str,
    host_name: str,
    ip: str,
    user: str = "root",
    facts: HostFacts | None = None,
    port: int = 22,
) -> HostState:
    """Create a host's state dir (``host.json``, ``root/``, ``state.json``); an existing one is kept as is."""
    facts = facts or HostFacts()
    state_path = directory / STATE_FILE
    if (directory / HOST_FILE).is_file() and state_path.is_file():
        return HostState.load(state_path)
    directory.mkdir(parents=True, exist_ok=True)
    root = directory / ROOT_DIR
    for sub in _DIRS:
        (root / sub).mkdir(parents=True, exist_ok=True)
    if user != "root":
        (root / "home" / user).mkdir(parents=True, exist_ok=True)
    hostname = facts.hostname or host_name
    _write(root, "/etc/os-release", facts.os_release())
    _write(root, "/etc/hostname", hostname + "\n")
    _write(root, "/etc/hosts", hosts_file())
    _write(root, "/etc/fstab", fstab_file(facts.swap_enabled))
    _write(
        root,
        "/etc/apt/sources.list",
        "".join(
            f"deb http://archive.ubuntu.com/ubuntu {facts.os_codename}{suffix} main restricted universe\n"
            for suffix in ("", "-updates", "-security")
        ),
    )
    _write(root, "/etc/modules", "# /etc/modules: kernel modules to load at boot time.\n")
    _write(root, "/etc/sysctl.conf", "# /etc/sysctl.conf - Configuration file for setting system variables\n")
    _write(
        root,
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\n"
        + (f"{user}:x:1000:1000::/home/{user}:/bin/bash\n" if user != "root" else ""),
    )
    _write(root, "/etc/shadow", "root:*:19000:0:99999:7:::\n", 0o640)
    _write(root, "/etc/sudoers", "root ALL=(ALL:ALL) ALL\n%sudo ALL=(ALL:ALL) NOPASSWD: ALL\n", 0o440)
    if facts.swap_enabled:
        _write(root, "/swap.img", "sandbox swap file\n", 0o600)
    state = HostState(host_id=host_id, hostname=hostname)
    state.modules_loaded = set(kernel.BOOT_MODULES)
    state.sysctls = kernel.initial_sysctls()
    state.swap_active = [kernel.SWAP_FILE] if facts.swap_enabled else []
    for name, version in facts.preinstalled.items():
        state.packages[name] = PackageRecord(version)
        for binary in UNIVERSE[name].binaries if name in UNIVERSE else ():
            _write(root, binary, f"#!sandbox-shim {binary.rsplit('/', 1)[-1]}\n# {name} {version}\n", 0o755)
    for unit in BASE_UNITS:
        state.services[unit] = ServiceRecord(enabled=True, active="active", source="base")
    identity = {
        "host_id": host_id,
        "host_name": host_name,
        "ip": ip,
        "port": port,
        "user": user,
        "facts": facts.to_json(),
    }
    write_atomically(directory / HOST_FILE, json.dumps(identity, indent=1))
    write_atomically(state_path, state.dumps())
    return state


def read_identity(directory: Path) -> dict[str, object]:
    data = json.loads((directory / HOST_FILE).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{directory / HOST_FILE}: not a JSON object")
    return data
