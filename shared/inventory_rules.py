"""Inventory-wide validation rules (DESIGN §4), run over the decoded JSON even when some fields are broken.

The field rules live in the pydantic model (``shared.inventory``); these are the rules that relate
fields to each other: unique host ids/names/addresses, unique cluster names, references to existing
hosts, no host in two clusters or two roles, an odd control-plane count ≥ 1, the Kubernetes version
window, the VIP (required for more than one control-plane host unless a VIP pool is configured, never a
host's address, unique), and pod/service CIDRs that overlap neither each other nor the cluster's
addresses. Values a field rule already refused are skipped here, so each mistake is reported once, at
its own path. Addresses are compared in their canonical form (``shared.models.parse_ip``), so
``::ffff:10.10.0.11`` and ``10.10.0.11`` are one machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from shared.models import (
    DEFAULT_POD_CIDR,
    DEFAULT_SERVICE_CIDR,
    IpAddr,
    IpNet,
    normalize_version,
    parse_cidr,
    parse_ip,
    version_tuple,
)
from shared.safe_json import Problem, json_path, short

Window = tuple[tuple[int, int], tuple[int, int]]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _host_id(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _text(value)


def _addr(value: Any) -> IpAddr | None:
    try:
        return parse_ip(value)
    except ValueError:
        return None


def _net(value: Any) -> IpNet | None:
    try:
        return parse_cidr(value)
    except ValueError:
        return None


def vip_required(masters: int) -> str:
    """The message of the ``vip-required`` rule (the same wherever it is raised)."""
    return (
        f"a control plane of {masters} hosts needs a floating address: set control_plane_endpoint (a free "
        "address, not a host's own) or configure a VIP pool (O2_FOCOM_VIP_POOL)"
    )


def _items(data: dict[str, Any], key: str) -> Iterator[tuple[int, dict[str, Any]]]:
    value = data.get(key)
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, dict):
                yield i, item


def _refs(cluster: dict[str, Any], role: str) -> Iterator[tuple[int, str]]:
    value = cluster.get(role)
    if isinstance(value, list):
        for j, ref in enumerate(value):
            host_id = _host_id(ref.get("host_id")) if isinstance(ref, dict) else None
            if host_id is not None:
                yield j, host_id


def _unique(problems: list[Problem], seen: dict[Any, str], value: Any, path: str, what: str, shown: str) -> None:
    if value is None:
        return
    first = seen.setdefault(value, path)
    if first != path:
        problems.append(Problem(path, "unique", f"{what} {shown} is also used at {first}"))


def _version_in_window(value: Any, window: Window) -> str | None:
    """A message when ``value`` is a well-formed version outside the window (malformed is a field rule)."""
    if not isinstance(value, str):
        return None
    try:
        major, minor, _ = version_tuple(normalize_version(value))
    except ValueError:
        return None
    (lo_major, lo_minor), (hi_major, hi_minor) = window
    if (lo_major, lo_minor) <= (major, minor) <= (hi_major, hi_minor):
        return None
    return f"Kubernetes {value} is outside the supported window v{lo_major}.{lo_minor} to v{hi_major}.{hi_minor}"


def check_rules(data: dict[str, Any], window: Window, *, vip_pool: bool = False) -> list[Problem]:
    """Every cross-field problem of an inventory (``data`` is decoded JSON, possibly partly invalid).

    ``vip_pool``: a VIP pool is configured, so a control plane of several hosts may omit its endpoint.
    """
    problems: list[Problem] = []
    host_ips = _check_hosts(data, problems)
    top_version = data.get("k8s_version")
    message = _version_in_window(top_version, window)
    if message:
        problems.append(Problem("$.k8s_version", "k8s-window", message))
    _check_clusters(data, host_ips, window, vip_pool, problems)
    return problems


def _check_hosts(data: dict[str, Any], problems: list[Problem]) -> dict[str, IpAddr]:
    """Uniqueness of host ids, names and addresses; returns host id → address of the readable hosts."""
    ids: dict[Any, str] = {}
    names: dict[Any, str] = {}
    addrs: dict[Any, str] = {}
    host_ips: dict[str, IpAddr] = {}
    for i, host in _items(data, "hosts"):
        base = ("hosts", i)
        host_id = _host_id(host.get("host_id"))
        _unique(problems, ids, host_id, json_path((*base, "host_id")), "host id", short(host_id))
        name = _text(host.get("host_name"))
        _unique(problems, names, name, json_path((*base, "host_name")), "host name", short(name))
        addr = _addr(host.get("host_ip"))
        _unique(problems, addrs, addr, json_path((*base, "host_ip")), "address", str(addr))
        if host_id is not None and addr is not None:
            host_ips.setdefault(host_id, addr)
    return host_ips


def _check_clusters(
    data: dict[str, Any], host_ips: dict[str, IpAddr], window: Window, vip_pool: bool, problems: list[Problem]
) -> None:
    known = {_host_id(h.get("host_id")) for _, h in _items(data, "hosts")}
    names: dict[Any, str] = {}
    placed: dict[str, tuple[str, str]] = {}  # host id → (cluster name, path of its first reference)
    vips: dict[Any, str] = {}
    all_addresses = set(host_ips.values())
    for i, cluster in _items(data, "clusters"):
        base = ("clusters", i)
        cname = _text(cluster.get("cluster_name")) or f"#{i}"
        _unique(
            problems,
            names,
            _text(cluster.get("cluster_name")),
            json_path((*base, "cluster_name")),
            "cluster name",
            short(cname),
        )
        members: list[str] = []
        for role in ("cluster_masters", "cluster_workers"):
            for j, host_id in _refs(cluster, role):
                path = json_path((*base, role, j, "host_id"))
                if host_id not in known:
                    problems.append(Problem(path, "host-exists", f"host {short(host_id)} is not in hosts[]"))
                    continue
                if host_id in members:
                    problems.append(
                        Problem(
                            path,
                            "host-in-two-roles",
                            f"host {short(host_id)} is listed twice in cluster {short(cname)}",
                        )
                    )
                    continue
                members.append(host_id)
                first = placed.setdefault(host_id, (cname, path))
                if first[1] != path:
                    problems.append(
                        Problem(
                            path,
                            "host-in-two-clusters",
                            f"host {short(host_id)} is already in cluster {short(first[0])} ({first[1]})",
                        )
                    )
        masters = cluster.get("cluster_masters")
        if isinstance(masters, list) and (len(masters) == 0 or len(masters) % 2 == 0):
            problems.append(
                Problem(
                    json_path((*base, "cluster_masters")),
                    "cp-count",
                    f"control-plane host count must be odd and ≥ 1, got {len(masters)}",
                )
            )
        message = _version_in_window(cluster.get("k8s_version"), window)
        if message:
            problems.append(Problem(json_path((*base, "k8s_version")), "k8s-window", message))
        vip = _check_vip(cluster, base, masters, all_addresses, vips, vip_pool, problems)
        addresses = [(h, host_ips[h]) for h in members if h in host_ips]
        _check_cidrs(cluster, base, addresses, vip, problems)


def _check_vip(
    cluster: dict[str, Any],
    base: tuple[object, ...],
    masters: Any,
    host_addresses: set[IpAddr],
    vips: dict[Any, str],
    vip_pool: bool,
    problems: list[Problem],
) -> IpAddr | None:
    path = json_path((*base, "control_plane_endpoint"))
    raw = cluster.get("control_plane_endpoint")
    if raw is None:
        # One control-plane host needs no VIP (its own address is the endpoint); several need one,
        # from the inventory or, when configured, from the pool at request time.
        if isinstance(masters, list) and len(masters) > 1 and not vip_pool:
            problems.append(Problem(path, "vip-required", vip_required(len(masters))))
        return None
    vip = _addr(raw)
    if vip is None:
        return None
    if vip in host_addresses:
        problems.append(Problem(path, "vip-not-host", f"VIP {vip} is a host's own address; use a free address"))
    _unique(problems, vips, vip, path, "VIP", str(vip))
    return vip


def _check_cidrs(
    cluster: dict[str, Any],
    base: tuple[object, ...],
    addresses: list[tuple[str, IpAddr]],
    vip: IpAddr | None,
    problems: list[Problem],
) -> None:
    nets: list[tuple[str, str, IpNet]] = []
    for field, default in (("pod_cidr", DEFAULT_POD_CIDR), ("service_cidr", DEFAULT_SERVICE_CIDR)):
        given = cluster.get(field)
        net = _net(given) if given is not None else parse_cidr(default)
        if net is not None:
            shown = str(net) if given is not None else f"{net} (the default)"
            nets.append((json_path((*base, field)), shown, net))
    if len(nets) == 2:
        (pod_path, pod_shown, pods), (svc_path, svc_shown, svcs) = nets
        if pods.version == svcs.version and pods.overlaps(svcs):
            path = pod_path if cluster.get("pod_cidr") is not None else svc_path
            problems.append(Problem(path, "cidr-overlap", f"pod CIDR {pod_shown} overlaps service CIDR {svc_shown}"))
    named = [(f"host {short(h)}", addr) for h, addr in addresses]
    if vip is not None:
        named.append(("the VIP", vip))
    for path, shown, net in nets:
        inside = [f"{who} ({addr})" for who, addr in named if addr.version == net.version and addr in net]
        if inside:
            problems.append(
                Problem(
                    path,
                    "cidr-contains-host",
                    f"{shown} contains {', '.join(inside[:5])}; pick a range apart from the hosts' network",
                )
            )
