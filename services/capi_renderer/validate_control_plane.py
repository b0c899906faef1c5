"""Render invariants of the control plane: endpoint/VIP, replicas, version, kube-vip, kubeadm node registration.

Also the super-admin.conf swap kube-vip needs during ``kubeadm init`` from Kubernetes 1.29 on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from services.capi_renderer.domain import (
    AGENT_NIC_PLACEHOLDER,
    KUBE_VIP_PATH,
    KUBEADM_INIT_MARKER,
    SUPER_ADMIN_CONF,
    control_plane_max_surge,
    get,
    uses_super_admin,
)
from services.capi_renderer.render import load_yaml
from services.capi_renderer.validate_context import CheckContext

_NIC = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9_.@:]{0,14}$")
REQUIRED_PREFLIGHT_IGNORES = ("DirAvailable--etc-kubernetes-manifests", "FileAvailable--etc-kubernetes-kubelet.conf")


def _kube_vip(ctx: CheckContext, kcp: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any]]:
    """The kube-vip file's content and its env as a map (checking the file entry on the way)."""
    files = get(kcp, "spec.kubeadmConfigSpec.files") or []
    for i, entry in enumerate(files if isinstance(files, list) else []):
        if get(entry, "path") != KUBE_VIP_PATH:
            continue
        if get(entry, "owner") != "root:root":
            ctx.add(kcp, f"spec.kubeadmConfigSpec.files[{i}].owner", "kube-vip", "must be root:root")
        content = get(entry, "content")
        try:
            pod = load_yaml(content) if isinstance(content, str) else None
        except yaml.YAMLError as exc:
            ctx.add(kcp, f"spec.kubeadmConfigSpec.files[{i}].content", "kube-vip", f"not YAML: {exc}")
            return None, {}
        containers = get(pod, "spec.containers") or [{}]
        env = {str(e.get("name")): e.get("value") for e in get(containers[0], "env", []) if isinstance(e, Mapping)}
        return content, env
    ctx.add(kcp, "spec.kubeadmConfigSpec.files", "kube-vip", f"no static pod file at {KUBE_VIP_PATH}")
    return None, {}


