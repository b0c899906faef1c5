"""Contract tests of FOCOM's northbound API: every endpoint and status code, bodies checked with JSON Schemas.

focom runs in-process beside the API (o2ims's reports are played by the test), so accepted requests
really become FPR records and the API shows what focom decided.
"""

from __future__ import annotations

import json
from typing import Any

from services.focom_api import schemas
from shared import focom_request as rq
from shared.catalog import load_catalog
from shared.inventory import load_inventory
from shared.payloads import FocomRequest, pr_id_for

from .conftest import MakeSystem
from .support import BASE, problem, valid

PRS = "/provisioningRequests"


async def test_auth_and_generic_errors(make_system: MakeSystem) -> None:
    c, _ = await make_system()
    status, headers, body = await c.call("GET", PRS, role=None)
    assert status == 401 and "Bearer" in headers["WWW-Authenticate"]
    problem(body, 401)
    status, _, body = await c.call("GET", PRS, token="not-a-jwt")
    problem(body, 401)
    status, _, body = await c.call("POST", PRS, role="reader", body={"name": "x", "allClusters": True})
    assert status == 403 and "provisioner" in problem(body, 403)["detail"]
    status, _, body = await c.call("GET", PRS + "/nope")
    assert status == 404 and problem(body, 404)["instance"] == f"{BASE}{PRS}/nope"
    status, headers, body = await c.call("PUT", PRS)
    assert status == 405 and problem(body, 405) and "POST" in headers["Allow"]
    status, _, body = await c.call("POST", PRS, raw=b"{not json")
    assert status == 400 and problem(body, 400)
    status, _, body = await c.call("POST", PRS, body=[1, 2])
    assert status == 400 and problem(body, 400)


async def test_invalid_requests_get_the_problems_focom_reports(make_system: MakeSystem) -> None:
    c, focom = await make_system()
    bad = {"name": "shape", "clusterNames": ["smo", "smo"], "workers": []}
    status, _, body = await c.call("POST", PRS, body=bad)
    problem(body, 400)
    assert status == 400
    # The same rules, the same problems as focom and ``o2ctl validate``/``plan`` (shared.focom_request).
    try:
        rq.check_shape(FocomRequest(**bad), max_clusters=1000)
    except rq.RequestError as exc:
        expected = [{"path": p.path, "rule": p.rule, "message": p.message} for p in exc.problems]
    assert body["problems"] == expected
    status, _, body = await c.call("POST", PRS, body={"name": "ok", "clusterNames": ["smo", "nowhere"]})
    assert status == 400 and problem(body, 400)["problems"] == [
        {
            "path": "$.clusterNames[1]",
            "rule": "cluster-exists",
            "message": "no cluster 'nowhere' in the inventory (known: smo, ran, edge)",
        }
    ]
    status, _, body = await c.call("POST", PRS, body={"name": "Bad_Name", "allClusters": "yes", "colour": 1})
    assert status == 400
    assert {p["path"] for p in problem(body, 400)["problems"]} == {"$.name", "$.allClusters", "$.colour"}
    status, _, body = await c.call("POST", PRS, body={"name": "ok", "operation": "scale", "allClusters": True})
    assert status == 404 and problem(body, 404)
    assert focom.prs() == []


