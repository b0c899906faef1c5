"""Contract tests of the inventory API and the cross-cutting rules (auth, errors, query language)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from services.o2ims.record import PrRecord
from services.o2ims_api import schemas
from shared.bus import Bus
from shared.httpapi.auth import generate_signing_key, issue_token
from shared.models import ClusterSpec, HostRef
from shared.subjects import BUCKET_PR

from .support import AUDIENCE, ISSUER, Harness, I, M, P, now, valid

PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance"}


def problem(status: int, headers: object, body: object, expected: int) -> dict[str, object]:
    assert status == expected, body
    assert headers["Content-Type"].startswith("application/problem+json")  # type: ignore[index]
    assert isinstance(body, dict) and body.keys() >= PROBLEM_FIELDS and body["status"] == expected, body
    return body


async def test_api_versions_of_every_api(harness: Harness) -> None:
    for prefix in (
        "/o2ims-infrastructureInventory",
        "/o2ims-infrastructureMonitoring",
        "/o2ims-infrastructureProvisioning",
    ):
        for path in (f"{prefix}/api_versions", f"{prefix}/v1/api_versions"):
            status, _, body = await harness.call("GET", path, role="reader")
            assert status == 200
            valid(schemas.API_VERSIONS, body)
            assert body["uriPrefix"] == f"{prefix}/v1"
    status, headers, body = await harness.call("GET", "/o2ims-infrastructureInventory/v2", role="reader")
    problem(status, headers, body, 404)
    status, headers, body = await harness.call("GET", "/o2ims-infrastructureInventory/v2/resourcePools")
    problem(status, headers, body, 404)


async def test_o_cloud_with_and_without_slash(harness: Harness) -> None:
    for path in (I, I + "/"):
        status, _, body = await harness.call("GET", path, role="reader")
        assert status == 200
        valid(schemas.O_CLOUD, body)
        assert body["serviceUri"] == harness.base
        assert body["globalcloudId"] == body["globalCloudId"] == "0e2a1a52-5f07-4a39-8d2e-3a0a3c7d9b11"


async def test_401_for_every_kind_of_bad_token(harness: Harness, tmp_path: Path) -> None:
    generate_signing_key(tmp_path / "other.pem", tmp_path / "other.pub.pem")
    foreign = issue_token((tmp_path / "other.pem").read_bytes(), issuer=ISSUER, audience=AUDIENCE)
    bad = {
        "missing": None,
        "garbage": "not.a.jwt",
        "foreign key": foreign,
        "wrong issuer": harness.token("admin", issuer="someone-else"),
        "wrong audience": harness.token("admin", audience="focom"),
        "expired": harness.token("admin", ttl=-3600),
    }
    for why, token in bad.items():
        status, headers, body = await harness.call("GET", f"{I}/resourcePools", role=None, token=token)
        problem(status, headers, body, 401)
        assert headers["WWW-Authenticate"].startswith("Bearer"), why
    # Unknown paths are no way around authentication either.
    status, headers, body = await harness.call("GET", "/nothing/here", role=None)
    problem(status, headers, body, 401)


async def test_403_for_a_token_without_a_role(harness: Harness) -> None:
    status, headers, body = await harness.call("GET", f"{I}/resourcePools", role=None, token=harness.token())
    assert "roles" in problem(status, headers, body, 403)["detail"]  # type: ignore[operator]


async def test_405_with_allow_and_a_body(harness: Harness) -> None:
    status, headers, body = await harness.call("POST", f"{I}/resourcePools", body={})
    problem(status, headers, body, 405)
    assert "GET" in headers["Allow"] and "POST" not in headers["Allow"]
    status, headers, body = await harness.call("DELETE", f"{I}/resourceTypes")
    problem(status, headers, body, 405)


async def _pools(harness: Harness) -> dict[str, str]:
    status, _, body = await harness.call("GET", f"{I}/resourcePools", role="reader")
    assert status == 200
    for pool in body:
        valid(schemas.RESOURCE_POOL, pool)
    return {p["name"]: p["resourcePoolId"] for p in body}


async def test_pools_and_resources(harness: Harness) -> None:
    pools = await _pools(harness)
    assert set(pools) == {"default", "edge"}
    status, _, body = await harness.call("GET", f"{I}/resourcePools/{pools['edge']}")
    assert status == 200 and valid(schemas.RESOURCE_POOL, body)["name"] == "edge"
    status, _, resources = await harness.call("GET", f"{I}/resourcePools/{pools['edge']}/resources")
    assert status == 200
    assert sorted(r["extensions"]["hostId"] for r in resources) == ["h05", "h06"]
    for r in resources:
        valid(schemas.RESOURCE, r)
        assert "ssh_key_file" not in str(r) and "/keys/" not in str(r)
    rid = resources[0]["resourceId"]
    status, _, one = await harness.call("GET", f"{I}/resourcePools/{pools['edge']}/resources/{rid}")
    assert status == 200 and one == resources[0]
    for path in (
        f"{I}/resourcePools/{pools['default']}/resources/{rid}",
        f"{I}/resourcePools/00000000-0000-0000-0000-000000000000",
        f"{I}/resourcePools/00000000-0000-0000-0000-000000000000/resources",
    ):
        status, headers, body = await harness.call("GET", path)
        problem(status, headers, body, 404)


async def test_resource_types_with_alarm_dictionary_in_the_detail(harness: Harness) -> None:
    status, _, types = await harness.call("GET", f"{I}/resourceTypes")
    assert status == 200
    for t in types:
        valid(schemas.RESOURCE_TYPE, t)
        assert "alarmDictionary" not in t
    host_type = next(t for t in types if t["resourceKind"] == "PHYSICAL")
    status, _, detail = await harness.call("GET", f"{I}/resourceTypes/{host_type['resourceTypeId']}")
    assert status == 200
    valid(schemas.RESOURCE_TYPE_DETAIL, detail)
    names = {d["alarmName"] for d in detail["alarmDictionary"]["alarmDefinition"]}
    assert {"HostUnreachable", "HostKeyChanged", "ByoHostFailed", "HostQuarantined"} <= names
    status, headers, body = await harness.call("GET", f"{I}/resourceTypes/not-a-type")
    problem(status, headers, body, 404)


async def _resources(harness: Harness, pool: str, **params: str) -> tuple[int, list[str] | dict[str, object]]:
    status, _, body = await harness.call("GET", f"{I}/resourcePools/{pool}/resources", params=params)
    if status != 200:
        return status, body
    return status, sorted(r["extensions"]["hostId"] for r in body)


@pytest.mark.parametrize(
    ("expr", "hosts"),
    [
        ("(eq,extensions/hostName,node-02)", ["h02"]),
        ("(neq,extensions/hostName,node-02)", ["h01", "h03", "h04"]),
        ("(gt,extensions/address,10.10.0.12)", ["h03", "h04"]),
        ("(lt,extensions/address,10.10.0.12)", ["h01"]),
        ("(gte,extensions/address,10.10.0.12)", ["h02", "h03", "h04"]),
        ("(lte,extensions/address,10.10.0.12)", ["h01", "h02"]),
        ("(cont,description,node-0)", ["h01", "h02", "h03", "h04"]),
        ("(ncont,extensions/hostName,01)", ["h02", "h03", "h04"]),
        ("(in,extensions/hostId,h01,h03,h99)", ["h01", "h03"]),
        ("(nin,extensions/hostId,h01,h03)", ["h02", "h04"]),
        ("(eq,extensions/labels/rack,r1)", ["h01", "h03"]),
        ("(eq,extensions/allocated,false);(eq,extensions/labels/rack,r0)", ["h02", "h04"]),
        ("(eq,description,'bare-metal host node-01')", ["h01"]),
    ],
)
async def test_every_filter_operator(harness: Harness, expr: str, hosts: list[str]) -> None:
    pool = (await _pools(harness))["default"]
    assert await _resources(harness, pool, filter=expr) == (200, hosts)


@pytest.mark.parametrize(
    "params",
    [
        {"filter": "(eq,noSuchAttribute,1)"},
        {"filter": "(eq,extensions)"},
        {"filter": "(like,description,x)"},
        {"filter": "eq,description,x"},
        {"filter": "(eq,description,'unbalanced)"},
        {"fields": "resourceId,nope"},
        {"exclude_fields": "nope/deeper"},
        {"all_fields": "", "fields": "resourceId"},
        {"fields": "resourceId", "exclude_fields": "description"},
        {"exclude_fields": "description", "exclude_default": ""},
        {"page_size": "0"},
        {"nextpage_opaque_marker": "%%%"},
    ],
)
async def test_bad_queries_are_400(harness: Harness, params: dict[str, str]) -> None:
    pool = (await _pools(harness))["default"]
    status, headers, body = await harness.call("GET", f"{I}/resourcePools/{pool}/resources", params=params)
    problem(status, headers, body, 400)


async def test_field_selectors(harness: Harness) -> None:
    pool = (await _pools(harness))["default"]
    path = f"{I}/resourcePools/{pool}/resources"
    _, _, only = await harness.call("GET", path, params={"fields": "resourceId,extensions/hostName"})
    assert all(set(r) == {"resourceId", "extensions"} and set(r["extensions"]) == {"hostName"} for r in only)
    _, _, without = await harness.call("GET", path, params={"exclude_fields": "elements,extensions/labels"})
    assert all("elements" not in r and "labels" not in r["extensions"] and "hostId" in r["extensions"] for r in without)
    _, _, full = await harness.call("GET", path, params={"all_fields": ""})
    _, _, default = await harness.call("GET", path, params={"exclude_default": ""})
    assert full == default and all(valid(schemas.RESOURCE, r) for r in full)
    # The id is mandatory: ``fields`` keeps it.
    rid = full[0]["resourceId"]
    status, _, one = await harness.call("GET", f"{path}/{rid}", params={"fields": "description"})
    assert status == 200 and one == {"resourceId": rid, "description": full[0]["description"]}
    _, _, types = await harness.call("GET", f"{I}/resourceTypes", params={"all_fields": ""})
    assert all("alarmDictionary" in t for t in types)
    # alarmDictionary is excluded by default: exclude_fields shows it, fields + exclude_default adds it.
    _, _, types = await harness.call("GET", f"{I}/resourceTypes", params={"exclude_fields": "vendor"})
    assert all("alarmDictionary" in t and "vendor" not in t for t in types)
    _, _, types = await harness.call("GET", f"{I}/resourceTypes", params={"fields": "name"})
    assert all(set(t) == {"resourceTypeId", "name"} for t in types)
    _, _, types = await harness.call(
        "GET", f"{I}/resourceTypes", params={"fields": "alarmDictionary", "exclude_default": ""}
    )
    assert all("alarmDictionary" in t and "vendor" in t for t in types)
    _, _, types = await harness.call("GET", f"{I}/resourceTypes", params={"exclude_default": ""})
    assert all("alarmDictionary" not in t and "vendor" in t for t in types)


async def test_paging_follows_the_link_header(harness: Harness) -> None:
    pool = (await _pools(harness))["default"]
    url, seen, pages = f"{I}/resourcePools/{pool}/resources?page_size=3&fields=resourceId", [], 0
    while url:
        status, headers, body = await harness.call("GET", url)
        assert status == 200 and len(body) <= 3
        seen += [r["resourceId"] for r in body]
        pages += 1
        link = headers.get("Link")
        if link is None:
            break
        m = re.fullmatch(r'<(.+)>; rel="next"', link)
        assert m is not None, link
        url = m.group(1).removeprefix(harness.base)
        assert "nextpage_opaque_marker=" in url
    assert pages == 2 and len(seen) == len(set(seen)) == 4


async def test_fulfilled_clusters_are_deployment_managers(harness: Harness, bus: Bus) -> None:
    hosts = (
        HostRef(host_id="h01", host_name="node-01", host_ip="10.10.0.11"),
        HostRef(host_id="h02", host_name="node-02", host_ip="10.10.0.12"),
    )
    spec = ClusterSpec(
        name="edge1", k8s_version="v1.31.4", control_plane=hosts[:1], workers=hosts[1:], vip="10.10.0.200"
    )
    t = now()
    kv = await bus.kv(BUCKET_PR)
    records = {
        "11111111-1111-4111-8111-111111111111": ("fulfilled", True),
        "22222222-2222-4222-8222-222222222222": ("progressing", False),
    }
    for pr_id, (state, once) in records.items():
        rec = PrRecord(
            pr_id=pr_id,
            fpr="test",
            spec=spec.model_copy(update={"name": f"c{state[:4]}"}),
            state=state,
            stage_entered_at=t,
            request_at=t,
            created_at=t,
            updated_at=t + timedelta(seconds=1),
            node_cluster_id=f"{pr_id[:-1]}0",
            fulfilled_once=once,
        )
        await kv.put(pr_id, rec.model_dump_json().encode())
    status, _, managers = await harness.call("GET", f"{I}/deploymentManagers", role="reader")
    assert status == 200 and [m["name"] for m in managers] == ["cfulf"]
    dm = valid(schemas.DEPLOYMENT_MANAGER, managers[0])
    assert dm["serviceUri"] == "https://10.10.0.200:6443"
    assert dm["deploymentManagerId"] == "11111111-1111-4111-8111-111111111110"
    status, _, one = await harness.call("GET", f"{I}/deploymentManagers/{dm['deploymentManagerId']}")
    assert status == 200 and one == dm
    # profileName/profileData: only admins asking for all_fields.
    _, _, reader_all = await harness.call("GET", f"{I}/deploymentManagers", role="reader", params={"all_fields": ""})
    assert "profileName" not in reader_all[0]["extensions"]
    _, _, admin_all = await harness.call("GET", f"{I}/deploymentManagers", role="admin", params={"all_fields": ""})
    assert admin_all[0]["extensions"]["profileName"] == "native_k8sapi"
    status, headers, body = await harness.call("GET", f"{I}/deploymentManagers/{'0' * 8}-0000-0000-0000-{'0' * 12}")
    problem(status, headers, body, 404)
    assert M and P
