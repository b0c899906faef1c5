"""Validating a FOCOM request and resolving it to cluster specs: every problem at once, each at its path.

Shared so that focom, ``o2ctl validate``/``plan`` and FOCOM's northbound API report the same problems.

Pure functions over the request payload, the inventory, the template catalog and the FPR record.
Modes: ``allClusters`` (every inventory cluster; for scale/delete every cluster of the FPR),
``clusterNames``, or a template (``templateName`` [+ ``templateVersion``] + ``templateParameters``).
Operations: ``create``; ``scale`` with a new ``workers`` list, a ``targetWorkerCount`` filled from
free inventory hosts, or neither (the inventory's/template's worker list); ``delete``; ``upgrade`` to
the version the inventory (its cluster's ``k8s_version``, else the top-level one) or the template's
``k8sVersion`` now names (``shared.focom_upgrade``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

from pydantic import ValidationError

from shared.catalog import Catalog, parameter_path, resolve_entry
from shared.errors import InputError
from shared.inventory import MAX_HOSTS, Inventory, InventoryCluster, InventoryError, Window, all_clusters_problems
from shared.models import DNS1123_LABEL, HOST_ID_PATTERN, MAX_CLUSTER_NAME, ClusterSpec, HostRef
from shared.payloads import FocomRequest
from shared.safe_json import Problem, short

Mode = Literal["all", "names", "template"]
_LABEL = re.compile(DNS1123_LABEL)
_HOST_ID = re.compile(HOST_ID_PATTERN)


class RequestError(InputError):
    """The request is refused; ``problems`` lists every reason with its JSON path."""

    def __init__(self, problems: list[Problem], *, name: str = "request") -> None:
        shown = "; ".join(str(p) for p in problems[:50])
        more = f"; … and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(
            f"FOCOM request {short(name)} refused ({len(problems)} problem(s)): {shown}{more}",
            path=problems[0].path,
            reason="InvalidRequest",
        )
        self.problems = tuple(problems)


def _fail(problems: list[Problem], req: FocomRequest) -> None:
    if problems:
        raise RequestError(problems, name=req.name)


def _refuse_all(problems: list[Problem], req: FocomRequest) -> NoReturn:
    raise RequestError(problems, name=req.name)


def _refuse(problem: Problem, req: FocomRequest) -> NoReturn:
    raise RequestError([problem], name=req.name)


def mode_of(req: FocomRequest) -> Mode:
    if req.allClusters:
        return "all"
    return "names" if req.clusterNames is not None else "template"


def check_shape(req: FocomRequest, *, max_clusters: int) -> None:
    """Rules that need nothing but the request itself."""
    p: list[Problem] = []
    if len(req.name) > 63 or not _LABEL.fullmatch(req.name):
        p.append(Problem("$.name", "dns1123", f"{short(req.name)} is not a DNS-1123 label (≤ 63)"))
    template = any(v is not None for v in (req.templateName, req.templateVersion, req.templateParameters))
    chosen = [
        m
        for m, on in (
            ("allClusters", req.allClusters is True),
            ("clusterNames", req.clusterNames is not None),
            ("templateName", template),
        )
        if on
    ]
    if req.allClusters is False and not chosen:
        p.append(Problem("$.allClusters", "one-mode", "allClusters must be true when given"))
    elif len(chosen) != 1:
        p.append(
            Problem(
                "$",
                "one-mode",
                "exactly one of allClusters: true, clusterNames, or templateName + "
                f"templateParameters is required (got {', '.join(chosen) or 'none'})",
            )
        )
    p += _check_names(req, max_clusters)
    if template:
        if not req.templateName:
            p.append(Problem("$.templateName", "required", "templateName is required in template mode"))
        if not isinstance(req.templateParameters, dict):
            p.append(Problem("$.templateParameters", "required", "templateParameters is required in template mode"))
    if req.operation != "scale":
        for fld in ("workers", "targetWorkerCount"):
            if getattr(req, fld) is not None:
                p.append(Problem(f"$.{fld}", "scale-only", f"{fld} is only meaningful with operation 'scale'"))
    elif req.workers is not None and req.targetWorkerCount is not None:
        p.append(Problem("$.targetWorkerCount", "one-of", "give either workers or targetWorkerCount, not both"))
    if req.targetWorkerCount is not None and req.targetWorkerCount > MAX_HOSTS:
        p.append(Problem("$.targetWorkerCount", "range", f"at most {MAX_HOSTS}"))
    seen: set[str] = set()
    for i, w in enumerate(req.workers or ()):
        if len(w.hostId) > 63 or not _HOST_ID.fullmatch(w.hostId):
            p.append(Problem(f"$.workers[{i}].hostId", "label-value", f"{short(w.hostId)} is not a host id"))
        elif w.hostId in seen:
            p.append(Problem(f"$.workers[{i}].hostId", "unique", f"host {short(w.hostId)} is listed twice"))
        seen.add(w.hostId)
    _fail(p, req)


def _check_names(req: FocomRequest, max_clusters: int) -> list[Problem]:
    if req.clusterNames is None:
        return []
    p: list[Problem] = []
    if not req.clusterNames:
        p.append(Problem("$.clusterNames", "min-items", "clusterNames must name at least one cluster"))
    if len(req.clusterNames) > max_clusters:
        p.append(Problem("$.clusterNames", "max-items", f"at most {max_clusters} clusters per request"))
    seen: set[str] = set()
    for i, name in enumerate(req.clusterNames[: max_clusters + 1]):
        if len(name) > MAX_CLUSTER_NAME or not _LABEL.fullmatch(name):
            p.append(Problem(f"$.clusterNames[{i}]", "dns1123", f"{short(name)} is not a cluster name"))
        elif name in seen:
            p.append(Problem(f"$.clusterNames[{i}]", "unique", f"cluster {short(name)} is listed twice"))
        seen.add(name)
    return p


# ── create ─────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Wanted:
    """One cluster a create request asks for: resolved and validated, not yet a spec (it may need a pool VIP)."""

    inventory: Inventory
    cluster: InventoryCluster
    #: The JSON path of the cluster's entry: ``$.clusters[i]`` of the inventory, or of the template's
    #: single-cluster inventory (``template``), whose paths are shown as template parameters.
    path: str
    template: bool = False

    @property
    def needs_vip(self) -> bool:
        """Several control-plane hosts and no ``control_plane_endpoint``: a VIP must come from the pool."""
        return self.cluster.control_plane_endpoint is None and len(self.cluster.cluster_masters) > 1

    def shown(self, inventory_path: str) -> str:
        """How a path into the cluster's entry is named in a refusal."""
        return parameter_path(inventory_path) if self.template else f"inventory {inventory_path}"

    @property
    def vip_path(self) -> str:
        return self.shown(f"{self.path}.control_plane_endpoint")


