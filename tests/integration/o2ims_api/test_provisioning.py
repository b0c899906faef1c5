"""Contract tests of the provisioning API against the real o2ims engine (its peers played by the test)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from services.o2ims.policy import Policy
from services.o2ims_api import schemas
from shared.bus import Bus
from shared.leases import HostLeases
from shared.subjects import BUCKET_HOSTS
from tests.integration.o2ims.world import InProcessO2ims, World, running

from .support import Harness, I, P, valid
from .test_inventory import problem

PRS = f"{P}/provisioningRequests"


def body(
    pr_id: str,
    *,
    name: str = "edge-a",
    masters: tuple[str, ...] = ("h01",),
    workers: tuple[str, ...] = ("h02",),
    **extra: Any,
) -> dict[str, Any]:
    return {
        "provisioningRequestId": pr_id,
        "name": name,
        "description": "an edge cluster",
        "templateName": "byoh-workload-cluster",
        "templateVersion": "v1.0.0",
        "templateParameters": {
            "clusterName": name,
            "k8sVersion": "v1.31.4",
            "controlPlaneEndpoint": "10.10.0.200",
            "hosts": {"masters": [{"hostId": h} for h in masters], "workers": [{"hostId": h} for h in workers]},
        },
        **extra,
    }


@pytest.fixture
async def o2ims(bus: Bus, nats_url: str) -> AsyncIterator[tuple[World, InProcessO2ims]]:
    world = await World(bus).start()
    async with running(nats_url, Policy()) as o2:
        yield world, o2


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 30.0) -> Any:
    """Poll the API (it has no push for the test to wait on) until ``check`` returns something truthy."""
    async with asyncio.timeout(timeout):
        while True:
            found = await check()
            if found:
                return found
            await asyncio.sleep(0.1)  # polling an HTTP API, bounded by the timeout
    raise AssertionError(what)


async def phase(harness: Harness, pr_id: str) -> str | int:
    status, _, got = await harness.call("GET", f"{PRS}/{pr_id}", role="reader")
    return got["status"]["provisioningPhase"] if status == 200 else status


async def test_create_follow_update_delete(harness: Harness, o2ims: tuple[World, InProcessO2ims]) -> None:
    pr_id = str(uuid.uuid4())
    status, headers, created = await harness.call("POST", PRS, role="provisioner", body=body(pr_id))
    assert status == 201, created
    assert headers["Location"] == f"{harness.base}{PRS}/{pr_id}"
    valid(schemas.PR_INFO, created)
    assert created["provisioningRequestData"] == body(pr_id)
    status, headers, again = await harness.call("POST", PRS, role="provisioner", body=body(pr_id))
    problem(status, headers, again, 409)

    await until(lambda: _is(harness, pr_id, "FULFILLED"), "fulfilled")
    status, _, got = await harness.call("GET", f"{PRS}/{pr_id}")
    valid(schemas.PR_INFO, got)
    cluster_id = got["provisionedResourceSet"]["nodeClusterId"]
    assert len(got["provisionedResourceSet"]["infrastructureResourceIds"]) == 2
    _, _, managers = await harness.call("GET", f"{I}/deploymentManagers")
    assert [m["deploymentManagerId"] for m in managers] == [cluster_id]
    _, _, listed = await harness.call("GET", PRS, params={"filter": "(eq,provisioningRequestData/name,edge-a)"})
    assert [valid(schemas.PR_INFO, p)["provisioningRequestData"]["provisioningRequestId"] for p in listed] == [pr_id]

    # PUT: the id in the body must be the path's; a worker can be added.
    status, headers, mismatch = await harness.call(
        "PUT", f"{PRS}/{pr_id}", role="provisioner", body=body(str(uuid.uuid4()))
    )
    problem(status, headers, mismatch, 422)
    status, _, updated = await harness.call(
        "PUT", f"{PRS}/{pr_id}", role="provisioner", body=body(pr_id, workers=("h02", "h03"), description="bigger")
    )
    assert status == 200, updated
    assert valid(schemas.PR_INFO, updated)["provisioningRequestData"]["description"] == "bigger"
    leases = await HostLeases(await harness.api.bus.kv(BUCKET_HOSTS)).all()
    assert leases == {"h01": pr_id, "h02": pr_id, "h03": pr_id}
    await until(lambda: _workers(harness, cluster_id, 2), "scaled to two workers")
    status, headers, moved = await harness.call(
        "PUT", f"{PRS}/{pr_id}", role="provisioner", body=body(pr_id, masters=("h04",))
    )
    assert problem(status, headers, moved, 409)["problems"][0]["path"] == "$.templateParameters.hosts.masters"
    newer = body(pr_id, workers=("h02", "h03"))
    newer["templateParameters"]["k8sVersion"] = "v1.33.0"  # two minor versions at once
    status, headers, frozen = await harness.call("PUT", f"{PRS}/{pr_id}", role="provisioner", body=newer)
    skipped = problem(status, headers, frozen, 409)["problems"][0]
    assert (skipped["path"], skipped["rule"]) == ("$.templateParameters.k8sVersion", "MinorVersionSkip")
    newer["templateParameters"]["k8sVersion"] = "v1.32.0"  # one minor: allowed, but one control plane needs a spare
    status, headers, spareless = await harness.call("PUT", f"{PRS}/{pr_id}", role="provisioner", body=newer)
    refused = problem(status, headers, spareless, 409)["problems"][0]
    assert (refused["path"], refused["rule"]) == ("$.templateParameters.hosts.masters", "NoSpareHost")

    status, _, deleting = await harness.call("DELETE", f"{PRS}/{pr_id}", role="provisioner")
    assert status == 202 and deleting["status"]["provisioningPhase"] == "DELETING"
    await until(lambda: _gone(harness, pr_id), "gone")
    status, headers, gone = await harness.call("GET", f"{PRS}/{pr_id}")
    problem(status, headers, gone, 404)
    assert await HostLeases(await harness.api.bus.kv(BUCKET_HOSTS)).all() == {}
    _, _, managers = await harness.call("GET", f"{I}/deploymentManagers")
    assert managers == []


async def _is(harness: Harness, pr_id: str, wanted: str) -> bool:
    return await phase(harness, pr_id) == wanted


async def _gone(harness: Harness, pr_id: str) -> bool:
    return await phase(harness, pr_id) == 404


async def _workers(harness: Harness, cluster_id: str, n: int) -> bool:
    status, _, dm = await harness.call("GET", f"{I}/deploymentManagers/{cluster_id}")
    return (
        status == 200
        and dm["capacity"]["workerNodes"] == n
        and await _is(harness, dm["extensions"]["provisioningRequestId"], "FULFILLED")
    )


async def test_a_failed_pr_shows_failed_with_its_stage(harness: Harness, o2ims: tuple[World, InProcessO2ims]) -> None:
    world, _ = o2ims
    world.fail_host["h02"] = "install-packages"
    pr_id = str(uuid.uuid4())
    status, _, _ = await harness.call("POST", PRS, role="provisioner", body=body(pr_id))
    assert status == 201
    await until(lambda: _is(harness, pr_id, "FAILED"), "failed")
    _, _, got = await harness.call("GET", f"{PRS}/{pr_id}")
    assert "hostprep failed: StepFailed" in got["status"]["message"]


@pytest.mark.parametrize(("raw", "path"), [(b"{not json", "$"), (b"[1, 2]", None), (b'{"a": 1, "a": 2}', "$.a")])
async def test_400_for_bodies_that_are_not_json_objects(harness: Harness, raw: bytes, path: str | None) -> None:
    status, headers, got = await harness.call("POST", PRS, role="provisioner", raw=raw)
    found = problem(status, headers, got, 400)
    if path is not None:
        assert found["problems"][0]["path"] == path  # type: ignore[index]


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"extra": 1}, "$.extra"),
        ({"provisioningRequestId": "not-a-uuid"}, "$.provisioningRequestId"),
        ({"name": 5}, "$.name"),
        ({"templateName": "nope"}, "$.templateName"),
        ({"templateVersion": "v9.9.9"}, "$.templateVersion"),
        (
            {"templateParameters": {"clusterName": "x", "k8sVersion": "v1.31.4", "hosts": {"masters": []}}},
            "$.templateParameters.hosts.masters",
        ),
        (
            {
                "templateParameters": {
                    "clusterName": "x",
                    "k8sVersion": "v1.31.4",
                    "controlPlaneEndpoint": "10.10.0.200",
                    "hosts": {"masters": [{"hostId": "h99"}]},
                }
            },
            "$.templateParameters.hosts.masters[0].hostId",
        ),
    ],
)
async def test_400_with_the_path_of_each_problem(harness: Harness, change: dict[str, Any], path: str) -> None:
    status, headers, got = await harness.call(
        "POST", PRS, role="provisioner", body={**body(str(uuid.uuid4())), **change}
    )
    found = problem(status, headers, got, 400)
    assert path in [p["path"] for p in found["problems"]], found  # type: ignore[union-attr]


async def test_missing_field_and_roles(harness: Harness) -> None:
    incomplete = body(str(uuid.uuid4()))
    del incomplete["templateParameters"]
    status, headers, got = await harness.call("POST", PRS, role="provisioner", body=incomplete)
    assert problem(status, headers, got, 400)["problems"][0]["path"] == "$.templateParameters"  # type: ignore[index]
    for role in ("reader", "subscriber", "maintainer"):
        status, headers, got = await harness.call("POST", PRS, role=role, body=body(str(uuid.uuid4())))
        problem(status, headers, got, 403)
    status, headers, got = await harness.call("PATCH", PRS, role="admin", body={})
    problem(status, headers, got, 405)
    assert "POST" in headers["Allow"]


async def test_409_for_hosts_leased_elsewhere(harness: Harness) -> None:
    await HostLeases(await harness.api.bus.kv(BUCKET_HOSTS)).acquire("someone-else", ["h02"])
    pr_id = str(uuid.uuid4())
    status, headers, got = await harness.call("POST", PRS, role="provisioner", body=body(pr_id))
    assert problem(status, headers, got, 409)["hosts"] == ["h02"]
    assert await HostLeases(await harness.api.bus.kv(BUCKET_HOSTS)).all() == {"h02": "someone-else"}
    status, headers, got = await harness.call("GET", f"{PRS}/{pr_id}")
    problem(status, headers, got, 404)
    for method in ("PUT", "DELETE"):
        status, headers, got = await harness.call(method, f"{PRS}/{pr_id}", body=body(pr_id))
        problem(status, headers, got, 404)


async def test_a_focom_pr_is_visible_here(harness: Harness, o2ims: tuple[World, InProcessO2ims]) -> None:
    from tests.integration.o2ims.world import make_spec

    world, _ = o2ims
    await world.request("create", "0f0f0f0f-0000-4000-8000-000000000001", make_spec("focom-made"), fpr="my-fpr")
    await world.wait_state("0f0f0f0f-0000-4000-8000-000000000001", "fulfilled")
    _, _, listed = await harness.call("GET", PRS)
    (one,) = listed
    valid(schemas.PR_INFO, one)
    assert one["provisioningRequestData"]["templateParameters"]["clusterName"] == "focom-made"
    assert one["status"]["provisioningPhase"] == "FULFILLED"


@pytest.mark.parametrize(
    "path",
    [
        f"{PRS}/not-a-uuid",
        f"{PRS}/%2A",
        "/o2ims-infrastructureInventory/v1/subscriptions/a.b",
        "/o2ims-infrastructureMonitoring/v1/alarmSubscriptions/%3E",
        "/o2ims-infrastructureMonitoring/v1/alarms/x" + "y" * 300,
    ],
)
async def test_ids_that_are_not_uuids_name_nothing(harness: Harness, path: str) -> None:
    for method in ("GET", "DELETE"):
        status, headers, got = await harness.call(method, path)
        if status == 405:
            continue
        assert len(problem(status, headers, got, 404)["detail"]) < 200  # type: ignore[arg-type]
