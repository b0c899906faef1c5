"""Request routes: ``/provisioningRequests`` (create/scale/delete, list, one, delete, approve, reject) and
``/plans``.

The API never changes a record: it checks the request as FOCOM would, then publishes the same
message an SMO on the bus would (``focom.request`` or ``focom.decision`` on ``focom.requests``);
focom decides. Status codes: POST 202 (+``Location``) / 400 (``problems``) / 404 (scale/delete of an
unknown name) / 409 (hosts held by another request, or the name taken); GET 200 / 404; DELETE 202 /
404; approve/reject 202 / 404 / 409 (not waiting, or hosts taken meanwhile); POST /plans 200 / 400.
"""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web

from services.focom_api import schemas
from services.focom_api.api import BASE, Api, Checked, api, check, problems_json
from services.focom_api.state import FprView
from shared.httpapi.auth import READ, principal, requires
from shared.httpapi.problems import HttpProblem, bad_request, conflict, json_body, not_found
from shared.httpapi.query import collection_response, item_response
from shared.kinds import Decision
from shared.payloads import FocomDecision, FocomRequest, pr_id_for
from shared.safe_json import short
from shared.subjects import FOCOM_REQUESTS

log = structlog.get_logger(__name__)
PRS = f"{BASE}/provisioningRequests"


async def as_json(a: Api, fpr: FprView) -> dict[str, Any]:
    children = []
    for c in sorted(fpr.children.values(), key=lambda c: c.cluster):
        phase = c.state if c.settled else "pending"
        endpoint = await a.state.endpoint(c.pr_id) if phase == "fulfilled" else None
        children.append(
            {
                "cluster": c.cluster,
                "provisioningRequestId": c.pr_id,
                "provisioningPhase": phase,
                "stage": c.stage if c.settled else None,
                "reason": c.reason if c.settled else None,
                "message": c.message if c.settled else f"{c.command} requested",
                "clusterEndpoint": endpoint,
                "kubeconfigSecret": f"{c.cluster}-kubeconfig" if endpoint else None,
            }
        )
    out: dict[str, Any] = {
        "name": fpr.name,
        "operation": fpr.operation,
        "generation": fpr.generation,
        "phase": fpr.phase,
        "message": fpr.message,
        "children": children,
        "createdAt": fpr.created_at.isoformat(),
        "updatedAt": fpr.updated_at.isoformat(),
    }
    if fpr.pending is not None:
        out["request"] = fpr.pending
        out["plan"] = [
            {
                "cluster": p.cluster,
                "provisioningRequestId": p.pr_id,
                "controlPlane": list(p.control_plane),
                "workers": list(p.workers),
            }
            for p in fpr.plan
        ]
    return out


def _refused(checked: Checked) -> HttpProblem:
    p = checked.problems
    more = f" (and {len(p) - 1} more)" if len(p) > 1 else ""
    return bad_request(f"the provisioning request is invalid: {p[0]}{more}", problems=problems_json(p))


def _conflict(checked: Checked) -> HttpProblem:
    c = checked.conflicts
    shown = ", ".join(f"{x['host']} (cluster {x['cluster']}, held by {x['leasedTo']})" for x in c[:10])
    return conflict(f"host(s) held by another request: {shown}", conflicts=c)


async def _publish(a: Api, payload: FocomRequest | FocomDecision) -> None:
    await a.bus.emit(FOCOM_REQUESTS, payload, correlation_id=payload.name)


def _accepted(request: web.Request, a: Api, name: str, operation: str) -> web.Response:
    location = f"{a.base_url(request)}{PRS}/{name}"
    return web.json_response(
        {"name": name, "operation": operation, "location": location}, status=202, headers={"Location": location}
    )


async def _existing(a: Api, name: str) -> FprView:
    fpr = await a.state.fpr(name) if len(name) <= 63 else None
    if fpr is None:
        raise not_found(f"no provisioning request {short(name)}")
    return fpr


@requires("provisioner")
async def create(request: web.Request) -> web.Response:
    a = api(request)
    checked = await check(a, await json_body(request))
    if checked.problems:
        raise _refused(checked)
    req = checked.request
    assert req is not None
    current = await a.state.fpr(req.name)
    match req.operation:
        case "create":
            if current is not None and current.phase != "Deleted":
                fields = req.model_dump(mode="json", exclude={"type"})
                if current.pending != fields:
                    raise conflict(
                        f"the name {req.name!r} is taken by a request in phase {current.phase}; use "
                        "operation scale or delete on it, or another name",
                        name=req.name,
                    )
            if checked.conflicts:
                raise _conflict(checked)
        case "scale" | "delete":
            if current is None:
                raise not_found(f"no provisioning request {short(req.name)} to {req.operation}")
        case _:
            raise bad_request(f"unknown operation {req.operation!r}")
    await _publish(a, req)
    log.info("focom_request_published", fpr=req.name, operation=req.operation, by=principal(request).subject)
    return _accepted(request, a, req.name, req.operation)


