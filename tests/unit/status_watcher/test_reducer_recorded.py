"""The reducer on object sequences recorded from the simulated CAPI/BYOH controllers (v1beta1 and v1beta2)."""

from __future__ import annotations

import pytest

from services.status_watcher.domain import LastState, cluster_transitions, summarize_byohost
from shared.objects import dig
from tests.unit.status_watcher.replay import load, replay


@pytest.mark.parametrize("fixture", ["provision_v1beta1", "provision_v1beta2"])
def test_a_recorded_provisioning_ends_ready_with_every_requirement(fixture: str) -> None:
    final = replay(fixture)[-1].summary
    assert final.ready and final.failure is None and final.waiting_for is None
    assert final.pr_id == "0d9c3c4e-5b6a-5f7e-8a9b-0c1d2e3f4a5b"
    assert final.phase == "Provisioned"
    assert final.control_plane_initialized
    assert (final.control_plane_ready, final.control_plane_desired) == (1, 1)
    assert (final.workers_ready, final.workers_desired) == (2, 2)
    assert sorted(final.machines.values()) == ["Running"] * 3
    assert final.cni_applied and final.kubeconfig_present


@pytest.mark.parametrize("fixture", ["provision_v1beta1", "provision_v1beta2"])
def test_provisioned_before_the_control_plane_is_initialized_is_not_ready(fixture: str) -> None:
    trapped = [
        s.summary
        for s in replay(fixture)
        if s.summary.phase == "Provisioned" and not s.summary.control_plane_initialized
    ]
    assert trapped, "the recording should contain the Provisioned-but-not-initialized window"
    assert not any(s.ready for s in trapped)
    assert {s.waiting_for for s in trapped} == {"control plane not initialized"}


@pytest.mark.parametrize("fixture", ["provision_v1beta1", "provision_v1beta2"])
def test_ready_comes_once_and_only_after_the_last_machine_is_running(fixture: str) -> None:
    steps = replay(fixture)
    last_running = max(
        i
        for i, s in enumerate(steps)
        if s.event["kind"] == "Machine" and dig(s.event["object"], "status", "phase") == "Running"
    )
    first_ready = next(i for i, s in enumerate(steps) if s.summary.ready)
    assert first_ready >= last_running
    last: LastState | None = None
    readies = 0
    for step in steps:
        readies += sum(t.type == "cluster.ready" for t in cluster_transitions(last, step.summary))
        last = LastState(ready=step.summary.ready, failed=step.summary.failure is not None)
    assert readies == 1
    # Once ready it stays ready for the rest of the recording (no flapping from event order).
    assert all(s.summary.ready for s in steps[first_ready:])


def test_a_bootstrap_failure_on_a_claimed_host_fails_the_cluster_with_a_precise_reason() -> None:
    steps = replay("bootstrap_failure_v1beta1")
    final = steps[-1].summary
    assert not final.ready
    assert final.failure is not None
    assert final.failure.startswith("CloudInitExecutionFailed on ByoHost host-3")
    assert "injected bootstrap failure on host-3" in final.failure
    last: LastState | None = None
    failed = []
    for step in steps:
        failed += [t for t in cluster_transitions(last, step.summary) if t.type == "cluster.failed"]
        last = LastState(ready=step.summary.ready, failed=step.summary.failure is not None)
    assert len(failed) == 1 and failed[0].pr_id == "0d9c3c4e-5b6a-5f7e-8a9b-0c1d2e3f4a5b"
    assert failed[0].reason is not None and failed[0].reason.startswith("CloudInitExecutionFailed on ByoHost host-3")


def test_recorded_byohost_registration_reads_registered_and_free() -> None:
    events = [
        e for e in load("provision_v1beta1") if e["kind"] == "ByoHost" and e["object"]["metadata"]["name"] == "host-2"
    ]
    summaries = [summarize_byohost("default", "host-2", e["object"]) for e in events]
    assert summaries[0].host_id == "h2"
    free = [s for s in summaries if s.free]
    assert free and free[0].registered and free[0].bootstrap_condition == "WaitingForMachineRefToBeAssigned"
    claimed = summaries[-1]
    assert claimed.claimed_by == "c1" and not claimed.free and claimed.bootstrap_condition == "True"
