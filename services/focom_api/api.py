"""What every route handler shares (settings, bus, state reader, catalog) and FOCOM request checking.

``check`` runs FOCOM's own rules (``shared.focom_request``: the same problems ``o2ctl validate`` and
``plan`` report) and the host-lease feasibility against the live ``hosts`` bucket; it changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from services.focom_api.settings import FocomApiSettings
from services.focom_api.state import State
from shared import focom_request as rq
from shared.bus import Bus
from shared.catalog import Catalog
from shared.errors import InputError
from shared.httpapi.problems import HttpProblem
from shared.inventory import Inventory, InventoryError
from shared.models import ClusterSpec
from shared.payloads import FocomRequest, pr_id_for
from shared.safe_json import Problem

BASE = "/focom/v1"
_RULE = re.compile(r"\[([a-z0-9-]+)\]")


@dataclass
class Api:
    settings: FocomApiSettings
    bus: Bus
    state: State
    catalog: Catalog

    def base_url(self, request: web.Request) -> str:
        if self.settings.external_url:
            return self.settings.external_url.rstrip("/")
        return f"{request.scheme}://{request.host}"


API_KEY = web.AppKey("focom_api", Api)


def api(request: web.Request) -> Api:
    return request.app[API_KEY]


@dataclass
class Checked:
    """A request checked against FOCOM's rules and the live leases (nothing was changed)."""

    request: FocomRequest | None
    problems: list[Problem] = field(default_factory=list)
    specs: list[ClusterSpec] = field(default_factory=list)
    #: Clusters whose spec waits for a pool VIP (shown by name and hosts; focom allocates the VIP).
    pooled: list[rq.Wanted] = field(default_factory=list)
    conflicts: list[dict[str, str]] = field(default_factory=list)

    def hosts(self) -> list[tuple[str, str]]:
        """(cluster, host id) of every host the request would lease."""
        out = [(s.name, h.host_id) for s in self.specs for h in s.all_hosts]
        for w in self.pooled:
            out += [(w.cluster.cluster_name, h) for h in (*w.cluster.master_ids, *w.cluster.worker_ids)]
        return out


def parse_request(body: dict[str, Any]) -> FocomRequest | list[Problem]:
    if "type" in body:
        return [Problem("$.type", "unknown-field", "type is not a field of a provisioning request")]
    try:
        return FocomRequest.model_validate(body)
    except ValidationError as exc:
        out = []
        for e in exc.errors(include_url=False, include_input=False):
            path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e["loc"])
            rule = "unknown-field" if e["type"] == "extra_forbidden" else e["type"]
            out.append(Problem(path, rule, e["msg"]))
        return out


async def inventory_or_fail(a: Api) -> Inventory:
    got = await a.state.inventory()
    if got is None:
        raise HttpProblem(
            503, "the inventory is missing; no request can be resolved to hosts now", headers={"Retry-After": "30"}
        )
    if isinstance(got, InventoryError):
        raise HttpProblem(
            503,
            f"the inventory is invalid ({len(got.problems)} problem(s)); no request can be resolved to hosts now",
            extra={"problems": _problems(list(got.problems))},
            headers={"Retry-After": "30"},
        )
    return got


def _problems(problems: list[Problem]) -> list[dict[str, str]]:
    return [{"path": p.path, "rule": p.rule, "message": p.message} for p in problems]


async def check(a: Api, body: dict[str, Any]) -> Checked:
    """Validate ``body`` as FOCOM would and, for a create, find the hosts other requests hold."""
    parsed = parse_request(body)
    if isinstance(parsed, list):
        return Checked(None, parsed)
    req, s = parsed, a.settings
    try:
        rq.check_shape(req, max_clusters=s.max_clusters_per_request)
    except rq.RequestError as exc:
        return Checked(req, list(exc.problems))
    if req.operation != "create":
        return Checked(req)
    inventory = await inventory_or_fail(a)
    out = Checked(req)
    try:
        wanted = rq.create_targets(
            req, inventory, a.catalog, window=s.k8s_window, vip_pool=s.vip_pool, max_clusters=s.max_clusters_per_request
        )
        direct = [w for w in wanted if not w.needs_vip]
        out.pooled = [w for w in wanted if w.needs_vip]
        out.specs = rq.create_specs(req, direct, default_cni=s.default_cni, vips={})
    except (rq.RequestError, InventoryError) as exc:
        out.problems = list(exc.problems)
        return out
    except InputError as exc:
        found = _RULE.search(exc.message)
        rule = found.group(1) if found else "invalid"
        out.problems = [Problem(exc.path or "$", rule, exc.message.split("]: ", 1)[-1])]
        return out
    leases = await a.state.leases()
    for cluster, host in out.hosts():
        holder = leases.get(host)
        if holder is not None and holder != pr_id_for(req.name, cluster):
            out.conflicts.append({"cluster": cluster, "host": host, "leasedTo": holder})
    return out


def problems_json(problems: list[Problem]) -> list[dict[str, str]]:
    return _problems(problems)
