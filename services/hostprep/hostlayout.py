"""Where the recipes put things on a host: the files they write and the packages, kernel modules and
sysctls they manage. Shared by the prepare and teardown recipes and by the runner, so a path or a package
list is named once.
"""

from __future__ import annotations

BASE_PACKAGES = ("socat", "ebtables", "ethtool", "conntrack")
K8S_PACKAGES = ("kubelet", "kubeadm", "kubectl")
MODULES = ("overlay", "br_netfilter")
SYSCTLS = (
    ("net.bridge.bridge-nf-call-iptables", "1"),
    ("net.bridge.bridge-nf-call-ip6tables", "1"),
    ("net.ipv4.ip_forward", "1"),
)
MODULES_CONF = "/etc/modules-load.d/k8s.conf"
SYSCTL_CONF = "/etc/sysctl.d/99-kubernetes.conf"
CONTAINERD_CONF = "/etc/containerd/config.toml"
KEYRING = "/etc/apt/keyrings/kubernetes-apt-keyring.gpg"
REPO_LIST = "/etc/apt/sources.list.d/kubernetes.list"
BOOTSTRAP_KUBECONFIG = "/etc/byoh/bootstrap-kubeconfig.conf"
AGENT_UNIT_NAME = "byoh-hostagent"
AGENT_UNIT = f"/etc/systemd/system/{AGENT_UNIT_NAME}.service"
AGENT_CONFIG_DIR = "/root/.byoh"
AGENT_CONFIG = f"{AGENT_CONFIG_DIR}/config"
