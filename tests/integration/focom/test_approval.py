"""Change control (``require_approval``): a request waits in PendingApproval with its plan, holding nothing,
until it is approved (checked again: hosts taken meanwhile fail it with the conflict) or rejected (gone)."""

from __future__ import annotations

from pathlib import Path

from shared.bus import Bus
from shared.payloads import pr_id_for
from tests.integration.focom.support import example_inventory, start_focom


async def test_pending_request_leases_nothing_until_approved(bus: Bus, tmp_path: Path) -> None:
    h = await start_focom(bus, example_inventory(tmp_path), require_approval=True)
    env = await h.submit("gated", clusterNames=("smo",))
    status = await h.wait_phase("gated", "PendingApproval")
    await h.wait_handled([env])
    assert [c.cluster for c in status.plan] == ["smo"]
    planned = {*status.plan[0].control_plane, *status.plan[0].workers}
    assert planned == {"h01", "h02", "h03"}
    assert status.plan[0].pr_id == pr_id_for("gated", "smo")
    assert await h.leases.all() == {} and h.prs("gated") == []
    # A re-submission while waiting changes nothing; approval carries it out.
    await h.wait_handled([await h.submit("gated", clusterNames=("smo",))])
    assert await h.leases.all() == {}
    await h.wait_handled([await h.decide("gated", "approve")])
    await h.wait_phase("gated", "Creating")
    assert await h.leases.all() == dict.fromkeys(planned, pr_id_for("gated", "smo"))
    assert [p.spec.name for p in h.prs("gated") if p.spec] == ["smo"]
    record = await h.record("gated")
    assert record is not None and record.pending is None and record.plan == () and record.generation == 1
    # Approving again is a replay; rejecting an approved request is refused.
    await h.wait_handled([await h.decide("gated", "approve")])
    assert len(h.prs("gated")) == 1
    await h.decide("gated", "reject")
    failure = await h.wait_failure("gated")
    assert failure.reason == "NotPendingApproval"


async def test_rejection_leaves_nothing_behind(bus: Bus, tmp_path: Path) -> None:
    h = await start_focom(bus, example_inventory(tmp_path), require_approval=True)
    await h.submit("nope", allClusters=True)
    await h.wait_phase("nope", "PendingApproval")
    await h.wait_handled([await h.decide("nope", "reject", by="alice")])
    gone = await h.wait_phase("nope", "Deleted")
    assert "rejected by alice" in gone.message
    assert await h.record("nope") is None
    assert await h.leases.all() == {} and h.prs("nope") == []
    assert await h.focom.specs.keys() == []


async def test_approval_fails_with_the_conflict_when_hosts_were_taken(bus: Bus, tmp_path: Path) -> None:
    h = await start_focom(bus, example_inventory(tmp_path), require_approval=True)
    await h.submit("late", clusterNames=("smo",))
    await h.wait_phase("late", "PendingApproval")
    # Meanwhile another holder takes a host of the plan.
    await h.leases.acquire_batch({"h02": "someone-else"})
    await h.wait_handled([await h.decide("late", "approve")])
    failed = await h.wait_phase("late", "Failed")
    assert "h02" in failed.message and "host-leased" in failed.message
    assert await h.leases.all() == {"h02": "someone-else"} and h.prs("late") == []
    record = await h.record("late")
    assert record is not None and record.awaiting_approval
    # Once the host is free again, approving again carries the request out.
    await h.leases.release("someone-else", ["h02"])
    await h.wait_handled([await h.decide("late", "approve")])
    await h.wait_phase("late", "Creating")
    assert set((await h.leases.all()).values()) == {pr_id_for("late", "smo")}


async def test_a_new_request_on_held_hosts_is_refused_before_waiting(bus: Bus, tmp_path: Path) -> None:
    h = await start_focom(bus, example_inventory(tmp_path), require_approval=True)
    await h.leases.acquire_batch({"h01": "someone-else"})
    await h.submit("clash", clusterNames=("smo",))
    failure = await h.wait_failure("clash")
    assert failure.reason == "HostLeased" and await h.record("clash") is None