def create_targets(
    req: FocomRequest, inventory: Inventory, catalog: Catalog, *, window: Window, vip_pool: bool, max_clusters: int
) -> list[Wanted]:
    """The clusters a create request asks for (every problem at once; VIPs are allocated after this)."""
    mode = mode_of(req)
    if mode == "template":
        return [_template_target(req, inventory, catalog, window, vip_pool)]
    if mode == "all":
        # The same rules ``o2ctl validate`` reports, at the same inventory paths.
        problems = all_clusters_problems(inventory, max_clusters=max_clusters)
        if problems:
            raise InventoryError(problems)
        clusters = list(inventory.clusters)
    else:
        p: list[Problem] = []
        clusters = []
        for i, name in enumerate(req.clusterNames or ()):
            found = inventory.cluster(name)
            if found is None:
                known = ", ".join(c.cluster_name for c in inventory.clusters[:20]) or "none"
                p.append(
                    Problem(
                        f"$.clusterNames[{i}]",
                        "cluster-exists",
                        f"no cluster {short(name)} in the inventory (known: {known})",
                    )
                )
            else:
                clusters.append(found)
        _fail(p, req)
    out = []
    for cluster in clusters:
        path = f"$.clusters[{inventory.cluster_index(cluster.cluster_name)}]"
        out.append(Wanted(inventory, cluster, path))
    return out


