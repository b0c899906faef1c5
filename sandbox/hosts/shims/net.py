"""ip, hostname, hostnamectl: the host's network identity (one NIC carrying the host's address)."""

from __future__ import annotations

import json

from . import Ctx, Shim, ShimExit


def _host_ip(ctx: Ctx) -> str:
    return ctx.host.ip


def _routes(ctx: Ctx) -> list[dict[str, object]]:
    ip, facts = _host_ip(ctx), ctx.facts
    network = ".".join(ip.split(".")[:3]) + ".0"
    routes: list[dict[str, object]] = []
    if facts.default_route:
        routes.append(
            {
                "dst": "default",
                "gateway": facts.gateway_for(ip),
                "dev": facts.interface,
                "protocol": "dhcp",
                "prefsrc": ip,
                "metric": 100,
                "flags": [],
            }
        )
    routes.append(
        {
            "dst": f"{network}/{facts.prefix_length}",
            "dev": facts.interface,
            "protocol": "kernel",
            "scope": "link",
            "prefsrc": ip,
            "metric": 100,
            "flags": [],
        }
    )
    return routes


def _route_text(r: dict[str, object]) -> str:
    parts = [str(r["dst"])]
    if "gateway" in r:
        parts += ["via", str(r["gateway"])]
    parts += ["dev", str(r["dev"]), "proto", str(r["protocol"])]
    if "scope" in r:
        parts += ["scope", str(r["scope"])]
    parts += ["src", str(r["prefsrc"]), "metric", str(r["metric"])]
    return " ".join(parts) + " "


def _addrs(ctx: Ctx) -> list[tuple[int, str, str, int, str]]:
    """(index, ifname, address, prefix, scope) for lo and the NIC."""
    return [
        (1, "lo", "127.0.0.1", 8, "host"),
        (2, ctx.facts.interface, _host_ip(ctx), ctx.facts.prefix_length, "global"),
    ]


def _ip_route(ctx: Ctx, args: list[str], oneline: bool, as_json: bool) -> int:
    routes = _routes(ctx)
    words = [a for a in args if a not in ("show", "list", "ls")]
    if words[:1] == ["get"]:
        route = routes[0] if ctx.facts.default_route else None
        if route is None:
            raise ShimExit(2, "RTNETLINK answers: Network is unreachable")
        target = words[1] if len(words) > 1 else "1.1.1.1"
        ctx.print(f"{target} via {route['gateway']} dev {route['dev']} src {route['prefsrc']} uid 0 \n    cache ")
        return 0
    if "default" in words:
        routes = [r for r in routes if r["dst"] == "default"]
    if as_json:
        ctx.print(json.dumps(routes))
    else:
        for r in routes:
            ctx.print(_route_text(r))
    return 0


def _ip_addr(ctx: Ctx, args: list[str], oneline: bool, as_json: bool, family: str, brief: bool) -> int:
    addrs = _addrs(ctx)
    if "dev" in args and args.index("dev") + 1 < len(args):
        dev = args[args.index("dev") + 1]
        addrs = [a for a in addrs if a[1] == dev]
        if not addrs:
            raise ShimExit(1, f'Device "{dev}" does not exist.')
    if family == "6":
        addrs = []
    if as_json:
        ctx.print(
            json.dumps(
                [
                    {
                        "ifindex": i,
                        "ifname": n,
                        "addr_info": [{"family": "inet", "local": a, "prefixlen": p, "scope": s}],
                    }
                    for i, n, a, p, s in addrs
                ]
            )
        )
        return 0
    for index, name, addr, prefix, scope in addrs:
        brd = "" if name == "lo" else f" brd {'.'.join(addr.split('.')[:3])}.255"
        if brief:
            ctx.print(f"{name:<16} UNKNOWN        {addr}/{prefix} ")
        elif oneline:
            ctx.print(
                f"{index}: {name}    inet {addr}/{prefix}{brd} scope {scope} {name}\\       "
                "valid_lft forever preferred_lft forever"
            )
        else:
            mac = "00:00:00:00:00:00" if name == "lo" else ctx.facts.mac_for(addr)
            ctx.print(
                f"{index}: {name}: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 state UP\n"
                f"    link/ether {mac}\n    inet {addr}/{prefix}{brd} scope {scope} {name}\n"
                "       valid_lft forever preferred_lft forever"
            )
    return 0


