"""Shared helpers for the sandbox host tests."""

from __future__ import annotations

from typing import Any

import asyncssh

from tests.fixtures.sandbox_hosts import ssh_connect

#: The host-preparation recipe the tests drive (written the way the hostprep service will: quoted values,
#: sudo -n, check before act). Each entry is one SSH command line.
PREP_COMMANDS = [
    "sudo -n swapoff -a",
    "sudo -n sed -i '/\\sswap\\s/ s/^#*/#/' /etc/fstab",
    "printf 'overlay\\nbr_netfilter\\n' | sudo -n tee /etc/modules-load.d/k8s.conf >/dev/null",
    "lsmod | grep -q '^overlay ' || sudo -n modprobe overlay",
    "lsmod | grep -q '^br_netfilter ' || sudo -n modprobe br_netfilter",
    "printf 'net.bridge.bridge-nf-call-iptables = 1\\nnet.bridge.bridge-nf-call-ip6tables = 1\\n"
    "net.ipv4.ip_forward = 1\\n' | sudo -n tee /etc/sysctl.d/99-kubernetes-cri.conf >/dev/null",
    "sudo -n sysctl --system >/dev/null",
    "sudo -n mkdir -p -m 755 /etc/apt/keyrings",
    "test -f /etc/apt/keyrings/kubernetes-apt-keyring.gpg || curl -fsSL "
    "https://pkgs.k8s.io/core:/stable:/v1.30/deb/Release.key | sudo -n gpg --batch --yes --dearmor "
    "-o /etc/apt/keyrings/kubernetes-apt-keyring.gpg",
    "echo 'deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.30/deb/ /'"
    " | sudo -n tee /etc/apt/sources.list.d/kubernetes.list >/dev/null",
    "sudo -n apt-get update -qq",
    "sudo -n DEBIAN_FRONTEND=noninteractive apt-get install -y -qq socat ebtables ethtool conntrack containerd",
    "sudo -n DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --allow-change-held-packages "
    "kubelet=1.30.2-1.1 kubeadm=1.30.2-1.1 kubectl=1.30.2-1.1",
    "sudo -n apt-mark hold kubelet kubeadm kubectl",
    "sudo -n mkdir -p /etc/containerd",
    "test -f /etc/containerd/config.toml || containerd config default | sudo -n tee /etc/containerd/config.toml"
    " >/dev/null",
    "grep -q 'SystemdCgroup = true' /etc/containerd/config.toml || "
    "{ sudo -n sed -i 's/SystemdCgroup = false/SystemdCgroup = true/' /etc/containerd/config.toml && "
    "sudo -n systemctl restart containerd; }",
    "sudo -n systemctl enable --now containerd",
    "sudo -n systemctl enable kubelet",
    "grep -qE '[[:space:]]node-001([[:space:]]|$)' /etc/hosts || echo '127.0.1.1 node-001' | sudo -n tee -a /etc/hosts"
    " >/dev/null",
]


async def run_all(conn: asyncssh.SSHClientConnection, commands: list[str]) -> list[Any]:
    results = []
    for command in commands:
        result = await conn.run(command, check=False)
        assert result.exit_status == 0, (command, result.stdout, result.stderr)
        results.append(result)
    return results


async def run(pool: Any, command: str, host_id: str = "host-001", **kwargs: Any) -> asyncssh.SSHCompletedProcess:
    async with await ssh_connect(pool, host_id) as conn:
        return await conn.run(command, check=False, **kwargs)


def recorded_effects(state: Any) -> dict[str, Any]:
    """The parts of a host's state that host preparation is meant to change (no log, no timestamps)."""
    return {
        "packages": {name: (rec.version, rec.status) for name, rec in state.packages.items()},
        "holds": sorted(state.holds),
        "modules_loaded": sorted(state.modules_loaded),
        "sysctls": dict(state.sysctls),
        "swap_active": list(state.swap_active),
        "services": {
            name: (rec.enabled, rec.active, rec.start_count, rec.restart_count) for name, rec in state.services.items()
        },
        "files": {path: (rec.sha256, rec.mode) for path, rec in state.files.items()},
        "derived": dict(state.derived),
        "apt_indexed": list(state.apt_indexed),
    }
