"""Kubernetes upgrades in the PR state machine: admission rules, the two rollout stages, freed hosts, failures.

Driven through the real transition table with the events status_watcher, hostprep and capi_renderer send.
"""

from __future__ import annotations

from typing import Any

import pytest

from services.o2ims.policy import Policy
from shared.errors import InputError
from shared.payloads import CapiApplied, CapiJob, HostprepDone, HostprepFailed, HostProgress, PrDeadline, PrStatus
from tests.unit.o2ims.machine import (
    PR,
    SPARE,
    TO_VERSION,
    Driver,
    byohost,
    ev,
    request,
    rolled,
    spec,
    upgraded,
)

FROM = "v1.30.2"


def fulfilled(cp: int, workers: int, policy: Policy | None = None) -> Driver:
    drv = Driver(policy or Policy())
    s = spec(workers, cp=cp)
    drv.apply(request("create", s, drv.clock.tick()))
    for kind in ("hostprep.done", "capi.applied"):
        drv.send(kind)
    drv.apply(rolled(s, drv.clock.tick(), cp=FROM, workers=FROM))
    for h in s.all_hosts:
        drv.apply(byohost(s, h.host_id, claimed=True, at=drv.clock.tick(), version=FROM))
    assert drv.phase == "fulfilled"
    drv.commands.clear()
    return drv


def jobs(drv: Driver, cls: type) -> list[Any]:
    return [c.payload for c in drv.commands if isinstance(c.payload, cls)]


def answer_capi(drv: Driver, action: str = "upgrade") -> None:
    job = drv.rec.capi_job  # type: ignore[union-attr]
    assert job is not None and job.action == action, job
    drv.apply(ev("capi.applied", CapiApplied(pr_id=PR, action=action, objects=()), drv.clock.tick(), job.id))  # type: ignore[arg-type]


def roll_host(drv: Driver, host_id: str) -> None:
    """The rollout frees ``host_id`` (old version label), hostprep upgrades it, a new Machine claims it."""
    s = drv.rec.spec  # type: ignore[union-attr]
    assert s is not None
    drv.apply(byohost(s, host_id, claimed=False, at=drv.clock.tick(), version=FROM))
    job = drv.rec.hostprep_job  # type: ignore[union-attr]
    assert job is not None and job.action == "upgrade" and job.hosts == (host_id,)
    assert drv.rec.hosts[host_id].status == "released"  # type: ignore[union-attr]
    drv.apply(
        ev(
            "host.progress",
            HostProgress(pr_id=PR, host_id=host_id, step="packages", status="running"),
            drv.clock.tick(),
            job.id,
        )
    )
    assert drv.rec.hosts[host_id].step == "packages"  # type: ignore[union-attr]  # per-host progress in the PR
    drv.apply(ev("upgrade.done", HostprepDone(pr_id=PR, action="upgrade", hosts=(host_id,)), drv.clock.tick(), job.id))
    drv.apply(byohost(s, host_id, claimed=False, at=drv.clock.tick(), version=TO_VERSION))
    drv.apply(byohost(s, host_id, claimed=True, at=drv.clock.tick(), version=TO_VERSION))


