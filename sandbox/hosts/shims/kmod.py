"""modprobe, lsmod, rmmod: kernel modules of the simulated kernel."""

from __future__ import annotations

from .. import kernel
from . import Ctx, Shim, ShimExit


def modprobe(ctx: Ctx) -> int:
    flags = [a for a in ctx.args if a.startswith("-")]
    names = [a for a in ctx.args if not a.startswith("-")]
    remove = "-r" in flags or "--remove" in flags
    if not names:
        raise ShimExit(1, "modprobe: ERROR: missing parameters. See -h.")
    targets = names if remove or "-a" in flags or "--all" in flags else names[:1]
    for name in targets:
        if name not in kernel.KNOWN_MODULES:
            raise ShimExit(
                1, f"modprobe: FATAL: Module {name} not found in directory /lib/modules/{ctx.facts.kernel_release}"
            )
        if remove:
            if name in ctx.state.modules_loaded and not ctx.is_root:
                raise ShimExit(1, f"modprobe: ERROR: could not remove '{name}': Operation not permitted")
            ctx.mark(kernel.unload_module(ctx.state, name))
            continue
        if name in ctx.state.modules_loaded:
            continue
        if not ctx.is_root:
            raise ShimExit(1, f"modprobe: ERROR: could not insert '{name}': Operation not permitted")
        ctx.mark(bool(kernel.load_module(ctx.state, name)))
    return 0


def lsmod(ctx: Ctx) -> int:
    ctx.print("Module                  Size  Used by")
    for line in kernel.modules_text(ctx.state).splitlines():
        name, size, count, used_by = line.split()[:4]
        users = "" if used_by == "-" else used_by.rstrip(",")
        ctx.print(f"{name:<24}{size:>6}  {count} {users}".rstrip())
    return 0


def rmmod(ctx: Ctx) -> int:
    for name in ctx.args:
        if name.startswith("-"):
            continue
        if name not in ctx.state.modules_loaded:
            raise ShimExit(1, f"rmmod: ERROR: Module {name} is not currently loaded")
        if not ctx.is_root:
            raise ShimExit(1, f"rmmod: ERROR: could not remove module {name}: Operation not permitted")
        ctx.mark(kernel.unload_module(ctx.state, name))
    return 0


SHIMS: dict[str, Shim] = {
    "modprobe": Shim(modprobe, "/usr/sbin/modprobe"),
    "lsmod": Shim(lsmod, "/usr/sbin/lsmod"),
    "rmmod": Shim(rmmod, "/usr/sbin/rmmod"),
}
