"""The sandbox's package universe: Ubuntu archive packages, and the pkgs.k8s.io repositories when configured."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .vfs import FsError, HostFs

K8S_MINORS = range(26, 37)
K8S_PATCHES = range(16)
K8S_PACKAGES = ("kubelet", "kubeadm", "kubectl", "kubernetes-cni", "cri-tools")
K8S_REPO_RE = re.compile(r"https://pkgs\.k8s\.io/core:/stable:/v1\.(\d+)/deb/?")
ARMORED_PREFIX = b"-----BEGIN PGP PUBLIC KEY BLOCK-----"
#: What ``gpg --dearmor`` produces in the sandbox: a marker plus the key's checksum.
KEYRING_MAGIC = b"\x99\x01\x0dsandbox-keyring:"
ARCHIVE = "http://archive.ubuntu.com/ubuntu"


@dataclass(frozen=True)
class Package:
    name: str
    version: str = ""  # archive version; k8s packages take theirs from the repositories
    binaries: tuple[str, ...] = ()
    depends: tuple[str, ...] = ()
    #: systemd unit the package ships, and what the maintainer scripts do with it on install.
    unit: str | None = None
    exec_start: str = ""
    enable_on_install: bool = False
    start_on_install: bool = False
    config_file: str | None = None
    description: str = ""


UNIVERSE: dict[str, Package] = {
    p.name: p
    for p in (
        Package("socat", "1.7.4.1-3ubuntu4", ("/usr/bin/socat",)),
        Package("ebtables", "2.0.11-4build2", ("/usr/sbin/ebtables",)),
        Package("ethtool", "1:5.16-1ubuntu0.1", ("/usr/sbin/ethtool",)),
        Package("conntrack", "1:1.4.6-2build2", ("/usr/sbin/conntrack",)),
        Package("iptables", "1.8.7-1ubuntu5.2", ("/usr/sbin/iptables",)),
        Package("iproute2", "5.15.0-1ubuntu2", ("/usr/bin/ip",)),
        Package("curl", "7.81.0-1ubuntu1.16", ("/usr/bin/curl",)),
        Package("gpg", "2.2.27-3ubuntu2.1", ("/usr/bin/gpg",)),
        Package("ca-certificates", "20240203~22.04.1"),
        Package("apt-transport-https", "2.4.12"),
        Package("runc", "1.1.12-0ubuntu2~22.04.1", ("/usr/sbin/runc",)),
        Package(
            "containerd",
            "1.7.12-0ubuntu2~22.04.1",
            ("/usr/bin/containerd", "/usr/bin/ctr"),
            ("runc",),
            unit="containerd",
            exec_start="/usr/bin/containerd",
            enable_on_install=True,
            start_on_install=True,
            config_file="/etc/containerd/config.toml",
            description="containerd container runtime",
        ),
        Package(
            "kubelet",
            binaries=("/usr/bin/kubelet",),
            depends=("iptables", "iproute2", "ethtool", "ebtables", "socat", "conntrack", "kubernetes-cni"),
            unit="kubelet",
            exec_start="/usr/bin/kubelet",
            enable_on_install=True,
            description="kubelet: The Kubernetes Node Agent",
        ),
        Package(
            "kubeadm", binaries=("/usr/bin/kubeadm",), depends=("kubelet", "kubectl", "kubernetes-cni", "cri-tools")
        ),
        Package("kubectl", binaries=("/usr/bin/kubectl",)),
        Package("kubernetes-cni", binaries=("/opt/cni/bin/bridge", "/opt/cni/bin/loopback")),
        Package("cri-tools", binaries=("/usr/bin/crictl",)),
    )
}

# Binaries whose name is not the shim name.
BINARY_SHIM = {
    "/usr/bin/ctr": "ctr",
    "/usr/sbin/runc": "runc",
    "/opt/cni/bin/bridge": "cni-plugin",
    "/opt/cni/bin/loopback": "cni-plugin",
}


@dataclass(frozen=True)
class RepoLine:
    source_file: str
    minor: int
    keyring: str | None
    url: str


def configured_k8s_repos(fs: HostFs) -> list[RepoLine]:
    """pkgs.k8s.io ``deb`` lines in /etc/apt/sources.list and /etc/apt/sources.list.d/*.list."""
    files = ["/etc/apt/sources.list"]
    listed = _safe_listdir(fs, "/etc/apt/sources.list.d")
    files += [f"/etc/apt/sources.list.d/{n}" for n in listed if n.endswith(".list")]
    repos: list[RepoLine] = []
    for path in files:
        try:
            text = fs.read(path).decode("utf-8", "replace")
        except FsError:
            continue
        for raw in text.splitlines():
            line = raw.strip()
            if not line.startswith("deb "):
                continue
            m = K8S_REPO_RE.search(line)
            if not m:
                continue
            signed = re.search(r"signed-by=([^\s\]]+)", line)
            repos.append(RepoLine(path, int(m.group(1)), signed.group(1) if signed else None, m.group(0)))
    return repos


def keyring_problem(fs: HostFs, repo: RepoLine) -> str | None:
    """Why apt would reject the repository's signature, or None when the keyring is usable."""
    candidates = (
        [repo.keyring]
        if repo.keyring
        else [f"/etc/apt/trusted.gpg.d/{n}" for n in _safe_listdir(fs, "/etc/apt/trusted.gpg.d")]
    )
    for path in candidates:
        if path is None or not fs.is_file(path):
            continue
        data = fs.read(path)
        if data.startswith(KEYRING_MAGIC) or (data.startswith(ARMORED_PREFIX) and path.endswith(".asc")):
            return None
        if data.startswith(ARMORED_PREFIX):
            return f"The key(s) in the keyring {path} are ignored as the file has an unsupported filetype."
    return "NO_PUBKEY 234654DA9A296436"


def _safe_listdir(fs: HostFs, path: str) -> list[str]:
    try:
        return fs.listdir(path)
    except FsError:
        return []


def k8s_versions(minor: int) -> list[str]:
    return [f"1.{minor}.{patch}-1.1" for patch in K8S_PATCHES]


def available_versions(name: str, indexed: list[str]) -> list[str]:
    """Versions apt can see for a package given the indexed repositories (oldest first)."""
    pkg = UNIVERSE.get(name)
    if pkg is None:
        return []
    if name not in K8S_PACKAGES:
        return [pkg.version]
    minors = sorted(int(key.split(":1.")[1]) for key in indexed if key.startswith("k8s:"))
    return [v for minor in minors for v in k8s_versions(minor)]


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version.rsplit(":", maxsplit=1)[-1]))


def repo_url_for(name: str, version: str) -> str:
    if name in K8S_PACKAGES:
        minor = version.split(".")[1]
        return f"https://pkgs.k8s.io/core:/stable:/v1.{minor}/deb"
    return ARCHIVE


def upstream_version(version: str) -> str:
    """``1.30.2-1.1`` -> ``1.30.2`` (what the binaries report)."""
    return version.rsplit(":", maxsplit=1)[-1].split("-", maxsplit=1)[0]