def check_control_plane(ctx: CheckContext) -> None:
    """Every control-plane issue of the render: ByoCluster endpoint, KubeadmControlPlane and its kube-vip pod."""
    spec, n = ctx.spec, ctx.names
    kcp, byo = ctx.find("KubeadmControlPlane", n.control_plane), ctx.find("ByoCluster", n.cluster)
    host_ips = {h.host_ip for h in spec.all_hosts}
    # The endpoint is the VIP, or, for a single control plane without one, that host's own address.
    what = "the VIP" if spec.vip is not None else "the control-plane host's address"
    if byo is not None:
        host = get(byo, "spec.controlPlaneEndpoint.host")
        if host != spec.endpoint:
            ctx.add(byo, "spec.controlPlaneEndpoint.host", "vip", f"{host!r} is not {what} {spec.endpoint}")
        if spec.vip is not None and host in host_ips:
            ctx.add(byo, "spec.controlPlaneEndpoint.host", "vip-not-host", f"{host} is a host's own address")
        if get(byo, "spec.controlPlaneEndpoint.port") != ctx.options.control_plane_port:
            ctx.add(byo, "spec.controlPlaneEndpoint.port", "vip", f"must be {ctx.options.control_plane_port}")
    if kcp is None:
        return
    replicas = get(kcp, "spec.replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 1 or replicas % 2 == 0:
        ctx.add(kcp, "spec.replicas", "replicas", f"{replicas!r} is not an odd number ≥ 1 (stacked etcd)")
    elif replicas != len(spec.control_plane):
        ctx.add(kcp, "spec.replicas", "replicas", f"{replicas} ≠ {len(spec.control_plane)} control-plane hosts")
    if get(kcp, "spec.version") != spec.k8s_version:
        ctx.add(kcp, "spec.version", "version", f"{get(kcp, 'spec.version')!r} is not {spec.k8s_version}")
    v2 = str(kcp.get("apiVersion")).endswith("/v1beta2")
    surge_path = "spec.rollout.strategy.rollingUpdate.maxSurge" if v2 else "spec.rolloutStrategy.rollingUpdate.maxSurge"
    want = control_plane_max_surge(len(spec.control_plane))
    if get(kcp, surge_path) != want:
        why = "scale in first (3+ replicas)" if want == 0 else "a single control plane rolls onto a spare host"
        ctx.add(kcp, surge_path, "rollout", f"{get(kcp, surge_path)!r} is not {want}: {why}")
    cfg = get(kcp, "spec.kubeadmConfigSpec") or {}
    if get(cfg, "format") not in (None, "cloud-config"):
        ctx.add(kcp, "spec.kubeadmConfigSpec.format", "format", "the BYOH agent only runs cloud-config")
    if spec.endpoint not in (get(cfg, "clusterConfiguration.apiServer.certSANs") or []):
        ctx.add(kcp, "spec.kubeadmConfigSpec.clusterConfiguration.apiServer.certSANs", "vip", f"must include {what}")
    content: str | None
    env: Mapping[str, Any]
    if spec.vip is None:
        # No VIP, no kube-vip: a static pod would fight over an address nobody gave it.
        files = get(kcp, "spec.kubeadmConfigSpec.files") or []
        if any(get(f, "path") == KUBE_VIP_PATH for f in (files if isinstance(files, list) else [])):
            ctx.add(kcp, "spec.kubeadmConfigSpec.files", "kube-vip", "a cluster without a VIP runs no kube-vip")
        content, env = None, {}
    else:
        content, env = _kube_vip(ctx, kcp)
    if content is not None:
        if env.get("vip_address") != spec.vip or spec.vip in host_ips:
            ctx.add(
                kcp,
                "spec.kubeadmConfigSpec.files",
                "vip",
                f"kube-vip vip_address {env.get('vip_address')!r} must be the free VIP {spec.vip}",
            )
        nic = env.get("vip_interface")
        if nic != AGENT_NIC_PLACEHOLDER and not (isinstance(nic, str) and _NIC.fullmatch(nic)):
            ctx.add(kcp, "spec.kubeadmConfigSpec.files", "kube-vip", f"vip_interface {nic!r} is not usable")
    _node_registration(ctx, kcp, cfg)
    _super_admin(ctx, kcp, content or "")


def _node_registration(ctx: CheckContext, kcp: Mapping[str, Any], cfg: Any) -> None:
    for phase in ("initConfiguration", "joinConfiguration"):
        reg = get(cfg, f"{phase}.nodeRegistration") or {}
        base = f"spec.kubeadmConfigSpec.{phase}.nodeRegistration"
        if "name" in reg:
            ctx.add(kcp, f"{base}.name", "node-name", "must be unset: the Node is named after the host")
        if not reg.get("criSocket"):
            ctx.add(kcp, f"{base}.criSocket", "cri-socket", "must name the containerd socket")
        missing = [p for p in REQUIRED_PREFLIGHT_IGNORES if p not in (reg.get("ignorePreflightErrors") or [])]
        if missing:
            ctx.add(kcp, f"{base}.ignorePreflightErrors", "preflight", f"must include {', '.join(missing)}")


def _super_admin(ctx: CheckContext, kcp: Mapping[str, Any], content: str) -> None:
    pre = get(kcp, "spec.kubeadmConfigSpec.preKubeadmCommands") or []
    post = get(kcp, "spec.kubeadmConfigSpec.postKubeadmCommands") or []
    swaps_in = [c for c in pre if isinstance(c, str) and SUPER_ADMIN_CONF in c]
    swaps_out = [c for c in post if isinstance(c, str) and SUPER_ADMIN_CONF in c]
    if ctx.spec.vip is None:
        if swaps_in or swaps_out:
            ctx.add(
                kcp,
                "spec.kubeadmConfigSpec.preKubeadmCommands",
                "super-admin",
                "the super-admin.conf swap is for kube-vip, which a cluster without a VIP does not run",
            )
        return
    if not uses_super_admin(ctx.spec.k8s_version):
        if swaps_in or swaps_out:
            ctx.add(
                kcp,
                "spec.kubeadmConfigSpec.preKubeadmCommands",
                "super-admin",
                "super-admin.conf does not exist before Kubernetes 1.29",
            )
        return
    for path, found in (("preKubeadmCommands", swaps_in), ("postKubeadmCommands", swaps_out)):
        if not found:
            ctx.add(
                kcp,
                f"spec.kubeadmConfigSpec.{path}",
                "super-admin",
                "Kubernetes ≥ 1.29 needs the super-admin.conf swap for kube-vip during kubeadm init",
            )
        elif not all(f"-f {KUBEADM_INIT_MARKER}" in c for c in found):
            ctx.add(
                kcp,
                f"spec.kubeadmConfigSpec.{path}",
                "super-admin",
                f"the swap must be guarded by -f {KUBEADM_INIT_MARKER} (init node only)",
            )
    if swaps_in and content and "path: /etc/kubernetes/admin.conf\n" not in content:
        ctx.add(kcp, "spec.kubeadmConfigSpec.files", "super-admin", "the swap's sed pattern is absent from kube-vip")