def create_specs(
    req: FocomRequest, wanted: list[Wanted], *, default_cni: str | None, vips: Mapping[str, str]
) -> list[ClusterSpec]:
    """The specs of ``wanted``; ``vips`` maps a cluster name to the VIP allocated for it from the pool."""
    p: list[Problem] = []
    specs = []
    for w in wanted:
        try:
            specs.append(
                w.inventory.cluster_spec(
                    w.cluster, default_cni=default_cni, path=w.path, vip=vips.get(w.cluster.cluster_name)
                )
            )
        except InputError as exc:
            rule = "vip-required" if exc.reason == "VipRequired" else "cluster-spec"
            p.append(Problem(w.shown(exc.path), rule, exc.message.split(": ", 1)[-1]))
    _fail(p, req)
    return specs


def vip_exclusions(inventory: Inventory) -> set[str]:
    """Addresses a pool VIP must never be: every host's address and every VIP the inventory names."""
    out = {h.host_ip for h in inventory.hosts}
    out.update(c.control_plane_endpoint for c in inventory.clusters if c.control_plane_endpoint)
    return out


def _template_target(
    req: FocomRequest, inventory: Inventory, catalog: Catalog, window: Window, vip_pool: bool
) -> Wanted:
    template = catalog.require(req.templateName or "", req.templateVersion)
    entry = resolve_entry(template, req.templateParameters or {}, inventory, window=window, vip_pool=vip_pool)
    if isinstance(entry, list):
        _refuse_all(entry, req)
    single, cluster = entry
    return Wanted(single, cluster, "$.clusters[0]", template=True)


# ── scale and delete: targets among the FPR's clusters ──────────────────────────────────


def target_clusters(req: FocomRequest, children: Mapping[str, str]) -> list[str]:
    """The FPR's clusters a scale/delete addresses; ``children`` maps cluster → desired state."""
    mode = mode_of(req)
    wanted_only = req.operation in ("scale", "upgrade")
    if mode == "all":
        return sorted(c for c, desired in children.items() if desired == "present" or not wanted_only)
    if mode == "names":
        names = list(req.clusterNames or ())
        paths = [f"$.clusterNames[{i}]" for i in range(len(names))]
    else:
        raw = (req.templateParameters or {}).get("clusterName")
        names = [raw] if isinstance(raw, str) else []
        paths = ["$.templateParameters.clusterName"]
        if not names:
            _refuse(Problem(paths[0], "required", "the template's clusterName names the cluster"), req)
    p = []
    for path, name in zip(paths, names, strict=True):
        if name not in children:
            have = ", ".join(sorted(children)[:20]) or "none"
            p.append(
                Problem(path, "cluster-exists", f"FPR {short(req.name)} has no cluster {short(name)} (it has: {have})")
            )
        elif wanted_only and children[name] != "present":
            p.append(Problem(path, "cluster-deleting", f"cluster {short(name)} is being deleted"))
    _fail(p, req)
    return names


