"""sysctl: read and set kernel parameters, and apply the persisted ones (``--system``, ``-p``)."""

from __future__ import annotations

from .. import kernel
from ..vfs import FsError
from . import Ctx, Shim, ShimExit

_SYSTEM_DIRS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d", "/lib/sysctl.d")


def _missing(key: str) -> str:
    return f"sysctl: cannot stat /proc/sys/{key.replace('.', '/')}: No such file or directory"


def _set(ctx: Ctx, key: str, value: str, *, quiet: bool, ignore_missing: bool = False) -> int:
    key = kernel.normalize_key(key)
    if kernel.sysctl_get(ctx.state, key) is None:
        if ignore_missing:
            return 0
        ctx.error(_missing(key))
        return 255
    if not ctx.is_root:
        ctx.error(f'sysctl: permission denied on key "{key}"')
        return 1
    value = " ".join(value.split())
    if ctx.state.sysctls.get(key) != value:
        ctx.state.sysctls[key] = value
        ctx.mark(True)
    if not quiet:
        ctx.print(f"{key} = {value}")
    return 0


def parse_conf(text: str) -> list[tuple[str, str, bool]]:
    """(key, value, ignore_errors) assignments of a sysctl.conf file."""
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        out.append((key.lstrip("-"), value.strip(), key.startswith("-")))
    return out


def _apply_file(ctx: Ctx, path: str, quiet: bool) -> int:
    try:
        text = ctx.fs.read(path).decode("utf-8", "replace")
    except FsError as exc:
        ctx.error(f'sysctl: cannot open "{path}": {exc.strerror}')
        return 255
    status = 0
    for key, value, ignore in parse_conf(text):
        status = _set(ctx, key, value, quiet=quiet, ignore_missing=ignore) or status
    return status


def system_files(ctx: Ctx) -> list[str]:
    """The files ``sysctl --system`` reads, in its order (by file name; earlier dirs win on a name clash)."""
    chosen: dict[str, str] = {}
    for directory in _SYSTEM_DIRS:
        try:
            names = ctx.fs.listdir(directory)
        except FsError:
            continue
        for name in names:
            if name.endswith(".conf") and name not in chosen:
                chosen[name] = f"{directory}/{name}"
    files = [chosen[n] for n in sorted(chosen)]
    if ctx.fs.is_file("/etc/sysctl.conf"):
        files.append("/etc/sysctl.conf")
    return files


def sysctl(ctx: Ctx) -> int:
    args = list(ctx.args)
    quiet = write = values_only = False
    status = 0
    while args and args[0].startswith("-"):
        opt = args.pop(0)
        if opt == "--system":
            if not ctx.is_root:
                raise ShimExit(1, 'sysctl: permission denied on key "net.ipv4.ip_forward"')
            for path in system_files(ctx):
                ctx.print(f"* Applying {path} ...")
                status = _apply_file(ctx, path, quiet) or status
            return status
        if opt in ("-p", "--load") or opt.startswith("--load="):
            path = opt.split("=", 1)[1] if "=" in opt else (args.pop(0) if args else "/etc/sysctl.conf")
            return _apply_file(ctx, path, quiet)
        if opt in {"-a", "--all"}:
            for key in kernel.sysctl_keys(ctx.state):
                ctx.print(f"{key} = {kernel.sysctl_get(ctx.state, key)}")
            return 0
        quiet = quiet or "q" in opt
        write = write or "w" in opt
        values_only = values_only or "n" in opt
    for arg in args:
        if "=" in arg:
            key, _, value = arg.partition("=")
            status = _set(ctx, key, value, quiet=quiet) or status
            continue
        if write:
            ctx.error(f'sysctl: "{arg}" must be of the form name=value')
            status = 255
            continue
        key = kernel.normalize_key(arg)
        current = kernel.sysctl_get(ctx.state, key)
        if current is None:
            ctx.error(_missing(key))
            status = 255
            continue
        ctx.print(current if values_only else f"{key} = {current}")
    return status


SHIMS: dict[str, Shim] = {"sysctl": Shim(sysctl, "/usr/sbin/sysctl")}
