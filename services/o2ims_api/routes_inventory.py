"""Inventory routes (``/o2ims-infrastructureInventory/v1``) and the API-version documents of all three APIs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from services.o2ims_api import objects, schemas
from services.o2ims_api.api import INVENTORY, MONITORING, PROVISIONING, VERSION, api, find
from shared.httpapi.auth import READ, principal, requires
from shared.httpapi.problems import not_found
from shared.httpapi.query import collection_response, item_response, parse_selector
from shared.safe_json import short

I = f"{INVENTORY}/{VERSION}"  # noqa: E741 - the prefix's name in the O2IMS documents
NO_DICTIONARY = (("alarmDictionary",),)
PROFILE = (("extensions", "profileName"), ("extensions", "profileData"))


def versions_handler(prefix: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    @requires(*READ)
    async def handler(_request: web.Request) -> web.Response:
        return web.json_response(
            {
                "uriPrefix": f"{prefix}/{VERSION}",
                "apiVersions": [{"version": "1.0.0", "isDeprecated": False, "retirementDate": None}],
            }
        )

    return handler


@requires(*READ)
async def get_cloud(request: web.Request) -> web.Response:
    a = api(request)
    body = objects.o_cloud(await a.snapshot(), a.base_url(request))
    return item_response(request, body, schemas.O_CLOUD, identity=("oCloudId",))


@requires(*READ)
async def list_types(request: web.Request) -> web.Response:
    snap = await api(request).snapshot(prs=False, leases=False)
    return collection_response(
        request,
        objects.resource_types(snap),
        schemas.RESOURCE_TYPE,
        lambda o: o["resourceTypeId"],
        NO_DICTIONARY,
        ("resourceTypeId",),
    )


@requires(*READ)
async def get_type(request: web.Request) -> web.Response:
    snap = await api(request).snapshot(prs=False, leases=False)
    found = find(objects.resource_types(snap), "resourceTypeId", request.match_info["resourceTypeId"])
    if found is None:
        raise not_found(f"no resource type {short(request.match_info['resourceTypeId'])}")
    return item_response(request, found, schemas.RESOURCE_TYPE_DETAIL, identity=("resourceTypeId",))


@requires(*READ)
async def list_pools(request: web.Request) -> web.Response:
    snap = await api(request).snapshot(prs=False, leases=False)
    return collection_response(
        request, objects.pools(snap), schemas.RESOURCE_POOL, lambda o: o["resourcePoolId"], identity=("resourcePoolId",)
    )


async def _pool(request: web.Request) -> objects.Snapshot:
    snap = await api(request).snapshot(prs=False)
    pool = request.match_info["resourcePoolId"]
    if find(objects.pools(snap), "resourcePoolId", pool) is None:
        raise not_found(f"no resource pool {short(pool)}")
    return snap


@requires(*READ)
async def get_pool(request: web.Request) -> web.Response:
    snap = await _pool(request)
    found = find(objects.pools(snap), "resourcePoolId", request.match_info["resourcePoolId"])
    assert found is not None
    return item_response(request, found, schemas.RESOURCE_POOL, identity=("resourcePoolId",))


@requires(*READ)
async def list_resources(request: web.Request) -> web.Response:
    snap = await _pool(request)
    pool = request.match_info["resourcePoolId"]
    items = [r for r in objects.resources(snap) if r["resourcePoolId"] == pool]
    return collection_response(request, items, schemas.RESOURCE, lambda o: o["resourceId"], identity=("resourceId",))


@requires(*READ)
async def get_resource(request: web.Request) -> web.Response:
    snap = await _pool(request)
    pool, rid = request.match_info["resourcePoolId"], request.match_info["resourceId"]
    found = find([r for r in objects.resources(snap) if r["resourcePoolId"] == pool], "resourceId", rid)
    if found is None:
        raise not_found(f"no resource {short(rid)} in pool {short(pool)}")
    return item_response(request, found, schemas.RESOURCE, identity=("resourceId",))


async def _with_profile(request: web.Request, managers: list[dict[str, object]]) -> list[dict[str, object]]:
    """``profileName``/``profileData`` for ``all_fields`` requests of admins; nobody else ever sees them."""
    if "all_fields" not in request.rel_url.query or not principal(request).has("admin"):
        return managers
    a = api(request)
    out = []
    for dm in managers:
        ext = dict(dm["extensions"])  # type: ignore[call-overload]
        ext["profileName"] = "native_k8sapi"
        profile = await a.profiles.profile(str(ext["clusterName"]), str(ext["namespace"]))
        if profile is not None:
            ext["profileData"] = profile
        out.append({**dm, "extensions": ext})
    return out


@requires(*READ)
async def list_managers(request: web.Request) -> web.Response:
    parse_selector(request.rel_url.query, schemas.DEPLOYMENT_MANAGER)  # refuse a bad query before any read
    snap = await api(request).snapshot()
    items = await _with_profile(request, objects.deployment_managers(snap))
    return collection_response(
        request,
        items,
        schemas.DEPLOYMENT_MANAGER,
        lambda o: o["deploymentManagerId"],
        PROFILE,
        ("deploymentManagerId",),
    )


@requires(*READ)
async def get_manager(request: web.Request) -> web.Response:
    parse_selector(request.rel_url.query, schemas.DEPLOYMENT_MANAGER)
    snap = await api(request).snapshot()
    dm_id = request.match_info["deploymentManagerId"]
    found = find(objects.deployment_managers(snap), "deploymentManagerId", dm_id)
    if found is None:
        raise not_found(f"no deployment manager {short(dm_id)}")
    (item,) = await _with_profile(request, [found])
    return item_response(request, item, schemas.DEPLOYMENT_MANAGER, PROFILE, identity=("deploymentManagerId",))


def add_routes(app: web.Application) -> None:
    r = app.router
    for prefix in (INVENTORY, MONITORING, PROVISIONING):
        handler = versions_handler(prefix)
        r.add_get(f"{prefix}/api_versions", handler)
        r.add_get(f"{prefix}/{VERSION}/api_versions", handler)
    r.add_get(I, get_cloud)
    r.add_get(f"{I}/", get_cloud)
    r.add_get(f"{I}/resourceTypes", list_types)
    r.add_get(f"{I}/resourceTypes/{{resourceTypeId}}", get_type)
    r.add_get(f"{I}/resourcePools", list_pools)
    r.add_get(f"{I}/resourcePools/{{resourcePoolId}}", get_pool)
    r.add_get(f"{I}/resourcePools/{{resourcePoolId}}/resources", list_resources)
    r.add_get(f"{I}/resourcePools/{{resourcePoolId}}/resources/{{resourceId}}", get_resource)
    r.add_get(f"{I}/deploymentManagers", list_managers)
    r.add_get(f"{I}/deploymentManagers/{{deploymentManagerId}}", get_manager)
