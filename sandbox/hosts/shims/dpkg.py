"""dpkg and dpkg-query: what is installed, as Debian's tools print it."""

from __future__ import annotations

import re

from .. import packages as pk
from . import Ctx, Shim, ShimExit


def _status(ctx: Ctx, name: str) -> str:
    rec = ctx.state.packages[name]
    want = "hold" if ctx.state.held(name) else "install" if rec.status == "installed" else "deinstall"
    return f"{want} ok {rec.status}"


def _abbrev(ctx: Ctx, name: str) -> str:
    rec = ctx.state.packages[name]
    first = "h" if ctx.state.held(name) else "i" if rec.status == "installed" else "r"
    return first + ("i" if rec.status == "installed" else "c") + " "


def _field(ctx: Ctx, name: str, key: str) -> str:
    rec = ctx.state.packages[name]
    values = {
        "Package": name,
        "binary:Package": name,
        "Version": rec.version,
        "Status": _status(ctx, name),
        "db:Status-Abbrev": _abbrev(ctx, name),
        "db:Status-Want": _status(ctx, name).split()[0],
        "db:Status-Status": rec.status,
        "Architecture": ctx.facts.dpkg_arch,
    }
    return values.get(key, "")


def _render(ctx: Ctx, fmt: str, name: str) -> str:
    text = re.sub(r"\$\{([^}:;]+)(?:;-?\d+)?\}", lambda m: _field(ctx, name, m.group(1)), fmt)
    return text.replace("\\n", "\n").replace("\\t", "\t")


def _matching(ctx: Ctx, pattern: str) -> list[str]:
    regex = re.compile("^" + re.escape(pattern).replace(r"\*", ".*") + "$")
    return sorted(n for n in ctx.state.packages if regex.match(n))


def dpkg_query(ctx: Ctx) -> int:
    args = list(ctx.args)
    fmt = "${binary:Package}\t${Version}\n"
    mode = ""
    names: list[str] = []
    while args:
        arg = args.pop(0)
        if arg in ("-W", "--show"):
            mode = "show"
        elif arg in ("-s", "--status"):
            mode = "status"
        elif arg in ("-l", "--list"):
            return dpkg_list(ctx, args)
        elif arg in ("-f", "--showformat") and args:
            fmt = args.pop(0)
        elif arg.startswith("--showformat="):
            fmt = arg.split("=", 1)[1]
        elif arg.startswith("-f") and len(arg) > 2:
            fmt = arg[2:].removeprefix("=")  # dpkg's option parser skips the "=" of "-f=FORMAT" too
        else:
            names.append(arg)
    status = 0
    for name in names or (["*"] if mode == "show" else []):
        found = _matching(ctx, name)
        if not found:
            ctx.error(f"dpkg-query: no packages found matching {name}")
            status = 1
            continue
        for pkg in found:
            if mode == "status":
                ctx.print(
                    f"Package: {pkg}\nStatus: {_status(ctx, pkg)}\nArchitecture: {ctx.facts.dpkg_arch}\n"
                    f"Version: {ctx.state.packages[pkg].version}\n"
                )
            else:
                ctx.out.write(_render(ctx, fmt, pkg).encode())
    return status


def dpkg_list(ctx: Ctx, names: list[str]) -> int:
    found: list[str] = []
    status = 0
    for name in names or ["*"]:
        matched = _matching(ctx, name)
        if not matched and name in pk.UNIVERSE:
            found.append(f"un  {name:<30} <none>")
            continue
        if not matched:
            ctx.error(f"dpkg-query: no packages found matching {name}")
            status = 1
        found += [
            f"{_abbrev(ctx, n):<3} {n:<30} {ctx.state.packages[n].version:<30} {ctx.facts.dpkg_arch}" for n in matched
        ]
    if found:
        ctx.print(
            "Desired=Unknown/Install/Remove/Purge/Hold\n"
            "| Status=Not/Inst/Conf-files/Unpacked/halF-conf/Half-inst/trig-aWait/Trig-pend\n"
            "|/ Err?=(none)/Reinst-required (Status,Err: uppercase=bad)\n"
            "||/ Name                           Version                        Architecture"
        )
        ctx.print("\n".join(found))
    return status


def dpkg(ctx: Ctx) -> int:
    args = ctx.args
    if not args:
        raise ShimExit(2, "dpkg: error: need an action option")
    if args[0] == "--print-architecture":
        ctx.print(ctx.facts.dpkg_arch)
        return 0
    if args[0] in ("-l", "--list"):
        return dpkg_list(ctx, args[1:])
    if args[0] in ("-s", "--status", "-W", "--show"):
        return dpkg_query(ctx)
    if args[0] in ("--configure", "--audit"):
        if not ctx.is_root:
            raise ShimExit(2, "dpkg: error: requested operation requires superuser privilege")
        return 0
    raise ShimExit(2, f"dpkg: error: unknown option {args[0]}")


SHIMS: dict[str, Shim] = {"dpkg-query": Shim(dpkg_query, "/usr/bin/dpkg-query"), "dpkg": Shim(dpkg, "/usr/bin/dpkg")}