async def test_create_list_get_delete(make_system: MakeSystem) -> None:
    c, focom = await make_system()
    status, headers, body = await c.call("POST", PRS, body={"name": "all", "allClusters": True})
    assert status == 202 and valid(schemas.ACCEPTED, body)["location"] == headers["Location"]
    assert headers["Location"].endswith(f"{BASE}{PRS}/all")
    await focom.wait_phase("all", "Creating")
    status, _, one = await c.call("GET", PRS + "/all", role="reader")
    assert status == 200 and valid(schemas.PROVISIONING_REQUEST, one)["phase"] == "Creating"
    assert [ch["cluster"] for ch in one["children"]] == ["edge", "ran", "smo"]
    ids = {ch["provisioningRequestId"] for ch in one["children"]}
    assert ids == {pr_id_for("all", n) for n in ("edge", "ran", "smo")}
    # 409: the name is taken; hosts held by another request.
    status, _, body = await c.call("POST", PRS, body={"name": "all", "clusterNames": ["smo"]})
    assert status == 409 and problem(body, 409)["name"] == "all"
    status, _, body = await c.call("POST", PRS, body={"name": "other", "clusterNames": ["edge"]})
    assert status == 409 and problem(body, 409)
    assert {x["host"] for x in body["conflicts"]} == {"h08", "h09"}
    assert all(valid(schemas.CONFLICT, x)["leasedTo"] == pr_id_for("all", "edge") for x in body["conflicts"])
    # A second request, then the list: filter, fields, paging.
    status, _, _ = await c.call("POST", PRS, body={"name": "spare", "clusterNames": ["smo"], "operation": "delete"})
    assert status == 404
    for pr in focom.prs("all"):
        await focom.report(pr, "fulfilled")
    await focom.wait_phase("all", "Synced")
    status, _, items = await c.call("GET", PRS, params={"filter": "(eq,phase,Synced)"})
    assert status == 200 and [valid(schemas.PROVISIONING_REQUEST, i)["name"] for i in items] == ["all"]
    status, _, items = await c.call("GET", PRS, params={"filter": "(eq,phase,Creating)"})
    assert status == 200 and items == []
    status, _, items = await c.call("GET", PRS, params={"fields": "phase"})
    assert items == [{"name": "all", "phase": "Synced"}]
    status, _, body = await c.call("GET", PRS, params={"filter": "(eq,colour,red)"})
    assert status == 400 and problem(body, 400)
    status, _, body = await c.call("GET", PRS, params={"page_size": "0"})
    assert status == 400 and problem(body, 400)
    # DELETE: 202, then the delete operation runs; an unknown name is 404.
    status, headers, body = await c.call("DELETE", PRS + "/all")
    assert status == 202 and valid(schemas.ACCEPTED, body)["operation"] == "delete"
    await focom.wait_phase("all", "Deleting")
    deletes = await focom.commands.wait(lambda: [p for p in focom.prs("all") if p.operation == "delete"])
    assert len(deletes) == 3
    status, _, body = await c.call("DELETE", PRS + "/gone")
    assert status == 404 and problem(body, 404)


async def test_paging(make_system: MakeSystem) -> None:
    c, focom = await make_system()
    for name, cluster in (("p1", "smo"), ("p2", "ran"), ("p3", "edge")):
        assert (await c.call("POST", PRS, body={"name": name, "clusterNames": [cluster]}))[0] == 202
    for name in ("p1", "p2", "p3"):
        await focom.wait_phase(name, "Creating")
    status, headers, page = await c.call("GET", PRS, params={"page_size": "2"})
    assert status == 200 and [i["name"] for i in page] == ["p1", "p2"]
    marker = headers["Link"].split("nextpage_opaque_marker=")[1].split(">")[0]
    status, headers, page = await c.call("GET", PRS, params={"page_size": "2", "nextpage_opaque_marker": marker})
    assert [i["name"] for i in page] == ["p3"] and "Link" not in headers


async def test_plan_changes_nothing_and_shows_feasibility(make_system: MakeSystem) -> None:
    c, focom = await make_system()
    status, _, plan = await c.call("POST", "/plans", role="reader", body={"name": "look", "allClusters": True})
    assert status == 200 and valid(schemas.PLAN, plan)["feasible"] and plan["feasibilityChecked"]
    assert sorted(cl["spec"]["name"] for cl in plan["clusters"]) == ["edge", "ran", "smo"]
    assert plan["rendered"] is False and plan["renderedBy"] == "o2ctl plan"
    assert await focom.leases.all() == {} and await focom.record("look") is None
    await focom.leases.acquire_batch({"h04": "someone-else"})
    status, _, plan = await c.call("POST", "/plans", body={"name": "look", "allClusters": True})
    assert valid(schemas.PLAN, plan)["feasible"] is False
    assert plan["conflicts"] == [{"cluster": "ran", "host": "h04", "leasedTo": "someone-else"}]
    status, _, plan = await c.call("POST", "/plans", body={"name": "look", "clusterNames": ["mars"]})
    assert status == 200 and valid(schemas.PLAN, plan)["valid"] is False
    assert plan["problems"][0]["rule"] == "cluster-exists" and plan["feasible"] is False
    status, _, body = await c.call("POST", "/plans", raw=b"[")
    assert status == 400 and problem(body, 400)


async def test_approval_flow(make_system: MakeSystem) -> None:
    c, focom = await make_system(require_approval=True)
    status, _, _ = await c.call("POST", PRS, role="provisioner", body={"name": "cc", "clusterNames": ["smo"]})
    assert status == 202
    await focom.wait_phase("cc", "PendingApproval")
    status, _, one = await c.call("GET", PRS + "/cc")
    assert valid(schemas.PROVISIONING_REQUEST, one)["phase"] == "PendingApproval"
    assert one["plan"] == [
        {
            "cluster": "smo",
            "provisioningRequestId": pr_id_for("cc", "smo"),
            "controlPlane": ["h01"],
            "workers": ["h02", "h03"],
        }
    ]
    assert one["children"] == [] and await focom.leases.all() == {}
    # The same POST again is accepted (idempotent); approval needs the approver role.
    assert (await c.call("POST", PRS, body={"name": "cc", "clusterNames": ["smo"]}))[0] == 202
    status, _, body = await c.call("POST", PRS + "/cc/approve", role="provisioner")
    assert status == 403 and problem(body, 403)
    status, _, body = await c.call("POST", PRS + "/nope/approve", role="approver")
    assert status == 404 and problem(body, 404)
    status, headers, body = await c.call("POST", PRS + "/cc/approve", role="approver")
    assert status == 202 and valid(schemas.ACCEPTED, body)["operation"] == "approve" and headers["Location"]
    await focom.wait_phase("cc", "Creating")
    assert set((await focom.leases.all()).values()) == {pr_id_for("cc", "smo")}
    status, _, body = await c.call("POST", PRS + "/cc/reject", role="approver")
    assert status == 409 and problem(body, 409)