def ip(ctx: Ctx) -> int:
    args = list(ctx.args)
    oneline = as_json = brief = False
    family = ""
    while args and args[0].startswith("-"):
        opt = args.pop(0)
        oneline = oneline or opt in ("-o", "-oneline")
        as_json = as_json or opt in ("-j", "-json")
        brief = brief or opt in ("-br", "-brief")
        family = opt[1] if opt in ("-4", "-6") else family
        if opt == "-f" and args:
            family = "4" if args.pop(0) == "inet" else "6"
    obj = args.pop(0) if args else ""
    if obj in ("r", "ro", "route"):
        return _ip_route(ctx, args, oneline, as_json)
    if obj in ("a", "addr", "address"):
        return _ip_addr(ctx, args, oneline, as_json, family, brief)
    if obj in ("l", "link"):
        for index, name, addr, _p, _s in _addrs(ctx):
            mac = "00:00:00:00:00:00" if name == "lo" else ctx.facts.mac_for(addr)
            ctx.print(f"{index}: {name}: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 state UP\n    link/ether {mac}")
        return 0
    raise ShimExit(1, f'Object "{obj}" is unknown, try "ip help".')


def hostname(ctx: Ctx) -> int:
    args = ctx.args
    if not args or args[0] in ("-f", "--fqdn", "--long", "-s", "--short", "-A"):
        name = ctx.state.hostname
        ctx.print(name.split(".")[0] if args and args[0] in ("-s", "--short") else name)
        return 0
    if args[0] in ("-I", "--all-ip-addresses"):
        ctx.print(f"{_host_ip(ctx)} ")
        return 0
    if args[0] in ("-i", "--ip-address"):
        ctx.print(_host_ip(ctx))
        return 0
    if args[0].startswith("-"):
        raise ShimExit(1, f"hostname: invalid option -- '{args[0].lstrip('-')[:1]}'")
    if not ctx.is_root:
        raise ShimExit(1, "hostname: you must be root to change the host name")
    ctx.mark(ctx.state.hostname != args[0])
    ctx.state.hostname = args[0]
    return 0


def hostnamectl(ctx: Ctx) -> int:
    words = [a for a in ctx.args if not a.startswith("-")]
    verb = words[0] if words else "status"
    if (verb == "hostname" and len(words) == 1) or ("--static" in ctx.args and verb == "status"):
        ctx.print(ctx.state.hostname)
        return 0
    if verb == "status":
        ctx.print(
            f" Static hostname: {ctx.state.hostname}\n       Icon name: computer-server\n"
            f"Operating System: {ctx.facts.os_pretty_name}\n          Kernel: {ctx.facts.kernel_name} "
            f"{ctx.facts.kernel_release}\n    Architecture: {ctx.facts.arch.replace('_', '-')}"
        )
        return 0
    if verb in ("set-hostname", "hostname") and len(words) > 1:
        if not ctx.is_root:
            raise ShimExit(1, "Could not set static hostname: Interactive authentication required.")
        name = words[1]
        ctx.write_file("/etc/hostname", f"{name}\n".encode())
        ctx.mark(ctx.state.hostname != name)
        ctx.state.hostname = name
        return 0
    raise ShimExit(1, f"Unknown command verb {verb}.")


SHIMS: dict[str, Shim] = {
    "ip": Shim(ip, "/usr/bin/ip", package="iproute2"),
    "hostname": Shim(hostname, "/usr/bin/hostname"),
    "hostnamectl": Shim(hostnamectl, "/usr/bin/hostnamectl"),
}
