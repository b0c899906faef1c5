"""Whole flows through the state machine: the commands each step publishes, guards against
stale and out-of-order events, day-2 scaling, deletion from anywhere, deadlines, ids."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from services.o2ims.record import infrastructure_resource_id, node_cluster_id
from services.o2ims.rules.deadlines import timer_wait
from services.o2ims.table import decide
from shared.errors import InputError
from shared.payloads import CapiJob, HostFailure, HostprepDone, HostprepFailed, HostprepJob, PrDeadline, PrStatus
from tests.unit.o2ims.machine import (
    NO_RESET,
    PR,
    TEARDOWN,
    Driver,
    byohost,
    driven_to,
    ev,
    host,
    request,
    spec,
    summary,
    upgraded,
)


def published(cmds: list[Any], cls: type) -> list[Any]:
    return [c.payload for c in cmds if isinstance(c.payload, cls)]


def test_create_to_fulfilled_publishes_each_job_once_and_a_status_per_transition() -> None:
    drv = Driver()
    for kind in ("create", "host.progress", "hostprep.done", "capi.applied", "cluster.ready"):
        drv.send(kind)  # type: ignore[arg-type]
    rec = drv.rec
    assert rec is not None and rec.state == "fulfilled"
    jobs = published(drv.commands, HostprepJob)
    assert [(j.action, list(j.hosts)) for j in jobs] == [("prepare", ["cp0", "w0", "w1"])]
    assert [j.action for j in published(drv.commands, CapiJob)] == ["apply"]
    statuses = published(drv.commands, PrStatus)
    assert [(s.state, s.stage) for s in statuses] == [
        ("pending", None),
        ("progressing", "hostprep"),
        ("progressing", "apply"),
        ("progressing", "provisioning"),
        ("fulfilled", None),
    ]
    assert [s.seq for s in statuses] == [1, 2, 3, 4, 5] and rec.seq == 5
    assert statuses[-1].node_cluster_id == node_cluster_id(PR, "edge1") == rec.node_cluster_id
    assert {h: st.resource_id for h, st in rec.hosts.items()} == {
        h: infrastructure_resource_id(rec.node_cluster_id, h) for h in ("cp0", "w0", "w1")
    }
    assert {c.type: c.status for c in rec.conditions} == {
        "HostsPrepared": "True",
        "ResourcesApplied": "True",
        "ClusterProvisioned": "True",
    }
    assert [(h.to_state, h.to_stage) for h in rec.history][-1] == ("fulfilled", None)
    # One deadline per stage that has one: pending (kept through hostprep), apply, provisioning.
    timers = published(drv.commands, PrDeadline)
    assert [(t.state, t.stage) for t in timers] == [
        ("pending", None),
        ("progressing", "apply"),
        ("progressing", "provisioning"),
    ]
    assert rec.deadline is None


def test_deciding_the_same_event_on_the_same_record_gives_the_same_commands() -> None:
    drv = driven_to("progressing/hostprep")
    event = ev("hostprep.done", HostprepDone(pr_id=PR, action="prepare", hosts=("cp0", "w0", "w1")), drv.clock.tick())
    one = decide(drv.rec, event, drv.clock.now)
    two = decide(drv.rec, event, drv.clock.now)
    assert one.commands == two.commands and one.record == two.record
    assert len({c.id for c in one.commands}) == len(one.commands)


def test_a_late_hostprep_done_after_failed_changes_nothing() -> None:
    drv = driven_to("failed")
    job = drv.rec.hostprep_job  # type: ignore[union-attr]
    late = ev("hostprep.done", HostprepDone(pr_id=PR, action="prepare", hosts=job.hosts), drv.clock.tick(), job.id)
    assert drv.apply(late).record is None
    assert drv.rec.state == "failed"  # type: ignore[union-attr]


def test_host_failure_names_the_host_and_the_step() -> None:
    drv = driven_to("progressing/hostprep")
    job = drv.rec.hostprep_job  # type: ignore[union-attr]
    failed = HostprepFailed(
        pr_id=PR,
        action="prepare",
        host_id="w1",
        step="kubeadm-packages",
        exit_code=100,
        stderr_tail="E: Unable to locate package",
        reason="StepFailed",
        message="apt-get failed",
    )
    drv.apply(ev("hostprep.failed", failed, drv.clock.tick(), job.id))
    rec = drv.rec
    assert rec is not None and (rec.state, rec.stage, rec.reason) == ("failed", "hostprep", "StepFailed")
    assert "host w1" in rec.message and "kubeadm-packages" in rec.message and "exit 100" in rec.message  # type: ignore[operator]
    assert rec.hosts["w1"].status == "failed" and rec.hosts["w1"].step == "kubeadm-packages"
    assert published(drv.commands, PrStatus)[-1].message == rec.message


def test_events_answering_an_earlier_job_are_stale() -> None:
    drv = driven_to("failed")
    old_job = drv.rec.hostprep_job  # type: ignore[union-attr]
    drv.apply(request("create", drv.rec.spec, drv.clock.tick()))  # type: ignore[union-attr]  # retry
    assert drv.phase == "pending" and drv.rec.hostprep_job.id != old_job.id  # type: ignore[union-attr]
    again = HostprepFailed(pr_id=PR, action="prepare", host_id="cp0", step="x", reason="StepFailed", message="old")
    assert drv.apply(ev("hostprep.failed", again, drv.clock.tick(), old_job.id)).record is None
    assert drv.phase == "pending"


def test_cluster_ready_seen_before_the_apply_is_confirmed_fulfils_at_the_confirmation() -> None:
    drv = driven_to("progressing/apply")
    drv.apply(summary(drv.rec.spec, drv.clock.tick()))  # type: ignore[arg-type,union-attr]
    assert drv.phase == "progressing/apply"
    drv.send("capi.applied")
    assert drv.phase == "fulfilled"
    assert "progressing/provisioning" not in [f"{h.to_state}/{h.to_stage}" for h in drv.rec.history]  # type: ignore[union-attr]


def test_an_older_observation_does_not_overwrite_a_newer_one() -> None:
    drv = driven_to("progressing/provisioning")
    s = drv.rec.spec  # type: ignore[union-attr]
    later, earlier = drv.clock.tick(), drv.clock.now - timedelta(seconds=5)
    drv.apply(summary(s, later, ready=False, workers_ready=1))
    assert drv.apply(summary(s, earlier)).record is None
    assert drv.phase == "progressing/provisioning"


def test_ready_with_the_wrong_counts_is_not_fulfilled() -> None:
    drv = driven_to("progressing/provisioning")
    s = drv.rec.spec  # type: ignore[union-attr]
    drv.apply(summary(s, drv.clock.tick(), workers_ready=1, workers_desired=1))
    assert drv.phase == "progressing/provisioning"


def test_scale_two_to_three_prepares_only_the_new_host_then_scales() -> None:
    drv = driven_to("fulfilled")
    three = spec(3)
    drv.commands.clear()
    drv.apply(request("update", three, drv.clock.tick()))
    assert drv.phase == "progressing/hostprep"
    assert [list(j.hosts) for j in published(drv.commands, HostprepJob)] == [["w2"]]
    drv.send("hostprep.done")
    assert drv.phase == "progressing/scaling"
    assert [j.action for j in published(drv.commands, CapiJob)] == ["scale"]
    assert published(drv.commands, CapiJob)[0].spec == three
    drv.apply(summary(three, drv.clock.tick()))  # ready 3/3 seen before the scale is confirmed
    assert drv.phase == "progressing/scaling"
    drv.send("capi.applied")
    assert drv.phase == "fulfilled" and drv.rec.generation == 2  # type: ignore[union-attr]


def test_scale_down_releases_the_leaving_hosts_lease_only_once_unclaimed_gone_and_reset() -> None:
    drv = driven_to("fulfilled")
    two, one = spec(2), spec(1)
    for w in two.workers:  # the workers' ByoHosts were seen claimed while the cluster came up
        drv.apply(byohost(two, w.host_id, claimed=True, at=drv.clock.tick()))
    drv.commands.clear()
    drv.apply(request("update", one, drv.clock.tick()))
    assert drv.phase == "progressing/scaling" and drv.rec.hosts["w1"].leaving  # type: ignore[union-attr]
    assert [j.spec.workers for j in published(drv.commands, CapiJob)] == [one.workers]
    drv.send("capi.applied")
    drv.apply(summary(two, drv.clock.tick()))  # stale counts: still two workers
    drv.apply(summary(one, drv.clock.tick(), machines={"m0": "Running", "m1": "Deleting"}))  # w1's Machine going
    drv.apply(summary(one, drv.clock.tick()))  # the Machine is gone, but w1's ByoHost is still claimed
    assert drv.phase == "progressing/scaling" and "w1 to be released" in (drv.rec.message or "")  # type: ignore[union-attr]
    assert not [c for c in drv.commands if c.release] and not published(drv.commands, HostprepJob)
    drv.apply(byohost(one, "w1", claimed=False, at=drv.clock.tick()))  # the agent released it
    assert drv.phase == "progressing/teardown"
    reset = published(drv.commands, HostprepJob)
    assert [(j.action, list(j.hosts)) for j in reset] == [("teardown", ["w1"])]
    assert not [c for c in drv.commands if c.release]  # not before the reset
    drv.send("teardown.done")
    assert drv.phase == "fulfilled"
    assert [c.release for c in drv.commands if c.release] == [("w1",)]
    assert drv.rec.hosts["w1"].released and drv.rec.leaving == ()  # type: ignore[union-attr]


def test_a_host_whose_reset_fails_is_quarantined_not_released() -> None:
    drv = driven_to("fulfilled")
    two, one = spec(2), spec(1)
    drv.apply(byohost(two, "w1", claimed=True, at=drv.clock.tick()))
    drv.apply(request("update", one, drv.clock.tick()))
    drv.send("capi.applied")
    drv.apply(summary(one, drv.clock.tick()))
    drv.apply(byohost(one, "w1", claimed=False, at=drv.clock.tick()))
    drv.commands.clear()
    failed = HostprepFailed(
        pr_id=PR,
        action="teardown",
        host_id="w1",
        step="kubeadm-reset",
        exit_code=1,
        reason="StepFailed",
        message="kubeadm reset failed",
        failures=(
            HostFailure(host_id="w1", step="kubeadm-reset", reason="StepFailed", message="kubeadm reset failed"),
        ),
    )
    drv.apply(ev("teardown.failed", failed, drv.clock.tick(), drv.rec.hostprep_job.id))  # type: ignore[union-attr]
    assert drv.phase == "fulfilled"  # the cluster itself is as asked
    assert not [c for c in drv.commands if c.release]
    assert [(c.quarantine, "kubeadm-reset" in c.quarantine_reason) for c in drv.commands if c.quarantine] == [
        (("w1",), True)
    ]
    assert drv.rec.hosts["w1"].quarantined and drv.rec.leaving == ()  # type: ignore[union-attr]
    assert drv.rec.condition("HostsTornDown").status == "False"  # type: ignore[union-attr]


def test_a_worker_swap_adds_the_new_host_first_then_removes_the_old_one_under_one_deadline() -> None:
    drv = driven_to("fulfilled")
    old = spec(2)  # w0, w1
    swapped = old.model_copy(update={"workers": (host(0, "w"), host(2, "w"))})
    for w in old.workers:
        drv.apply(byohost(old, w.host_id, claimed=True, at=drv.clock.tick()))
    drv.commands.clear()
    drv.apply(request("update", swapped, drv.clock.tick()))
    assert drv.phase == "progressing/hostprep"
    drv.send("hostprep.done")
    # First the interim set: the new worker is added while the leaving one stays.
    interim = published(drv.commands, CapiJob)[-1].spec
    assert [h.host_id for h in interim.workers] == ["w0", "w2", "w1"]
    deadline = drv.rec.deadline  # type: ignore[union-attr]
    drv.send("capi.applied")
    drv.apply(summary(interim, drv.clock.tick()))
    drv.apply(byohost(swapped, "w2", claimed=True, at=drv.clock.tick()))
    # Then the final set, under the same deadline: capi_renderer marks w1's Machine and the count drops.
    final = published(drv.commands, CapiJob)[-1].spec
    assert [h.host_id for h in final.workers] == ["w0", "w2"]
    assert drv.phase == "progressing/scaling" and drv.rec.deadline == deadline  # type: ignore[union-attr]
    drv.send("capi.applied")
    drv.apply(summary(swapped, drv.clock.tick()))
    drv.apply(byohost(swapped, "w1", claimed=False, at=drv.clock.tick()))
    assert drv.phase == "progressing/teardown"
    drv.send("teardown.done")
    assert drv.phase == "fulfilled" and [c.release for c in drv.commands if c.release] == [("w1",)]


def test_without_reset_a_leaving_host_is_released_once_seen_unclaimed() -> None:
    drv = driven_to("fulfilled", NO_RESET)
    two, one = spec(2), spec(1)
    drv.apply(byohost(two, "w1", claimed=True, at=drv.clock.tick()))
    drv.apply(request("update", one, drv.clock.tick()))
    drv.send("capi.applied")
    drv.apply(summary(one, drv.clock.tick()))
    assert drv.phase == "progressing/scaling"
    drv.apply(byohost(one, "w1", claimed=False, at=drv.clock.tick()))
    assert drv.phase == "fulfilled" and [c.release for c in drv.commands if c.release] == [("w1",)]
    assert "teardown" not in [j.action for j in published(drv.commands, HostprepJob)]


def test_delete_resets_the_hosts_once_their_byohosts_are_released_and_quarantines_failures() -> None:
    drv = driven_to("fulfilled")
    s = drv.rec.spec  # type: ignore[union-attr]
    assert s is not None
    for h in s.all_hosts:
        drv.apply(byohost(s, h.host_id, claimed=True, at=drv.clock.tick()))
    drv.send("delete")
    drv.commands.clear()
    drv.send("capi.deleted")
    assert drv.phase == "deleting/teardown" and not published(drv.commands, HostprepJob)
    for h in s.all_hosts[:-1]:
        drv.apply(byohost(s, h.host_id, claimed=False, at=drv.clock.tick()))
    assert not published(drv.commands, HostprepJob)  # one host is still claimed
    drv.apply(byohost(s, s.all_hosts[-1].host_id, claimed=False, at=drv.clock.tick()))
    (job,) = published(drv.commands, HostprepJob)
    assert job.action == "teardown" and set(job.hosts) == {h.host_id for h in s.all_hosts}
    bad = s.all_hosts[0].host_id
    failed = HostprepFailed(
        pr_id=PR,
        action="teardown",
        host_id=bad,
        reason="StepFailed",
        message="reset failed",
        ready_hosts=tuple(h.host_id for h in s.all_hosts[1:]),
    )
    drv.apply(ev("teardown.failed", failed, drv.clock.tick(), drv.rec.hostprep_job.id))  # type: ignore[union-attr]
    assert drv.phase == "deleted"
    assert [c.quarantine for c in drv.commands if c.quarantine] == [(bad,)]
    assert [set(c.release) for c in drv.commands if c.release] == [{h.host_id for h in s.all_hosts[1:]}]


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("spec.name", {"name": "other"}),
        ("spec.control_plane", {"control_plane": (host(5, "cp"),)}),
        ("spec.vip", {"vip": "10.0.0.251"}),
        ("spec.pod_cidr", {"pod_cidr": "10.200.0.0/16"}),
        ("spec.workers.0", {"workers": (host(0, "w").model_copy(update={"host_ip": "10.0.1.1"}),)}),
    ],
)
def test_immutable_fields_refuse_the_update_naming_the_field(field: str, change: dict[str, Any]) -> None:
    drv = driven_to("fulfilled")
    changed = drv.rec.spec.model_copy(update=change)  # type: ignore[union-attr]
    with pytest.raises(InputError) as err:
        drv.apply(request("update", changed, drv.clock.tick()))
    assert err.value.path == field and drv.phase == "fulfilled"


@pytest.mark.parametrize(
    ("version", "reason"),
    [("v1.29.9", "Downgrade"), ("v1.32.0", "MinorVersionSkip"), ("v2.30.2", "MinorVersionSkip")],
)
def test_a_version_change_of_a_live_cluster_is_refused_with_the_rule_it_breaks(version: str, reason: str) -> None:
    drv = driven_to("fulfilled")  # at v1.30.2
    changed = upgraded(drv.rec.spec, version)  # type: ignore[arg-type]
    with pytest.raises(InputError) as err:
        drv.apply(request("update", changed, drv.clock.tick()))
    assert (err.value.path, err.value.reason) == ("spec.k8s_version", reason) and drv.phase == "fulfilled"


def test_before_anything_is_applied_only_name_namespace_and_control_plane_are_frozen() -> None:
    drv = driven_to("failed")
    newer = drv.rec.spec.model_copy(update={"k8s_version": "v1.31.1"})  # type: ignore[union-attr]
    drv.apply(request("create", newer, drv.clock.tick()))
    assert drv.phase == "pending" and drv.rec.spec.k8s_version == "v1.31.1"  # type: ignore[union-attr]


def test_an_update_during_provisioning_waits_and_starts_when_fulfilled() -> None:
    drv = driven_to("progressing/provisioning")
    drv.apply(request("update", spec(1), drv.clock.tick()))
    assert drv.phase == "progressing/provisioning" and drv.rec.queued is not None  # type: ignore[union-attr]
    drv.send("cluster.ready")
    assert drv.phase == "progressing/scaling" and drv.rec.spec == spec(1)  # type: ignore[union-attr]
    assert drv.rec.queued is None  # type: ignore[union-attr]


def test_requests_older_than_the_last_one_applied_are_ignored() -> None:
    drv = Driver()
    t_delete, t_create = drv.clock.tick(), drv.clock.now - timedelta(seconds=30)
    drv.apply(request("delete", spec(), t_delete))
    assert drv.phase == "deleted"
    assert drv.apply(request("create", spec(), t_create)).record is None  # the create the delete overtook
    drv.apply(request("create", spec(), drv.clock.tick(60)))
    assert drv.phase == "pending" and drv.rec.incarnation == 2  # type: ignore[union-attr]


def test_delete_of_an_unknown_pr_is_a_tombstone_that_releases_its_hosts() -> None:
    drv = Driver()
    d = drv.apply(request("delete", spec(), drv.clock.tick()))
    rec = drv.rec
    assert rec is not None and rec.state == "deleted" and rec.reason == "NotFound"
    assert [c.release for c in d.commands if c.release] == [("cp0", "w0", "w1")]
    assert published(list(d.commands), PrStatus)[0].state == "deleted"
    assert published(list(d.commands), CapiJob) == []


def test_delete_mid_hostprep_skips_capi_resets_then_releases_every_lease() -> None:
    drv = driven_to("progressing/hostprep")
    drv.commands.clear()
    drv.send("delete")
    # Nothing was claimed: the half-prepared hosts are reset (agent, ByoHost) before going back.
    assert drv.phase == "deleting/teardown" and published(drv.commands, CapiJob) == []
    assert [j.action for j in published(drv.commands, HostprepJob)] == ["teardown"]
    assert not [c for c in drv.commands if c.release]
    drv.send("teardown.done")
    assert drv.phase == "deleted"
    assert [c.release for c in drv.commands if c.release] == [("cp0", "w0", "w1")]
    drv.send("hostprep.done")  # the running job finishes later: nothing restarts
    assert drv.phase == "deleted"


def test_delete_mid_hostprep_without_reset_releases_every_lease_at_once() -> None:
    drv = driven_to("progressing/hostprep", NO_RESET)
    drv.commands.clear()
    drv.send("delete")
    assert drv.phase == "deleted"
    assert published(drv.commands, CapiJob) == []
    assert [c.release for c in drv.commands if c.release] == [("cp0", "w0", "w1")]


def test_delete_after_fulfilled_waits_for_the_cluster_then_tombstones_small() -> None:
    drv = driven_to("fulfilled")
    drv.commands.clear()
    drv.send("delete")
    assert drv.phase == "deleting/capi-delete"
    assert [j.action for j in published(drv.commands, CapiJob)] == ["delete"]
    drv.send("capi.deleting")
    assert drv.phase == "deleting/capi-delete"
    drv.send("capi.deleted")
    assert drv.phase == "deleting/teardown" and not [c for c in drv.commands if c.release]
    drv.send("teardown.done")
    rec = drv.rec
    assert rec is not None and rec.state == "deleted" and rec.deleted_at is not None
    assert rec.hosts == {} and rec.observed is None and len(rec.history) <= 5
    assert [c.release for c in drv.commands if c.release] == [("cp0", "w0", "w1")]
    order = [type(c.payload).__name__ if c.payload else "release" for c in drv.commands]
    assert order.index("release") < len(order) - 1 and order[-1] == "PrStatus"  # leases before "deleted"


def test_teardown_runs_after_the_cluster_is_gone_and_again_after_a_late_preparation() -> None:
    drv = driven_to("deleting/teardown")
    teardowns = [j for j in published(drv.commands, HostprepJob) if j.action == "teardown"]
    assert len(teardowns) == 1
    drv.send("hostprep.done")  # a preparation that finished after the teardown was sent
    assert len([j for j in published(drv.commands, HostprepJob) if j.action == "teardown"]) == 2
    drv.send("teardown.done")
    assert drv.phase == "deleted"


def test_a_create_during_deletion_starts_a_new_incarnation_keeping_its_leases() -> None:
    drv = driven_to("deleting/capi-delete")
    new = spec(1)
    drv.apply(request("create", new, drv.clock.tick()))
    drv.send("capi.deleted")
    # Every host is reset first, also those the new incarnation keeps: it must find them clean.
    assert drv.phase == "deleting/teardown"
    drv.send("teardown.done")
    rec = drv.rec
    assert rec is not None and rec.phase == "pending" and rec.incarnation == 2 and rec.spec == new
    assert [c.release for c in drv.commands if c.release] == [("w1",)]


def test_a_late_apply_after_the_tombstone_deletes_again() -> None:
    drv = driven_to("deleted")
    drv.commands.clear()
    drv.send("capi.applied")
    assert [j.action for j in published(drv.commands, CapiJob)] == ["delete"] and drv.phase == "deleted"


def test_deadlines_wait_until_due_then_fail_naming_the_hosts_not_ready() -> None:
    drv = driven_to("progressing/hostprep")
    rec = drv.rec
    assert rec is not None and rec.deadline is not None
    timer = PrDeadline(pr_id=PR, seq=rec.deadline_seq, state="pending", deadline=rec.deadline)
    assert timer_wait(rec, timer, rec.deadline - timedelta(seconds=10)) == pytest.approx(10)
    assert timer_wait(rec, timer, rec.deadline + timedelta(seconds=1)) is None
    stale = timer.model_copy(update={"seq": rec.deadline_seq - 1})
    assert timer_wait(rec, stale, rec.deadline - timedelta(seconds=10)) is None
    assert drv.apply(ev("deadline", timer, drv.clock.tick()), rec.deadline - timedelta(seconds=1)).record is None
    drv.apply(ev("deadline", timer, drv.clock.tick()), rec.deadline + timedelta(seconds=1))
    assert drv.rec is not None and (drv.rec.state, drv.rec.reason) == ("failed", "HostprepTimedOut")
    assert "cp0" in drv.rec.message and "w1" in drv.rec.message  # type: ignore[operator]


def test_a_timer_of_an_earlier_stage_does_nothing() -> None:
    drv = driven_to("progressing/apply")
    first = published(drv.commands, PrDeadline)[0]
    assert first.seq < drv.rec.deadline_seq  # type: ignore[union-attr]
    late = first.deadline + timedelta(hours=2)
    assert drv.apply(ev("deadline", first, drv.clock.tick()), late).record is None


def test_history_is_bounded() -> None:
    drv = Driver(TEARDOWN.__class__(history_limit=3))
    for kind in ("create", "host.progress", "hostprep.done", "capi.applied", "cluster.ready"):
        drv.send(kind)  # type: ignore[arg-type]
    assert [h.seq for h in drv.rec.history] == [3, 4, 5]  # type: ignore[union-attr]


def test_hosts_whose_teardown_failed_are_quarantined_not_released() -> None:
    drv = driven_to("deleting/teardown")
    job = drv.rec.hostprep_job  # type: ignore[union-attr]
    assert job is not None and job.action == "teardown"
    drv.commands.clear()
    # w0 was torn down; cp0 failed and w1 was never reached: only w0 goes back to the pool.
    failed = HostprepFailed(
        pr_id=PR,
        action="teardown",
        host_id="cp0",
        step="kubeadm-reset",
        reason="StepFailed",
        message="exit 1",
        ready_hosts=("w0",),
    )
    drv.apply(ev("teardown.failed", failed, drv.clock.tick(), job.id))
    assert drv.phase == "deleted"
    assert [c.release for c in drv.commands if c.release] == [("w0",)]
    (cmd,) = [c for c in drv.commands if c.quarantine]
    assert cmd.quarantine == ("cp0", "w1") and "teardown failed" in cmd.quarantine_reason


def test_hosts_whose_teardown_timed_out_are_all_quarantined() -> None:
    drv = driven_to("deleting/teardown")
    rec = drv.rec
    assert rec is not None and rec.deadline is not None
    drv.commands.clear()
    timer = PrDeadline(pr_id=PR, seq=rec.deadline_seq, state=rec.state, deadline=rec.deadline)
    drv.apply(ev("deadline", timer, drv.clock.tick()), rec.deadline + timedelta(seconds=1))
    assert drv.phase == "deleted"
    assert [c.release for c in drv.commands if c.release] == []
    assert [c.quarantine for c in drv.commands if c.quarantine] == [("cp0", "w0", "w1")]