def test_three_control_planes_and_a_worker_roll_in_place_control_plane_first() -> None:
    drv = fulfilled(3, 1)
    old = drv.rec.spec  # type: ignore[union-attr]
    assert old is not None
    drv.apply(request("update", upgraded(old), drv.clock.tick()))
    assert drv.phase == "progressing/upgrade-control-plane"
    (cp_job,) = jobs(drv, CapiJob)
    assert (cp_job.action, cp_job.spec.k8s_version, cp_job.workers_version) == ("upgrade", TO_VERSION, FROM)
    answer_capi(drv)
    for h in old.control_plane:
        roll_host(drv, h.host_id)
        assert drv.phase == "progressing/upgrade-control-plane"
    new = drv.rec.spec  # type: ignore[union-attr]
    assert new is not None
    drv.apply(rolled(new, drv.clock.tick(), cp=TO_VERSION, workers=FROM))
    assert drv.phase == "progressing/upgrade-workers"
    workers_job = jobs(drv, CapiJob)[-1]
    assert (workers_job.action, workers_job.workers_version) == ("upgrade", None)
    answer_capi(drv)
    roll_host(drv, "w0")
    drv.apply(rolled(new, drv.clock.tick(), cp=TO_VERSION, workers=TO_VERSION))
    assert drv.phase == "progressing/upgrade-workers"
    assert jobs(drv, CapiJob)[-1].action == "apply"  # the old templates go
    answer_capi(drv, "apply")
    assert drv.phase == "fulfilled" and drv.rec.upgrade is None  # type: ignore[union-attr]
    hostprep = [c.payload for c in drv.commands if getattr(c.payload, "type", "") == "hostprep.job"]
    assert [(j.action, j.hosts) for j in hostprep] == [("upgrade", (h,)) for h in ("cp0", "cp1", "cp2", "w0")]
    assert all(j.k8s_version == TO_VERSION for j in hostprep)
    assert not [c for c in drv.commands if c.release or c.quarantine]  # every host kept its lease
    stages = [(p.state, p.stage) for p in jobs(drv, PrStatus)]
    assert stages == [
        ("progressing", "upgrade-control-plane"),
        ("progressing", "upgrade-workers"),
        ("fulfilled", None),
    ]


def test_a_single_control_plane_moves_to_the_spare_and_its_old_host_is_reset_then_released() -> None:
    drv = fulfilled(1, 2)
    old = drv.rec.spec  # type: ignore[union-attr]
    assert old is not None
    drv.apply(request("update", upgraded(old), drv.clock.tick()))
    assert drv.phase == "progressing/hostprep"
    prep = drv.rec.hostprep_job  # type: ignore[union-attr]
    assert prep is not None and (prep.action, prep.hosts) == ("prepare", (SPARE.host_id,))
    assert [h.host_id for h in drv.rec.leaving] == ["cp0"]  # type: ignore[union-attr]
    drv.send("hostprep.done")
    assert drv.phase == "progressing/upgrade-control-plane"
    answer_capi(drv)
    new = drv.rec.spec  # type: ignore[union-attr]
    assert new is not None
    drv.apply(byohost(new, SPARE.host_id, claimed=True, at=drv.clock.tick(), version=TO_VERSION))
    # The old control plane's Machine goes: its host is freed, reset and only then released.
    drv.apply(byohost(new, "cp0", claimed=False, at=drv.clock.tick(), version=FROM))
    reset = drv.rec.hostprep_job  # type: ignore[union-attr]
    assert reset is not None and (reset.action, reset.hosts) == ("teardown", ("cp0",))
    assert not [c for c in drv.commands if c.release]
    drv.apply(
        ev("teardown.done", HostprepDone(pr_id=PR, action="teardown", hosts=("cp0",)), drv.clock.tick(), reset.id)
    )
    assert [c.release for c in drv.commands if c.release] == [("cp0",)]
    drv.apply(rolled(new, drv.clock.tick(), cp=TO_VERSION, workers=FROM))
    assert drv.phase == "progressing/upgrade-workers"
    answer_capi(drv)
    for w in ("w0", "w1"):
        roll_host(drv, w)
    drv.apply(rolled(new, drv.clock.tick(), cp=TO_VERSION, workers=TO_VERSION))
    answer_capi(drv, "apply")
    assert drv.phase == "fulfilled"
    assert [h.host_id for h in drv.rec.spec.control_plane] == [SPARE.host_id]  # type: ignore[union-attr]


def refusal(drv: Driver, change: dict[str, Any]) -> InputError:
    new = drv.rec.spec.model_copy(update=change)  # type: ignore[union-attr]
    with pytest.raises(InputError) as err:
        drv.apply(request("update", new, drv.clock.tick()))
    assert drv.phase == "fulfilled" and drv.rec.upgrade is None  # type: ignore[union-attr]
    return err.value


