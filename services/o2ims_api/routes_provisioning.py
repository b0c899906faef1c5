"""Provisioning routes (``/o2ims-infrastructureProvisioning/v1/provisioningRequests``).

POST validates the body (exactly ``ProvisioningRequestData``), the template parameters against
the template's JSON Schema and the inventory's rules, reserves the hosts (the same atomic leases
FOCOM takes; held by the PR until o2ims releases them after deletion) and publishes the
``o2ims.requests.<pr>`` create. PUT publishes an update, DELETE a delete. Status codes:
POST 201 (+Location) / 400 / 409; PUT 200 / 400 / 404 / 409 / 422; DELETE 202 / 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web

from services.o2ims_api import schemas
from services.o2ims_api.api import PROVISIONING, VERSION, Api, api, uuid_param
from services.o2ims_api.provisioning import API_FPR, PrData, PrDataRecord, immutable_problems, info, parse_data
from services.o2ims_api.state import PrView
from shared.catalog import resolve
from shared.httpapi.auth import READ, requires
from shared.httpapi.problems import HttpProblem, bad_request, conflict, json_body, not_found, problem_list
from shared.httpapi.query import collection_response, item_response
from shared.leases import HostLeases, LeaseConflict
from shared.models import ClusterSpec
from shared.payloads import PrRequest
from shared.safe_json import Problem
from shared.store import DELETE, RecordExists, RecordStore
from shared.subjects import BUCKET_HOSTS, BUCKET_O2IMS_API_PRS, o2ims_request

log = structlog.get_logger(__name__)
P = f"{PROVISIONING}/{VERSION}/provisioningRequests"
#: The id of a provisioning request, kept by every field selection.
PR_ID = "provisioningRequestData/provisioningRequestId"


def _now() -> datetime:
    return datetime.now(UTC)


async def _kept(a: Api) -> RecordStore[PrDataRecord]:
    return RecordStore(await a.bus.kv(BUCKET_O2IMS_API_PRS), PrDataRecord)


def _invalid(problems: list[Problem], what: str = "the provisioning request is invalid") -> HttpProblem:
    return bad_request(
        f"{what}: {problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
        problems=problem_list(problems),
    )


async def _spec(a: Api, data: PrData) -> ClusterSpec:
    template = a.catalog.get(data.templateName, data.templateVersion)
    if template is None:
        path = "$.templateVersion" if a.catalog.get(data.templateName, None) else "$.templateName"
        raise _invalid(
            [
                Problem(
                    path,
                    "template-exists",
                    f"no template {data.templateName!r} {data.templateVersion!r} "
                    f"(known: {', '.join(a.catalog.names()) or 'none'})",
                )
            ]
        )
    inventory = await a.state.inventory()
    if inventory is None:
        raise HttpProblem(
            503,
            "the inventory is missing or invalid; no request can be resolved to hosts now",
            headers={"Retry-After": "30"},
        )
    result = resolve(
        template, data.templateParameters, inventory, window=a.settings.k8s_window, default_cni=a.settings.default_cni
    )
    if isinstance(result, list):
        raise _invalid(result)
    return result


async def _data(request: web.Request) -> PrData:
    parsed = parse_data(await json_body(request))
    if isinstance(parsed, list):
        raise _invalid(parsed)
    return parsed


async def _lease(a: Api, pr_id: str, spec: ClusterSpec) -> list[str]:
    try:
        return await HostLeases(await a.bus.kv(BUCKET_HOSTS)).acquire(pr_id, [h.host_id for h in spec.all_hosts])
    except LeaseConflict as exc:
        raise conflict(
            f"host {exc.host_id} is leased to another provisioning request ({exc.holder}); nothing was reserved",
            hosts=[exc.host_id],
        ) from None


async def _publish(
    a: Api, pr_id: str, operation: str, data: PrData | None, spec: ClusterSpec | None, pr: PrView | None = None
) -> None:
    req = PrRequest(
        pr_id=pr_id,
        fpr=pr.fpr if pr else API_FPR,
        operation=operation,
        template_name=data.templateName if data else (pr.template_name if pr else "byoh-workload-cluster"),
        template_version=data.templateVersion if data else (pr.template_version if pr else "v1.0.0"),
        spec=spec,
    )
    try:
        await a.bus.emit(o2ims_request(pr_id), req, correlation_id=req.fpr)
    except Exception as exc:
        log.warning("pr_request_not_published", pr_id=pr_id, operation=operation, error=type(exc).__name__)
        raise HttpProblem(
            503, "the request could not be handed to o2ims; try again", headers={"Retry-After": "5"}
        ) from None
    log.info("pr_request_published", pr_id=pr_id, operation=operation)


def _location(a: Api, request: web.Request, pr_id: str) -> str:
    return f"{a.base_url(request)}{P}/{pr_id}"


# ── reads ──────────────────────────────────────────────────────────────────────────────


async def _all(a: Api) -> list[dict[str, Any]]:
    store = await _kept(a)
    prs = await a.state.prs()
    kept = {}
    for key in await store.keys():
        got = await store.get(key)
        if got is not None:
            kept[key] = got[0]
    out = []
    for pr_id in sorted(set(prs) | set(kept)):
        found = info(prs.get(pr_id), kept.get(pr_id))
        if found is not None:
            out.append(found)
        elif pr_id in kept and pr_id not in prs:
            await _forget(a, pr_id)
    return out


async def _forget(a: Api, pr_id: str) -> None:
    """A deletion finished: drop what we kept about the request (only if still marked deleting)."""
    pr = await a.state.pr(pr_id)
    if pr is None or pr.state == "deleted":
        await (await _kept(a)).mutate(pr_id, lambda r: DELETE if r is not None and r.deleting else None)


async def _one(a: Api, pr_id: str) -> tuple[PrView | None, tuple[PrDataRecord, int] | None, dict[str, Any] | None]:
    pr = await a.state.pr(pr_id)
    got = await (await _kept(a)).get(pr_id)
    return pr, got, info(pr, got[0] if got else None)


@requires(*READ)
async def list_prs(request: web.Request) -> web.Response:
    return collection_response(
        request,
        await _all(api(request)),
        schemas.PR_INFO,
        lambda o: o["provisioningRequestData"]["provisioningRequestId"],
        identity=(PR_ID,),
    )


@requires(*READ)
async def get_pr(request: web.Request) -> web.Response:
    a, pr_id = api(request), uuid_param(request, "provisioningRequestId", "provisioning request")
    _, kept, found = await _one(a, pr_id)
    if found is None:
        if kept is not None:
            await _forget(a, pr_id)
        raise not_found(f"no provisioning request {pr_id}")
    return item_response(request, found, schemas.PR_INFO, identity=(PR_ID,))


# ── writes ─────────────────────────────────────────────────────────────────────────────


@requires("provisioner")
async def create_pr(request: web.Request) -> web.Response:
    a = api(request)
    data = await _data(request)
    pr_id = data.id
    spec = await _spec(a, data)
    existing = await a.state.pr(pr_id)
    if existing is not None and existing.state != "deleted":
        raise conflict(f"provisioning request {pr_id} exists")
    clash = next((p for p in (await a.state.prs()).values() if p.cluster == spec.name and p.pr_id != pr_id), None)
    if clash is not None:
        raise conflict(f"cluster {spec.name!r} is already provisioned by request {clash.pr_id}")
    store = await _kept(a)
    now = _now()
    record = PrDataRecord(data=data, created_at=now, updated_at=now)
    try:
        revision = await store.create(pr_id, record)
    except RecordExists:
        got = await store.get(pr_id)
        if got is None or not got[0].deleting or (existing is not None and existing.state != "deleted"):
            raise conflict(f"provisioning request {pr_id} exists") from None
        # A finished deletion's leftover: this id may be used again.
        revision = await store.update(pr_id, record, got[1])
    try:
        await _lease(a, pr_id, spec)
        await _publish(a, pr_id, "create", data, spec)
    except BaseException:
        leases = HostLeases(await a.bus.kv(BUCKET_HOSTS))
        await leases.release(pr_id, [h.host_id for h in spec.all_hosts])
        await store.delete(pr_id, revision)
        raise
    body = info(None, record)
    assert body is not None
    return web.json_response(body, status=201, headers={"Location": _location(a, request, pr_id)})


@requires("provisioner")
async def update_pr(request: web.Request) -> web.Response:
    a, pr_id = api(request), uuid_param(request, "provisioningRequestId", "provisioning request")
    data = await _data(request)
    if data.id != pr_id:
        raise HttpProblem(
            422, f"provisioningRequestId {data.provisioningRequestId} in the body differs from {pr_id} in the path"
        )
    pr, kept, found = await _one(a, pr_id)
    if found is None or (kept is not None and kept[0].deleting) or (pr is not None and pr.state == "deleting"):
        if found is None:
            raise not_found(f"no provisioning request {pr_id}")
        raise conflict(f"provisioning request {pr_id} is being deleted")
    spec = await _spec(a, data)
    old_spec = pr.spec if pr is not None else None
    if old_spec is not None:
        problems = immutable_problems(
            old_spec, spec, kept[0].data if kept else None, data, applied=pr is not None and pr.capi_requested
        )
        if problems:
            raise conflict(f"this change is not possible: {problems[0]}", problems=problem_list(problems))
    await _lease(a, pr_id, spec)
    store = await _kept(a)
    now = _now()
    created = kept[0].created_at if kept else (pr.created_at if pr else now)
    await store.mutate(pr_id, lambda r: PrDataRecord(data=data, created_at=created, updated_at=now))
    if spec != old_spec or (pr is not None and pr.state == "failed"):
        # A PUT of a failed request retries it, changed or not (o2ims runs the flow again).
        await _publish(a, pr_id, "update" if pr is not None else "create", data, spec, pr)
    _, _, body = await _one(a, pr_id)
    assert body is not None
    return web.json_response(body)


@requires("provisioner")
async def delete_pr(request: web.Request) -> web.Response:
    a, pr_id = api(request), uuid_param(request, "provisioningRequestId", "provisioning request")
    pr, kept, found = await _one(a, pr_id)
    if found is None:
        raise not_found(f"no provisioning request {pr_id}")
    if kept is not None and not kept[0].deleting:
        await (await _kept(a)).mutate(
            pr_id, lambda r: r.model_copy(update={"deleting": True, "updated_at": _now()}) if r is not None else None
        )
    if pr is not None and pr.state != "deleting":
        await _publish(a, pr_id, "delete", kept[0].data if kept else None, pr.spec, pr)
    elif pr is None and kept is not None:
        # o2ims never took it up: a delete still reaches it, and the leases we took go back.
        await _publish(a, pr_id, "delete", kept[0].data, None)
        await HostLeases(await a.bus.kv(BUCKET_HOSTS)).release(pr_id)
    _, _, body = await _one(a, pr_id)
    if body is not None:
        body["status"]["provisioningPhase"] = "DELETING"
    return web.json_response(body or {}, status=202)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get(P, list_prs)
    r.add_post(P, create_pr)
    r.add_get(f"{P}/{{provisioningRequestId}}", get_pr)
    r.add_put(f"{P}/{{provisioningRequestId}}", update_pr)
    r.add_delete(f"{P}/{{provisioningRequestId}}", delete_pr)


__all__ = ["add_routes"]