def wanted_workers(req: FocomRequest, cluster: str, inventory: Inventory) -> tuple[list[str], str] | None:
    """An explicit new worker list and the path it came from, or None for ``targetWorkerCount``."""
    if req.targetWorkerCount is not None:
        return None
    if req.workers is not None:
        return [w.hostId for w in req.workers], "$.workers"
    if mode_of(req) == "template":
        hosts = (req.templateParameters or {}).get("hosts") or {}
        listed = hosts.get("workers") if isinstance(hosts, dict) else None
        if not isinstance(listed, list):
            _refuse(
                Problem(
                    "$.templateParameters.hosts.workers",
                    "required",
                    "scale needs workers, targetWorkerCount or templateParameters.hosts.workers",
                ),
                req,
            )
        ids = [h.get("hostId") for h in listed if isinstance(h, dict)]
        return [str(h) for h in ids if isinstance(h, str)], "$.templateParameters.hosts.workers"
    found = inventory.cluster(cluster)
    if found is None:
        _refuse(
            Problem(
                "$.workers",
                "required",
                f"cluster {short(cluster)} is not in the inventory any more; give workers or targetWorkerCount",
            ),
            req,
        )
    return found.worker_ids, f"inventory $.clusters[{inventory.cluster_index(cluster)}].cluster_workers"


def resolve_workers(
    req: FocomRequest, current: ClusterSpec, ids: list[str], where: str, inventory: Inventory
) -> ClusterSpec:
    """The cluster spec with ``ids`` as its workers; each host must exist and belong to no other cluster."""
    owners = {h: c.cluster_name for c in inventory.clusters for h in (*c.master_ids, *c.worker_ids)}
    masters = {h.host_id for h in current.control_plane}
    p: list[Problem] = []
    refs: list[HostRef] = []
    for i, host_id in enumerate(ids):
        path = f"{where}[{i}]" + (".hostId" if where.startswith("$") else ".host_id")
        host = inventory.host(host_id)
        if host is None:
            p.append(Problem(path, "host-exists", f"host {short(host_id)} is not in the inventory"))
        elif host_id in masters:
            p.append(Problem(path, "host-in-two-roles", f"host {short(host_id)} is a control-plane host"))
        elif owners.get(host_id, current.name) != current.name:
            p.append(
                Problem(
                    path,
                    "host-in-two-clusters",
                    f"host {short(host_id)} belongs to cluster {owners[host_id]!r} in the inventory",
                )
            )
        else:
            refs.append(host.ref())
    _fail(p, req)
    return _with_workers(req, current, refs, where)


def free_candidates(current: ClusterSpec, inventory: Inventory) -> list[str]:
    """Hosts that may join ``current`` as workers, best first: its own inventory workers, then unassigned hosts."""
    used = {h.host_id for h in current.all_hosts}
    assigned = {h for c in inventory.clusters for h in (*c.master_ids, *c.worker_ids)}
    own = inventory.cluster(current.name)
    first = [h for h in (own.worker_ids if own else []) if h not in used]
    rest = sorted(h.host_id for h in inventory.hosts if h.host_id not in assigned and h.host_id not in used)
    return first + rest


def resize(req: FocomRequest, current: ClusterSpec, target: int, free: list[str], inventory: Inventory) -> ClusterSpec:
    """``current`` with exactly ``target`` workers: keep the first ones, or add from ``free`` (in order)."""
    workers = list(current.workers[:target])
    missing = target - len(workers)
    if missing > len(free):
        _refuse(
            Problem(
                "$.targetWorkerCount",
                "capacity",
                f"cluster {current.name!r} needs {missing} more worker(s); only {len(free)} free inventory host(s)",
            ),
            req,
        )
    for host_id in free[:missing]:
        host = inventory.host(host_id)
        assert host is not None
        workers.append(host.ref())
    return _with_workers(req, current, workers, "$.targetWorkerCount")


def _with_workers(req: FocomRequest, current: ClusterSpec, workers: list[HostRef], where: str) -> ClusterSpec:
    try:
        return ClusterSpec.model_validate({**current.model_dump(), "workers": workers})
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        _refuse(Problem(where, "cluster-spec", f"cluster {current.name!r}: {first['msg']}"), req)


def request_fields(req: FocomRequest) -> dict[str, Any]:
    """The request as it counts for idempotency (everything but the type tag)."""
    return req.model_dump(mode="json", exclude={"type"})