async def test_rejection_and_conflict_at_approval(make_system: MakeSystem) -> None:
    c, focom = await make_system(require_approval=True)
    assert (await c.call("POST", PRS, body={"name": "r1", "clusterNames": ["ran"]}))[0] == 202
    await focom.wait_phase("r1", "PendingApproval")
    status, _, body = await c.call("POST", PRS + "/r1/reject", role="approver")
    assert status == 202 and valid(schemas.ACCEPTED, body)
    await focom.wait_phase("r1", "Deleted")
    assert (await c.call("GET", PRS + "/r1"))[0] == 404
    assert await focom.leases.all() == {} and focom.prs() == []
    # Hosts taken meanwhile: approval answers 409 with the conflict and leases nothing.
    assert (await c.call("POST", PRS, body={"name": "r2", "clusterNames": ["edge"]}))[0] == 202
    await focom.wait_phase("r2", "PendingApproval")
    await focom.leases.acquire_batch({"h09": "someone-else"})
    status, _, body = await c.call("POST", PRS + "/r2/approve", role="approver")
    assert status == 409 and problem(body, 409)["conflicts"] == [
        {"cluster": "edge", "host": "h09", "leasedTo": "someone-else"}
    ]
    assert await focom.leases.all() == {"h09": "someone-else"} and focom.prs() == []
    # Deleting a request that waits is rejecting it.
    status, _, _ = await c.call("DELETE", PRS + "/r2")
    assert status == 202
    await focom.wait_phase("r2", "Deleted")
    assert await focom.record("r2") is None


async def test_inventory(make_system: MakeSystem) -> None:
    c, _ = await make_system()
    status, _, inv = await c.call("GET", "/inventory", role="reader")
    assert status == 200 and valid(schemas.INVENTORY, inv)
    assert len(inv["hosts"]) == 12 and all(h["credential"] == "key" for h in inv["hosts"])
    assert "ssh_key_file" not in json.dumps(inv) and "host_pwd" not in json.dumps(inv)
    model = load_inventory(c.api.settings.inventory_path, **c.api.settings.inventory_rules())
    assert [h["host_id"] for h in inv["hosts"]] == [h.host_id for h in model.hosts]
    good = c.api.settings.inventory_path.read_bytes()
    status, _, body = await c.call("POST", "/inventory/validate", raw=good)
    assert status == 200 and valid(schemas.VALIDATION, body) == {
        "valid": True,
        "problems": [],
        "hosts": 12,
        "clusters": 3,
    }
    broken: dict[str, Any] = json.loads(good)
    broken["clusters"][0]["cluster_masters"] = [{"host_id": "h99"}]
    status, _, body = await c.call("POST", "/inventory/validate", body=broken)
    assert status == 200 and valid(schemas.VALIDATION, body)["valid"] is False
    assert any(p["path"].startswith("$.clusters[0].cluster_masters") for p in body["problems"])
    status, _, body = await c.call("POST", "/inventory/validate", role=None, raw=good)
    assert status == 401
    assert load_catalog(None).names()


async def test_missing_or_invalid_inventory_is_503_with_its_problems(make_system: MakeSystem) -> None:
    c, _ = await make_system()
    path = c.api.settings.inventory_path
    good = path.read_bytes()
    path.unlink()
    status, headers, body = await c.call("GET", "/inventory")
    assert status == 503 and problem(body, 503) and headers["Retry-After"]
    status, _, body = await c.call("POST", PRS, body={"name": "later", "allClusters": True})
    assert status == 503 and problem(body, 503)
    broken: dict[str, Any] = json.loads(good)
    broken["hosts"][0]["host_ip"] = "not-an-address"
    path.write_text(json.dumps(broken))
    status, _, body = await c.call("POST", "/plans", body={"name": "later", "allClusters": True})
    assert status == 503 and any(p["path"].startswith("$.hosts[0]") for p in problem(body, 503)["problems"])