@requires(*READ)
async def list_requests(request: web.Request) -> web.Response:
    a = api(request)
    objects = [await as_json(a, f) for f in await a.state.fprs() if f.phase != "Deleted"]
    return collection_response(
        request, objects, schemas.PROVISIONING_REQUEST, key=lambda o: str(o["name"]), identity=("name",)
    )


@requires(*READ)
async def get_request(request: web.Request) -> web.Response:
    a = api(request)
    fpr = await _existing(a, request.match_info["name"])
    if fpr.phase == "Deleted":
        raise not_found(f"provisioning request {fpr.name!r} was deleted")
    return item_response(request, await as_json(a, fpr), schemas.PROVISIONING_REQUEST, identity=("name",))


@requires("provisioner")
async def delete_request(request: web.Request) -> web.Response:
    a = api(request)
    fpr = await _existing(a, request.match_info["name"])
    if fpr.phase == "Deleted":
        raise not_found(f"provisioning request {fpr.name!r} was deleted")
    who = principal(request).subject
    if fpr.pending is not None and fpr.generation == 0:
        # Never carried out: deleting it is rejecting it (nothing to remove).
        await _publish(a, FocomDecision(name=fpr.name, decision="reject", by=who[:253]))
    else:
        await _publish(a, FocomRequest(name=fpr.name, operation="delete", allClusters=True))
    log.info("focom_delete_published", fpr=fpr.name, by=who)
    return _accepted(request, a, fpr.name, "delete")


async def _decide(request: web.Request, decision: Decision) -> web.Response:
    a = api(request)
    fpr = await _existing(a, request.match_info["name"])
    if fpr.pending is None or fpr.generation != 0:
        raise conflict(
            f"provisioning request {fpr.name!r} is not waiting for approval (phase {fpr.phase})",
            name=fpr.name,
            phase=fpr.phase,
        )
    if decision == "approve":
        # Checked again now (focom checks once more when it carries the request out).
        checked = await check(a, fpr.pending)
        if checked.problems:
            raise conflict(
                f"the request no longer validates: {checked.problems[0]}", problems=problems_json(checked.problems)
            )
        if checked.conflicts:
            raise _conflict(checked)
    await _publish(a, FocomDecision(name=fpr.name, decision=decision, by=principal(request).subject[:253]))
    log.info("focom_decision_published", fpr=fpr.name, decision=decision, by=principal(request).subject)
    return _accepted(request, a, fpr.name, decision)


@requires("approver")
async def approve(request: web.Request) -> web.Response:
    return await _decide(request, "approve")


@requires("approver")
async def reject(request: web.Request) -> web.Response:
    return await _decide(request, "reject")


@requires(*READ)
async def plan(request: web.Request) -> web.Response:
    """What the request would do, changing nothing: problems, lease feasibility, the resolved cluster specs.

    The CAPI manifests are rendered by ``o2ctl plan`` (only capi_renderer renders; no service imports
    another), from the same specs shown here.
    """
    a = api(request)
    body = await json_body(request)
    checked = await check(a, body)
    req = checked.request
    clusters: list[dict[str, Any]] = [
        {"spec": s.model_dump(mode="json"), "provisioningRequestId": pr_id_for(req.name, s.name) if req else ""}
        for s in checked.specs
    ]
    clusters += [
        {
            "cluster": w.cluster.cluster_name,
            "controlPlane": w.cluster.master_ids,
            "workers": w.cluster.worker_ids,
            "vip": "allocated from the pool on acceptance",
        }
        for w in checked.pooled
    ]
    valid = not checked.problems
    return web.json_response(
        {
            "name": req.name if req else str(body.get("name", ""))[:253],
            "operation": req.operation if req else "",
            "valid": valid,
            "problems": problems_json(checked.problems),
            "feasible": valid and not checked.conflicts,
            "feasibilityChecked": valid and (req is not None and req.operation == "create"),
            "conflicts": checked.conflicts,
            "clusters": clusters,
            "rendered": False,
            "renderedBy": "o2ctl plan",
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_route("GET", PRS, list_requests)
    app.router.add_route("POST", PRS, create)
    app.router.add_route("GET", PRS + "/{name}", get_request)
    app.router.add_route("DELETE", PRS + "/{name}", delete_request)
    app.router.add_route("POST", PRS + "/{name}/approve", approve)
    app.router.add_route("POST", PRS + "/{name}/reject", reject)
    app.router.add_route("POST", f"{BASE}/plans", plan)
