"""containerd, ctr, runc: versions and ``containerd config default`` (with ``SystemdCgroup = false``)."""

from __future__ import annotations

from .. import packages as pk
from . import Ctx, Shim, ShimExit

DEFAULT_CONFIG = """disabled_plugins = []
imports = []
oom_score = 0
plugin_dir = ""
required_plugins = []
root = "/var/lib/containerd"
state = "/run/containerd"
temp = ""
version = 2

[cgroup]
  path = ""

[grpc]
  address = "/run/containerd/containerd.sock"
  gid = 0
  max_recv_message_size = 16777216
  max_send_message_size = 16777216
  uid = 0

[plugins]

  [plugins."io.containerd.grpc.v1.cri"]
    device_ownership_from_security_context = false
    disable_apparmor = false
    enable_selinux = false
    max_container_log_line_size = 16384
    sandbox_image = "registry.k8s.io/pause:3.8"

    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/opt/cni/bin"
      conf_dir = "/etc/cni/net.d"

    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"
      snapshotter = "overlayfs"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes]

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
          runtime_type = "io.containerd.runc.v2"

          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
            BinaryName = ""
            CriuImagePath = ""
            NoNewKeyring = false
            NoPivotRoot = false
            Root = ""
            ShimCgroup = ""
            SystemdCgroup = false

    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = ""

[timeouts]
  "io.containerd.timeout.shim.cleanup" = "5s"
  "io.containerd.timeout.shim.load" = "5s"
  "io.containerd.timeout.shim.shutdown" = "3s"
  "io.containerd.timeout.task.state" = "2s"
"""


def containerd(ctx: Ctx) -> int:
    version = pk.upstream_version(ctx.state.installed("containerd") or "0")
    if ctx.args[:1] in (["--version"], ["-v"], ["version"]):
        ctx.print(f"containerd github.com/containerd/containerd {version} ")
        return 0
    if ctx.args[:2] == ["config", "default"]:
        ctx.out.write(DEFAULT_CONFIG.encode())
        return 0
    if ctx.args[:2] == ["config", "dump"]:
        ctx.out.write(
            ctx.fs.read("/etc/containerd/config.toml")
            if ctx.fs.is_file("/etc/containerd/config.toml")
            else DEFAULT_CONFIG.encode()
        )
        return 0
    raise ShimExit(1, "containerd: the daemon runs as the containerd systemd unit in the sandbox")


def ctr(ctx: Ctx) -> int:
    rec = ctx.state.services.get("containerd")
    version = pk.upstream_version(ctx.state.installed("containerd") or "0")
    if ctx.args[:1] == ["--version"]:
        ctx.print(f"ctr github.com/containerd/containerd {version}")
        return 0
    if rec is None or rec.active != "active":
        raise ShimExit(
            1,
            'ctr: failed to dial "/run/containerd/containerd.sock": connection error: desc = '
            '"transport: error while dialing: dial unix /run/containerd/containerd.sock: connect: no '
            'such file or directory"',
        )
    if not ctx.is_root:
        raise ShimExit(
            1,
            'ctr: failed to dial "/run/containerd/containerd.sock": connection error: desc = '
            '"transport: error while dialing: dial unix /run/containerd/containerd.sock: connect: '
            'permission denied"',
        )
    if ctx.args[:1] == ["version"]:
        ctx.print(f"Client:\n  Version:  {version}\n\nServer:\n  Version:  {version}")
    return 0


def runc(ctx: Ctx) -> int:
    ctx.print(f"runc version {pk.upstream_version(ctx.state.installed('runc') or '0')}\nspec: 1.0.2-dev")
    return 0


SHIMS: dict[str, Shim] = {
    "containerd": Shim(containerd, "/usr/bin/containerd", package="containerd"),
    "ctr": Shim(ctr, "/usr/bin/ctr", package="containerd"),
    "runc": Shim(runc, "/usr/sbin/runc", package="runc"),
}