def test_refusals_name_the_rule_before_anything_starts() -> None:
    single, three = fulfilled(1, 2), fulfilled(3, 1)
    assert refusal(single, {"k8s_version": TO_VERSION}).reason == "NoSpareHost"
    assert refusal(single, {"k8s_version": "v1.32.0", "control_plane": (SPARE,)}).reason == "MinorVersionSkip"
    assert refusal(three, {"k8s_version": "v1.29.9"}).reason == "Downgrade"
    assert refusal(three, {"k8s_version": TO_VERSION, "workers": ()}).reason == "UpgradeChangesWorkers"
    assert (
        refusal(three, {"k8s_version": TO_VERSION, "control_plane": (SPARE, *three.rec.spec.control_plane[1:])}).reason
        == "ImmutableField"
    )  # type: ignore[union-attr]
    assert not [c for d in (single, three) for c in d.commands]


def test_a_cluster_not_all_at_its_version_is_not_upgraded() -> None:
    drv = fulfilled(3, 1)
    s = drv.rec.spec  # type: ignore[union-attr]
    assert s is not None
    drv.apply(rolled(s, drv.clock.tick(), cp=FROM, workers="v1.29.4"))
    assert refusal(drv, {"k8s_version": TO_VERSION}).reason == "VersionSkew"


def test_a_host_failing_its_upgrade_fails_the_pr_naming_host_and_step_and_a_retry_resumes() -> None:
    drv = fulfilled(3, 1)
    drv.apply(request("update", upgraded(drv.rec.spec), drv.clock.tick()))  # type: ignore[arg-type]
    answer_capi(drv)
    s = drv.rec.spec  # type: ignore[union-attr]
    assert s is not None
    drv.apply(byohost(s, "cp1", claimed=False, at=drv.clock.tick(), version=FROM))
    job = drv.rec.hostprep_job  # type: ignore[union-attr]
    assert job is not None
    failed = HostprepFailed(
        pr_id=PR, action="upgrade", host_id="cp1", step="packages", exit_code=100, reason="StepFailed", message="apt"
    )
    drv.apply(ev("upgrade.failed", failed, drv.clock.tick(), job.id))
    status = jobs(drv, PrStatus)[-1]
    assert (status.state, status.stage, status.reason) == ("failed", "upgrade-control-plane", "StepFailed")
    assert "host cp1" in (status.message or "") and "step packages" in (status.message or "")
    assert FROM in (status.message or "")
    # While failed, only the same spec is taken (a different one is refused with why) ...
    with pytest.raises(InputError) as err:
        drv.apply(request("update", s.model_copy(update={"workers": ()}), drv.clock.tick()))
    assert err.value.reason == "UpgradeUnfinished" and drv.phase == "failed"
    # ... and it goes on with the rollout: no host is prepared again while it runs the old version.
    before = len(drv.commands)
    drv.apply(request("update", s, drv.clock.tick()))
    assert drv.phase == "progressing/upgrade-control-plane"
    again = [c.payload for c in drv.commands[before:] if getattr(c.payload, "type", "") in ("capi.job", "hostprep.job")]
    assert [(j.type, j.action) for j in again] == [("capi.job", "upgrade")]


def test_one_host_job_at_a_time_the_next_when_it_answers() -> None:
    drv = fulfilled(3, 1)
    drv.apply(request("update", upgraded(drv.rec.spec), drv.clock.tick()))  # type: ignore[arg-type]
    answer_capi(drv)
    s = drv.rec.spec  # type: ignore[union-attr]
    assert s is not None
    drv.apply(byohost(s, "cp0", claimed=False, at=drv.clock.tick(), version=FROM))
    first = drv.rec.hostprep_job  # type: ignore[union-attr]
    drv.apply(byohost(s, "cp1", claimed=False, at=drv.clock.tick(), version=FROM))
    assert drv.rec.hostprep_job == first  # type: ignore[union-attr]  # waits
    assert first is not None
    drv.apply(ev("upgrade.done", HostprepDone(pr_id=PR, action="upgrade", hosts=("cp0",)), drv.clock.tick(), first.id))
    second = drv.rec.hostprep_job  # type: ignore[union-attr]
    assert second is not None and second.hosts == ("cp1",)  # cp0 is upgraded already: not again


