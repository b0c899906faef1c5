"""swapon / swapoff: the host's swap file (on at boot, listed in /etc/fstab)."""

from __future__ import annotations

from ..vfs import FsError
from . import Ctx, Shim, ShimExit


def fstab_swaps(ctx: Ctx) -> list[str]:
    """Active (uncommented) swap entries of /etc/fstab."""
    try:
        text = ctx.fs.read("/etc/fstab").decode("utf-8", "replace")
    except FsError:
        return []
    out = []
    for raw in text.splitlines():
        fields = raw.split()
        if len(fields) >= 3 and not fields[0].startswith("#") and fields[2] == "swap":
            out.append(fields[0])
    return out


def swapon(ctx: Ctx) -> int:
    args = ctx.args
    if not args or "-s" in args or "--summary" in args:
        if "-s" in args or "--summary" in args:
            ctx.out.write(ctx.fs.read("/proc/swaps"))
        return 0
    if "--show" in args or any(a.startswith("--show=") for a in args):
        if ctx.state.swap_active:
            size = f"{ctx.facts.swap_bytes // 1024**3}G"
            if "--noheadings" not in args and "--no-headings" not in args:
                ctx.print("NAME      TYPE SIZE USED PRIO")
            for path in ctx.state.swap_active:
                ctx.print(f"{path:<9} file {size:>4}   0B   -2")
        return 0
    targets = fstab_swaps(ctx) if "-a" in args or "--all" in args else [a for a in args if not a.startswith("-")]
    for path in targets:
        if path in ctx.state.swap_active:
            continue
        if not ctx.is_root:
            raise ShimExit(1, f"swapon: {path}: swapon failed: Operation not permitted")
        if not ctx.fs.exists(path):
            raise ShimExit(1, f"swapon: cannot open {path}: No such file or directory")
        ctx.state.swap_active.append(path)
        ctx.mark(True)
    return 0


def swapoff(ctx: Ctx) -> int:
    args = ctx.args
    targets = (
        list(ctx.state.swap_active) if "-a" in args or "--all" in args else [a for a in args if not a.startswith("-")]
    )
    if not targets and not ("-a" in args or "--all" in args):
        raise ShimExit(1, "swapoff: bad usage\nTry 'swapoff --help' for more information.")
    for path in targets:
        if path not in ctx.state.swap_active:
            raise ShimExit(1 if "-a" not in args else 0, f"swapoff: {path}: swapoff failed: Invalid argument")
        if not ctx.is_root:
            raise ShimExit(1, f"swapoff: {path}: swapoff failed: Operation not permitted")
        ctx.state.swap_active.remove(path)
        ctx.mark(True)
    return 0


SHIMS: dict[str, Shim] = {"swapon": Shim(swapon, "/usr/sbin/swapon"), "swapoff": Shim(swapoff, "/usr/sbin/swapoff")}
