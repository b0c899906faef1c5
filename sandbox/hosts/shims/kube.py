"""kubeadm, kubelet, kubectl, crictl: version reporting and ``kubeadm reset`` (init/join run via the agent)."""

from __future__ import annotations

import json

from .. import packages as pk
from .. import units
from . import Ctx, Shim, ShimExit

KUSTOMIZE = "v5.0.4-0.20230601165947-6ce0bf390ce3"


def _version(ctx: Ctx, package: str) -> str:
    return "v" + pk.upstream_version(ctx.state.installed(package) or "0.0.0")


def kubeadm(ctx: Ctx) -> int:
    words = [a for a in ctx.args if not a.startswith("-")]
    verb = words[0] if words else ""
    version = _version(ctx, "kubeadm")
    if verb == "version":
        output = next((a.split("=", 1)[1] for a in ctx.args if a.startswith("--output=")), None)
        if "-o" in ctx.args:
            output = ctx.args[ctx.args.index("-o") + 1] if ctx.args.index("-o") + 1 < len(ctx.args) else ""
        major, minor = version[1:].split(".")[:2]
        info = {
            "major": major,
            "minor": minor,
            "gitVersion": version,
            "goVersion": "go1.22.4",
            "compiler": "gc",
            "platform": f"linux/{ctx.facts.dpkg_arch}",
        }
        if output == "short":
            ctx.print(version)
        elif output == "json":
            ctx.print(json.dumps({"clientVersion": info}, indent=2))
        else:
            ctx.print(f'kubeadm version: &version.Info{{Major:"{major}", Minor:"{minor}", GitVersion:"{version}"}}')
        return 0
    if verb == "reset":
        return _reset(ctx)
    if verb in ("init", "join"):
        raise ShimExit(1, f"kubeadm {verb} is run by the BYOH agent simulator in the sandbox, not over SSH")
    if not verb:
        ctx.print("Usage:\n  kubeadm [command]")
        return 0
    raise ShimExit(1, f'unknown command "{verb}" for "kubeadm"')


def _reset(ctx: Ctx) -> int:
    if not ctx.is_root:
        raise ShimExit(
            1,
            "[preflight] Running pre-flight checks\nerror execution phase preflight: "
            "[preflight] Some fatal errors occurred:\n\t[ERROR IsPrivilegedUser]: user is not running "
            "as root\n[preflight] If you know what you are doing, you can make a check non-fatal with "
            "`--ignore-preflight-errors=...`",
        )
    if not ({"-f", "--force"} & set(ctx.args)):
        ctx.print("[reset] Are you sure you want to proceed? [y/N]: ")
        raise ShimExit(
            1, "error execution phase preflight: won't proceed; the user didn't answer (Y|y) in order to continue"
        )
    ctx.print("[preflight] Running pre-flight checks\n[reset] Stopping the kubelet service")
    kubelet = ctx.state.services.get("kubelet")
    if kubelet is not None and kubelet.active == "active":
        kubelet.active = "inactive"
        kubelet.stop_count += 1
        units.journal_line(ctx.state, "kubelet", "Stopped kubelet: The Kubernetes Node Agent.")
        ctx.mark(True)
    ctx.mark(clear_kubernetes_dirs(ctx))
    ctx.print(
        "[reset] Deleting contents of directories: [/etc/kubernetes/manifests /var/lib/kubelet /etc/kubernetes/pki]"
    )
    if ctx.state.kubeadm not in ("none", "reset"):
        ctx.mark(True)
    ctx.state.kubeadm = "reset"
    ctx.state.kubeadm_runs.append({"action": "reset", "source": "ssh", "ok": True, "detail": " ".join(ctx.args)})
    return 0


def clear_kubernetes_dirs(ctx: Ctx) -> bool:
    changed = False
    for directory in ("/etc/kubernetes", "/var/lib/kubelet", "/var/lib/etcd", "/etc/cni/net.d"):
        if not ctx.fs.is_dir(directory):
            continue
        for entry in ctx.fs.listdir(directory):
            changed = ctx.fs.remove(f"{directory}/{entry}", recursive=True) or changed
    return changed


def kubelet(ctx: Ctx) -> int:
    if "--version" in ctx.args or "version" in ctx.args:
        ctx.print(f"Kubernetes {_version(ctx, 'kubelet')}")
        return 0
    raise ShimExit(1, "E: the kubelet runs as the kubelet systemd unit in the sandbox")


def kubectl(ctx: Ctx) -> int:
    words = [a for a in ctx.args if not a.startswith("-")]
    if words[:1] == ["version"] and ("--client" in ctx.args or "--client=true" in ctx.args):
        version = _version(ctx, "kubectl")
        if any(a in ctx.args for a in ("-o", "--output=json", "--output=yaml")):
            major, minor = version[1:].split(".")[:2]
            ctx.print(
                json.dumps(
                    {
                        "clientVersion": {"major": major, "minor": minor, "gitVersion": version},
                        "kustomizeVersion": KUSTOMIZE,
                    },
                    indent=2,
                )
            )
        else:
            ctx.print(f"Client Version: {version}\nKustomize Version: {KUSTOMIZE}")
        return 0
    raise ShimExit(
        1, "The connection to the server localhost:8080 was refused - did you specify the right host or port?"
    )


def crictl(ctx: Ctx) -> int:
    if "--version" in ctx.args or "-v" in ctx.args:
        ctx.print(f"crictl version {_version(ctx, 'cri-tools')}")
        return 0
    raise ShimExit(
        1,
        'level=fatal msg="validate service connection: validate CRI v1 runtime API for endpoint '
        '\\"unix:///run/containerd/containerd.sock\\""',
    )


def cni_plugin(ctx: Ctx) -> int:
    ctx.print("CNI protocol versions supported: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0")
    return 0


SHIMS: dict[str, Shim] = {
    "kubeadm": Shim(kubeadm, "/usr/bin/kubeadm", package="kubeadm"),
    "kubelet": Shim(kubelet, "/usr/bin/kubelet", package="kubelet"),
    "kubectl": Shim(kubectl, "/usr/bin/kubectl", package="kubectl"),
    "crictl": Shim(crictl, "/usr/bin/crictl", package="cri-tools"),
    "cni-plugin": Shim(cni_plugin, "/opt/cni/bin/bridge", package="file"),
}