def test_a_host_seen_unclaimed_without_the_old_version_label_is_not_upgraded() -> None:
    drv = fulfilled(3, 1)
    drv.apply(request("update", upgraded(drv.rec.spec), drv.clock.tick()))  # type: ignore[arg-type]
    answer_capi(drv)
    s = drv.rec.spec  # type: ignore[union-attr]
    assert s is not None
    drv.apply(byohost(s, "cp0", claimed=False, at=drv.clock.tick(), exists=False))  # deleted: no label
    drv.apply(byohost(s, "cp1", claimed=False, at=drv.clock.tick(), version=TO_VERSION))  # registered anew
    assert not [c for c in drv.commands if getattr(c.payload, "type", "") == "hostprep.job"]


def test_each_upgrade_stage_has_its_own_deadline() -> None:
    policy = Policy(upgrade_control_plane_deadline=111.0, upgrade_workers_deadline=222.0)
    drv = fulfilled(3, 1, policy)
    drv.apply(request("update", upgraded(drv.rec.spec), drv.clock.tick()))  # type: ignore[arg-type]
    answer_capi(drv)
    new = drv.rec.spec  # type: ignore[union-attr]
    assert new is not None
    drv.apply(rolled(new, drv.clock.tick(), cp=TO_VERSION, workers=FROM))
    armed = {t.stage: t.deadline for t in jobs(drv, PrDeadline)}
    assert set(armed) == {"upgrade-control-plane", "upgrade-workers"}
    entered = {h.to_stage: h.at for h in drv.rec.history}  # type: ignore[union-attr]
    assert (armed["upgrade-control-plane"] - entered["upgrade-control-plane"]).total_seconds() == 111.0
    assert (armed["upgrade-workers"] - entered["upgrade-workers"]).total_seconds() == 222.0
    timer = jobs(drv, PrDeadline)[-1]
    drv.apply(ev("deadline", timer, drv.clock.tick()), timer.deadline)
    status = jobs(drv, PrStatus)[-1]
    assert (status.state, status.stage, status.reason) == ("failed", "upgrade-workers", "UpgradeTimedOut")
    assert "workers 0/1" in (status.message or "")


def test_the_old_control_plane_is_reset_only_on_a_release_seen_after_the_upgrade_began() -> None:
    drv = fulfilled(1, 2)
    old = drv.rec.spec  # type: ignore[union-attr]
    assert old is not None
    # An unclaimed observation from before the upgrade (whatever made it) says nothing of the rollout.
    drv.apply(byohost(old, "cp0", claimed=False, at=drv.clock.tick(), version=FROM))
    drv.apply(request("update", upgraded(old), drv.clock.tick()))
    drv.send("hostprep.done")
    answer_capi(drv)
    assert drv.rec.hostprep_job.action == "prepare"  # type: ignore[union-attr]  # no reset sent
    new = drv.rec.spec  # type: ignore[union-attr]
    assert new is not None
    drv.apply(byohost(new, "cp0", claimed=True, at=drv.clock.tick(), version=FROM))
    drv.apply(byohost(new, "cp0", claimed=False, at=drv.clock.tick(), version=FROM))
    reset = drv.rec.hostprep_job  # type: ignore[union-attr]
    assert reset is not None and (reset.action, reset.hosts) == ("teardown", ("cp0",))


def _single_rolled_before_its_old_host_is_released() -> Driver:
    """A 1 + 2 upgrade whose KCP rollout is reported done before the old control plane's ByoHost is seen free."""
    drv = fulfilled(1, 2)
    drv.apply(request("update", upgraded(drv.rec.spec), drv.clock.tick()))  # type: ignore[arg-type]
    drv.send("hostprep.done")
    answer_capi(drv)
    new = drv.rec.spec  # type: ignore[union-attr]
    assert new is not None
    drv.apply(byohost(new, SPARE.host_id, claimed=True, at=drv.clock.tick(), version=TO_VERSION))
    drv.apply(rolled(new, drv.clock.tick(), cp=TO_VERSION, workers=FROM))
    return drv


def _workers_jobs(drv: Driver) -> list[CapiJob]:
    return [j for j in jobs(drv, CapiJob) if j.action == "upgrade" and j.workers_version is None]


