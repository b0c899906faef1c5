"""uname, id, whoami, nproc, free, df, date, lsb_release, systemd-detect-virt: facts about the machine."""

from __future__ import annotations

import time

from . import Ctx, Shim, ShimExit


def uname(ctx: Ctx) -> int:
    facts = ctx.facts
    fields = {
        "s": facts.kernel_name,
        "n": ctx.state.hostname,
        "r": facts.kernel_release,
        "v": "#101-Ubuntu SMP Tue Nov 14 13:30:08 UTC 2023",
        "m": facts.arch,
        "p": facts.arch,
        "i": facts.arch,
        "o": "GNU/Linux",
    }
    long_names = {
        "--kernel-name": "s",
        "--nodename": "n",
        "--kernel-release": "r",
        "--kernel-version": "v",
        "--machine": "m",
        "--processor": "p",
        "--hardware-platform": "i",
        "--operating-system": "o",
    }
    wanted: list[str] = []
    for arg in ctx.args:
        if arg in ("-a", "--all"):
            wanted = list("snrvmpio")
        elif arg in long_names:
            wanted.append(long_names[arg])
        elif arg.startswith("-") and not arg.startswith("--"):
            wanted += [c for c in arg[1:] if c in fields]
        else:
            raise ShimExit(1, f"uname: extra operand '{arg}'")
    ctx.print(" ".join(fields[c] for c in "snrvmpio" if c in (wanted or ["s"])))
    return 0


def id_(ctx: Ctx) -> int:
    user = ctx.user
    uid = 0 if user == "root" else 1000
    flags = "".join(a.lstrip("-") for a in ctx.args if a.startswith("-"))
    if "u" in flags or "g" in flags:
        ctx.print(user if "n" in flags else str(uid))
        return 0
    groups = f"{uid}({user})" if user == "root" else f"{uid}({user}),27(sudo)"
    ctx.print(f"uid={uid}({user}) gid={uid}({user}) groups={groups}")
    return 0


def whoami(ctx: Ctx) -> int:
    ctx.print(ctx.user)
    return 0


def nproc(ctx: Ctx) -> int:
    ctx.print(str(ctx.facts.cpus))
    return 0


def free(ctx: Ctx) -> int:
    facts = ctx.facts
    unit = 1 if "-b" in ctx.args else 1024**2 if "-m" in ctx.args else 1024**3 if "-g" in ctx.args else 1024
    total = facts.memory_bytes
    used = total // 8
    swap = facts.swap_bytes if ctx.state.swap_active else 0
    ctx.print("               total        used        free      shared  buff/cache   available")
    ctx.print(
        f"Mem:   {total // unit:>12} {used // unit:>11} {total * 5 // 8 // unit:>11} {0:>11} "
        f"{total // 4 // unit:>11} {total * 7 // 8 // unit:>11}"
    )
    ctx.print(f"Swap:  {swap // unit:>12} {0:>11} {swap // unit:>11}")
    return 0


def df(ctx: Ctx) -> int:
    facts = ctx.facts
    paths = [a for a in ctx.args if not a.startswith("-")] or ["/"]
    block = 1024  # -P/-k output (POSIX, 1K blocks) is the only format
    ctx.print("Filesystem     1024-blocks     Used Available Capacity Mounted on")
    for path in paths:
        if not ctx.fs.exists(ctx.path(path)):
            raise ShimExit(1, f"df: {path}: No such file or directory")
        size, avail = facts.disk_bytes // block, facts.var_free_bytes // block
        used = size - avail
        ctx.print(f"/dev/sda1      {size:>11} {used:>8} {avail:>9} {used * 100 // size:>7}% /")
    return 0


def date(ctx: Ctx) -> int:
    fmt = next((a[1:] for a in ctx.args if a.startswith("+")), "%a %b %d %H:%M:%S UTC %Y")
    ctx.print(time.strftime(fmt.replace("%s", str(int(time.time()))), time.gmtime()))
    return 0


def lsb_release(ctx: Ctx) -> int:
    facts = ctx.facts
    values = {
        "i": ("Distributor ID", facts.os_id.capitalize()),
        "d": ("Description", facts.os_pretty_name),
        "r": ("Release", facts.os_version_id),
        "c": ("Codename", facts.os_codename),
    }
    flags = "".join(a.lstrip("-") for a in ctx.args if a.startswith("-"))
    short = "s" in flags
    keys = [k for k in "idrc" if k in flags] or (list("idrc") if "a" in flags else ["d"])
    for k in keys:
        label, value = values[k]
        ctx.print(value if short else f"{label}:\t{value}")
    return 0


def detect_virt(ctx: Ctx) -> int:
    ctx.print("none")
    return 1


SHIMS: dict[str, Shim] = {
    "uname": Shim(uname, "/usr/bin/uname"),
    "id": Shim(id_, "/usr/bin/id"),
    "whoami": Shim(whoami, "/usr/bin/whoami"),
    "nproc": Shim(nproc, "/usr/bin/nproc"),
    "free": Shim(free, "/usr/bin/free"),
    "df": Shim(df, "/usr/bin/df"),
    "date": Shim(date, "/usr/bin/date"),
    "lsb_release": Shim(lsb_release, "/usr/bin/lsb_release"),
    "systemd-detect-virt": Shim(detect_virt, "/usr/bin/systemd-detect-virt"),
}
