"""focom against a real nats-server: requests → leases + PR commands + FPR record; o2ims reports → FPR phase."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from shared.bus import Bus
from shared.payloads import FocomRequest, HostSelection, MessageFailed, PrRequest, pr_id_for
from shared.subjects import FOCOM_REQUESTS, o2ims_status
from tests.integration.focom.support import Harness, example_inventory, start_focom, write_inventory


async def synced(h: Harness, name: str, **fields: Any) -> list[PrRequest]:
    await h.submit(name, **fields)
    status = await h.wait_phase(name, "Creating")
    prs = await h.commands.wait(lambda: len(h.prs(name)) == len(status.children) and h.prs(name))
    for pr in prs:
        await h.report(pr, "pending")
        await h.report(pr, "progressing", "hostprep")
        await h.report(pr, "fulfilled")
    await h.wait_phase(name, "Synced")
    return list(prs)


async def test_all_clusters_to_synced(bus: Bus, tmp_path: Path) -> None:
    h = await start_focom(bus, example_inventory(tmp_path))
    prs = await synced(h, "all", allClusters=True)
    assert sorted(p.spec.name for p in prs if p.spec) == ["edge", "ran", "smo"]
    assert {p.pr_id for p in prs} == {pr_id_for("all", c) for c in ("edge", "ran", "smo")}
    assert all(e.correlation_id == "all" for _, e in h.commands.items)
    leases = await h.leases.all()
    assert leases == {
        **{f"h0{i}": pr_id_for("all", "smo") for i in (1, 2, 3)},
        **{f"h0{i}": pr_id_for("all", "ran") for i in (4, 5, 6, 7)},
        **{f"h0{i}": pr_id_for("all", "edge") for i in (8, 9)},
    }
    final = h.fpr_statuses("all")[-1]
    assert [(c.cluster, c.state) for c in final.children] == [
        ("edge", "fulfilled"),
        ("ran", "fulfilled"),
        ("smo", "fulfilled"),
    ]


async def test_resubmission_is_idempotent(bus: Bus, tmp_path: Path) -> None:
    h = await start_focom(bus, example_inventory(tmp_path))
    await h.submit("dup", clusterNames=("smo", "ran"))
    await h.commands.wait(lambda: len(h.prs("dup")) == 2)
    before = await h.record("dup")
    again = [await h.submit("dup", clusterNames=("smo", "ran")) for _ in range(3)]
    # Each re-submission re-publishes the same command and status ids, which the streams drop.
    await h.wait_handled(again)
    assert await stored(bus, "O2IMS", "o2ims.requests.>") == 2
    assert await stored(bus, "FOCOM", "focom.status.dup") == 1
    assert await h.record("dup") == before


async def stored(bus: Bus, stream: str, subjects: str) -> int:
    """How many messages the stream holds on ``subjects`` (duplicates were never stored)."""
    info = await bus.js.stream_info(stream, subjects_filter=subjects)
    return sum((info.state.subjects or {}).values())


@pytest.mark.parametrize("round_", range(5))
async def test_competing_requests_for_one_host_exactly_one_wins(bus: Bus, tmp_path: Path, round_: int) -> None:
    h = await start_focom(bus, example_inventory(tmp_path))
    # Two FOCOM requests wanting cluster "smo" (hosts h01..h03) under different names, at the same time.
    await asyncio.gather(h.submit("left", clusterNames=("smo",)), h.submit("right", clusterNames=("smo",)))

    def outcome() -> tuple[str, str] | None:
        won = [n for n in ("left", "right") if h.prs(n)]
        lost = [n for n in ("left", "right") if h.failures(n)]
        return (won[0], lost[0]) if len(won) == 1 and len(lost) == 1 else None

    winner, loser = await h.statuses.wait(outcome)
    failure = h.failures(loser)[0]
    assert failure.reason == "HostLeased" and failure.path and "inventory $.clusters[0]" in failure.path
    assert set((await h.leases.all()).values()) == {pr_id_for(winner, "smo")}
    assert await h.record(loser) is None and h.prs(loser) == []


async def test_broken_inventory_refuses_and_leaves_nothing(bus: Bus, tmp_path: Path) -> None:
    path = example_inventory(tmp_path)
    h = await start_focom(bus, path)
    await synced(h, "early", clusterNames=("smo",))
    good = json.loads(path.read_text())
    broken = json.loads(path.read_text())
    broken["hosts"][9]["host_ip"] = "10.10.0.999"
    broken["clusters"][1]["cluster_masters"].pop()
    write_inventory(path, broken)
    await h.submit("late", clusterNames=("ran",))
    failure = await h.wait_failure("late")
    assert failure.reason == "InvalidInventory" and failure.path == "$.hosts[9].host_ip"
    assert "cp-count" in failure.error and "$.clusters[1].cluster_masters" in failure.error
    assert h.prs("late") == [] and await h.record("late") is None
    assert set((await h.leases.all()).values()) == {pr_id_for("early", "smo")}
    # Requests already accepted carry on: reports still roll up, delete needs no inventory.
    (pr,) = h.prs("early")
    await h.submit("early", operation="delete", allClusters=True)
    await h.wait_phase("early", "Deleting")
    await h.report(pr, "deleted")
    await h.wait_phase("early", "Deleted")
    write_inventory(path, good)
    await h.submit("late", clusterNames=("ran",))
    await h.commands.wait(lambda: h.prs("late"))


BAD_REQUESTS: list[tuple[str, dict[str, Any], str]] = [
    ("no-mode", {"name": "no-mode"}, "$"),
    ("unknown-cluster", {"name": "unknown-cluster", "clusterNames": ("smo", "nope")}, "$.clusterNames[1]"),
    ("unknown-template", {"name": "unknown-template", "templateName": "x", "templateParameters": {}}, "$.templateName"),
    (
        "bad-params",
        {
            "name": "bad-params",
            "templateName": "byoh-workload-cluster",
            "templateParameters": {
                "clusterName": "lab",
                "k8sVersion": "1.31.1",
                "hosts": {"masters": [{"hostId": "h01"}, {"hostId": "h10"}]},
            },
        },
        "$.templateParameters.controlPlaneEndpoint",
    ),
    (
        "scale-unknown",
        {"name": "scale-unknown", "operation": "scale", "allClusters": True, "targetWorkerCount": 3},
        "$.name",
    ),
    (
        "count-on-create",
        {"name": "count-on-create", "allClusters": True, "targetWorkerCount": 3},
        "$.targetWorkerCount",
    ),
]


async def test_bad_requests_are_refused_with_paths(bus: Bus, tmp_path: Path) -> None:
    h = await start_focom(bus, example_inventory(tmp_path))
    for name, fields, _ in BAD_REQUESTS:
        await bus.emit(FOCOM_REQUESTS, FocomRequest(**fields), correlation_id=name)
    for name, _, path in BAD_REQUESTS:
        failure = await h.wait_failure(name)
        # Every problem is named with its path; the first one is also the event's path.
        assert failure.path == path or f"{path} [" in failure.error, (name, failure)
    # Undecodable input, or a name no FPR can have: refused by the bus with a path, never reaching focom's logic.
    await bus.js.publish(FOCOM_REQUESTS, b'{"type": "focom.request", "payload": {"type": "focom.request"}}')
    bad_name = {
        "type": "focom.request",
        "correlation_id": "bad-name",
        "payload": {"type": "focom.request", "name": "Bad_Name", "allClusters": True},
    }
    await bus.js.publish(FOCOM_REQUESTS, json.dumps(bad_name).encode())
    failures = await h.statuses.wait(lambda: len(h.failures("_unknown")) >= 2 and h.failures("_unknown"), 20.0)
    assert {f.reason for f in failures} == {"InvalidMessage"}
    # Both name the field: one lacks a name, the other's is not a DNS-1123 label.
    assert [f.path for f in failures] == ["payload.name", "payload.name"]
    assert h.prs() == [] and await h.leases.all() == {}


async def test_template_create_scale_delete(bus: Bus, tmp_path: Path) -> None:
    h = await start_focom(bus, example_inventory(tmp_path))
    params = {
        "clusterName": "lab",
        "k8sVersion": "v1.31.4",
        "controlPlaneEndpoint": "10.10.0.204",
        "hosts": {"masters": [{"hostId": "h10"}], "workers": [{"hostId": "h11"}]},
    }
    (pr,) = await synced(h, "lab", templateName="byoh-workload-cluster", templateParameters=params)
    assert pr.spec and pr.spec.name == "lab" and pr.template_name == "byoh-workload-cluster"
    await h.submit(
        "lab",
        operation="scale",
        templateName="byoh-workload-cluster",
        templateParameters={"clusterName": "lab"},
        targetWorkerCount=2,
    )
    await h.wait_phase("lab", "Scaling")
    update = await h.commands.wait(lambda: [p for p in h.prs("lab") if p.operation == "update"])
    assert [w.host_id for w in update[0].spec.workers] == ["h11", "h12"]  # h12: the only unassigned free host
    assert await h.leases.owner_of("h12") == pr.pr_id
    await h.report(update[0], "progressing", "scaling")
    await h.report(update[0], "fulfilled")
    await h.wait_phase("lab", "Synced")
    await h.submit(
        "lab", operation="delete", templateName="byoh-workload-cluster", templateParameters={"clusterName": "lab"}
    )
    delete = await h.commands.wait(lambda: [p for p in h.prs("lab") if p.operation == "delete"])
    await h.report(delete[0], "deleted")
    await h.wait_phase("lab", "Deleted")


async def test_scale_with_worker_list_and_counts(bus: Bus, tmp_path: Path) -> None:
    h = await start_focom(bus, example_inventory(tmp_path))
    prs = {p.spec.name: p for p in await synced(h, "fleet", allClusters=True) if p.spec}
    await h.submit(
        "fleet",
        operation="scale",
        clusterNames=("smo",),
        workers=(HostSelection(hostId="h02"), HostSelection(hostId="h12")),
    )
    update = await h.commands.wait(lambda: [p for p in h.prs("fleet") if p.operation == "update"])
    assert [w.host_id for w in update[0].spec.workers] == ["h02", "h12"]
    assert await h.leases.owner_of("h12") == prs["smo"].pr_id
    await h.report(update[0], "fulfilled")
    await h.wait_phase("fleet", "Synced")
    # Every cluster to 2 workers: smo keeps its 2, ran and edge each get a distinct free host.
    await h.submit("fleet", operation="scale", allClusters=True, targetWorkerCount=2)

    def updates() -> list[PrRequest] | None:
        got = [p for p in h.prs("fleet") if p.operation == "update"]
        return got if len(got) == 3 else None

    got = await h.commands.wait(updates)
    workers = {p.spec.name: [w.host_id for w in p.spec.workers] for p in got[1:] if p.spec}
    assert workers == {"edge": ["h09", "h10"], "ran": ["h07", "h11"]}
    # One worker too many for what is free: refused at the count, nothing taken.
    await h.submit("fleet", operation="scale", clusterNames=("edge",), targetWorkerCount=4)
    failure = await h.wait_failure("fleet")
    assert failure.path == "$.targetWorkerCount" and "capacity" in failure.error


async def test_delete_of_unknown_fpr_reports_deleted(bus: Bus, tmp_path: Path) -> None:
    h = await start_focom(bus, example_inventory(tmp_path))
    await h.submit("ghost", operation="delete", allClusters=True)
    status = await h.wait_phase("ghost", "Deleted")
    assert status.children == () and await h.record("ghost") is None


async def test_o2ims_refusing_a_command_fails_the_cluster(bus: Bus, tmp_path: Path) -> None:
    h = await start_focom(bus, example_inventory(tmp_path))
    await h.submit("refused", clusterNames=("edge",))
    (pr,) = await h.commands.wait(lambda: h.prs("refused"))
    failed = MessageFailed(
        consumer="o2ims-requests",
        subject=f"o2ims.requests.{pr.pr_id}",
        message_type="o2ims.request",
        reason="InvalidMessage",
        error="spec rejected",
        deliveries=1,
    )
    await bus.emit(o2ims_status(pr.pr_id), failed, correlation_id="refused")
    status = await h.wait_phase("refused", "Failed")
    assert "cluster edge failed: InvalidMessage (spec rejected)" in status.message