def test_the_workers_roll_only_once_the_old_control_plane_host_is_reset_and_released() -> None:
    """The old control-plane host keeps running its kube-apiserver (BYOH frees it unreset): no worker may get a
    newer kubelet before its teardown, whatever order the rollout's news arrives in."""
    drv = _single_rolled_before_its_old_host_is_released()
    new = drv.rec.spec  # type: ignore[union-attr]
    assert new is not None
    assert drv.phase == "progressing/upgrade-control-plane" and not _workers_jobs(drv)
    assert "leaving: cp0" in (drv.rec.message or "")  # type: ignore[union-attr]  # says what it waits for
    drv.apply(byohost(new, "cp0", claimed=False, at=drv.clock.tick(), version=FROM))
    reset = drv.rec.hostprep_job  # type: ignore[union-attr]
    assert reset is not None and (reset.action, reset.hosts) == ("teardown", ("cp0",))
    drv.apply(rolled(new, drv.clock.tick(), cp=TO_VERSION, workers=FROM, workers_ready=1))
    drv.apply(rolled(new, drv.clock.tick(), cp=TO_VERSION, workers=FROM))  # news while the reset runs
    assert drv.phase == "progressing/upgrade-control-plane" and not _workers_jobs(drv)
    drv.apply(
        ev("teardown.done", HostprepDone(pr_id=PR, action="teardown", hosts=("cp0",)), drv.clock.tick(), reset.id)
    )
    assert drv.phase == "progressing/upgrade-workers"
    order = [
        ("release", c.release) if c.release else (c.payload.type, getattr(c.payload, "action", None))
        for c in drv.commands
        if c.release or getattr(c.payload, "type", "") in ("hostprep.job", "capi.job")
    ]
    assert order == [
        ("hostprep.job", "prepare"),
        ("capi.job", "upgrade"),  # the control plane
        ("hostprep.job", "teardown"),
        ("release", ("cp0",)),
        ("capi.job", "upgrade"),  # the workers, only now
    ]
    assert len(_workers_jobs(drv)) == 1
    # A redelivered answer of the reset changes nothing.
    before = len(drv.commands)
    drv.apply(
        ev("teardown.done", HostprepDone(pr_id=PR, action="teardown", hosts=("cp0",)), drv.clock.tick(), reset.id)
    )
    assert len(drv.commands) == before and drv.phase == "progressing/upgrade-workers"


def test_an_old_control_plane_host_whose_reset_fails_is_quarantined_and_then_the_workers_roll() -> None:
    drv = _single_rolled_before_its_old_host_is_released()
    new = drv.rec.spec  # type: ignore[union-attr]
    assert new is not None
    drv.apply(byohost(new, "cp0", claimed=False, at=drv.clock.tick(), version=FROM))
    assert drv.rec.hostprep_job.action == "teardown" and not _workers_jobs(drv)  # type: ignore[union-attr]
    drv.send("teardown.failed")
    assert [c.quarantine for c in drv.commands if c.quarantine] and not [c for c in drv.commands if c.release]
    assert drv.phase == "progressing/upgrade-workers" and len(_workers_jobs(drv)) == 1


def test_with_the_reset_switched_off_the_old_control_plane_host_is_released_before_the_workers_roll() -> None:
    drv = fulfilled(1, 2, Policy(teardown_hosts=False))
    drv.apply(request("update", upgraded(drv.rec.spec), drv.clock.tick()))  # type: ignore[arg-type]
    drv.send("hostprep.done")
    answer_capi(drv)
    new = drv.rec.spec  # type: ignore[union-attr]
    assert new is not None
    drv.apply(rolled(new, drv.clock.tick(), cp=TO_VERSION, workers=FROM))
    assert drv.phase == "progressing/upgrade-control-plane" and not _workers_jobs(drv)
    drv.apply(byohost(new, "cp0", claimed=False, at=drv.clock.tick(), version=FROM))
    assert [c.release for c in drv.commands if c.release] == [("cp0",)]
    assert drv.phase == "progressing/upgrade-workers" and len(_workers_jobs(drv)) == 1
