"""Helpers for the state-machine tests: specs, events that answer the record's current jobs,
and records driven into every phase through the real transition table."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from services.o2ims.events import Event, EventKind
from services.o2ims.policy import Policy
from services.o2ims.record import PrRecord
from services.o2ims.table import Decision, decide
from shared.models import ClusterSpec, HostRef
from shared.payloads import (
    ByoHostSummary,
    CapiApplied,
    CapiDeleted,
    CapiFailed,
    ClusterSummary,
    ClusterTransition,
    HostprepDone,
    HostprepFailed,
    HostProgress,
    MessageFailed,
    PrDeadline,
    PrRequest,
)

PR = "6d1f1c6e-3f6a-5b8e-9d55-000000000001"
FPR = "fpr-a"
T0 = datetime(2025, 1, 1, tzinfo=UTC)
POLICY = Policy()
TEARDOWN = Policy(teardown_hosts=True)
NO_RESET = Policy(teardown_hosts=False)


def host(i: int, prefix: str = "h") -> HostRef:
    # One address per machine: control-plane and worker hosts of a spec never share one.
    return HostRef(
        host_id=f"{prefix}{i}", host_name=f"node-{prefix}{i}", host_ip=f"10.0.{0 if prefix == 'cp' else 1}.{i + 10}"
    )


def spec(workers: int = 2, *, cp: int = 1, name: str = "edge1", version: str = "v1.30.2") -> ClusterSpec:
    return ClusterSpec(
        name=name,
        k8s_version=version,
        control_plane=tuple(host(i, "cp") for i in range(cp)),
        workers=tuple(host(i, "w") for i in range(workers)),
        vip="10.0.0.250",
    )


class Clock:
    """Event and decision times that always move forward."""

    def __init__(self) -> None:
        self.now = T0

    def tick(self, seconds: float = 1.0) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def ev(kind: EventKind, payload: Any, at: datetime, cause: str | None = None) -> Event:
    return Event(kind=kind, at=at, message_id=str(uuid.uuid4()), causation_id=cause, payload=payload)


def request(op: str, s: ClusterSpec | None, at: datetime) -> Event:
    return ev(op, PrRequest(pr_id=PR, fpr=FPR, operation=op, spec=s), at)  # type: ignore[arg-type]


def summary(s: ClusterSpec, at: datetime, *, ready: bool = True, workers_ready: int | None = None, **kw: Any) -> Event:
    n_w = len(s.workers)
    fields: dict[str, Any] = dict(
        namespace=s.namespace,
        name=s.name,
        pr_id=PR,
        ready=ready,
        control_plane_initialized=True,
        control_plane_ready=len(s.control_plane),
        control_plane_desired=len(s.control_plane),
        workers_ready=n_w if workers_ready is None else workers_ready,
        workers_desired=n_w,
    )
    fields.update(kw)
    p = ClusterSummary(**fields)
    kind: EventKind = (
        "cluster.gone"
        if not p.exists
        else "cluster.failed"
        if p.failure
        else "cluster.ready"
        if p.ready
        else "cluster.status"
    )
    return ev(kind, p, at)


def byohost(
    s: ClusterSpec, host_id: str, *, claimed: bool, at: datetime, exists: bool = True, version: str | None = None
) -> Event:
    """status_watcher's summary of a host's ByoHost: claimed by the cluster, or free (with its version label)."""
    p = ByoHostSummary(
        namespace=s.namespace,
        name=f"node-{host_id}",
        host_id=host_id,
        k8s_version=version,
        exists=exists,
        registered=exists,
        free=exists and not claimed,
        claimed_by=s.name if claimed else None,
    )
    return ev("byohost.status", p, at)


def canonical(kind: EventKind, rec: PrRecord | None, at: datetime) -> tuple[Event, datetime]:
    """An event of ``kind`` that answers ``rec``'s current jobs; returns it and the decision time."""
    s = rec.spec if rec is not None and rec.spec is not None else spec()
    hp = rec.hostprep_job if rec else None
    capi = rec.capi_job if rec else None
    hp_id, capi_id = (hp.id if hp else None), (capi.id if capi else None)
    hosts = hp.hosts if hp else tuple(h.host_id for h in s.all_hosts)
    now = at
    match kind:
        case "create":
            e = request("create", s, at)
        case "update":
            free = next(i for i in range(100) if f"w{i}" not in {w.host_id for w in s.workers})
            bigger = s.model_copy(update={"workers": (*s.workers, host(free, "w"))})
            e = request("update", bigger, at)
        case "delete":
            e = request("delete", s, at)
        case "host.progress":
            e = ev(kind, HostProgress(pr_id=PR, host_id=hosts[0], step=f"step-{at:%M%S}", status="running"), at, hp_id)
        case "hostprep.done":
            e = ev(kind, HostprepDone(pr_id=PR, action="prepare", hosts=hosts), at, hp_id)
        case "hostprep.failed":
            failed = HostprepFailed(
                pr_id=PR,
                action="prepare",
                host_id=hosts[0],
                step="containerd",
                exit_code=100,
                reason="StepFailed",
                message="apt-get failed",
            )
            e = ev(kind, failed, at, hp_id)
        case "teardown.done":
            e = ev(kind, HostprepDone(pr_id=PR, action="teardown", hosts=hosts), at, hp_id)
        case "teardown.failed":
            e = ev(kind, HostprepFailed(pr_id=PR, action="teardown", reason="StepFailed", message="x"), at, hp_id)
        case "upgrade.done":
            e = ev(kind, HostprepDone(pr_id=PR, action="upgrade", hosts=hosts), at, hp_id)
        case "upgrade.failed":
            failed = HostprepFailed(
                pr_id=PR,
                action="upgrade",
                host_id=hosts[0],
                step="packages",
                exit_code=100,
                reason="StepFailed",
                message="apt-get failed",
            )
            e = ev(kind, failed, at, hp_id)
        case "job.rejected":
            latest = max((j for j in (hp, capi) if j is not None), key=lambda j: _issued(rec, j.id), default=None)
            e = ev(
                kind,
                MessageFailed(consumer="w", subject="x", reason="Rejected", error="bad job", deliveries=1),
                at,
                latest.id if latest else None,
            )
        case "capi.applied":
            # After a delete was sent, an applied can only answer an earlier apply (a late one).
            late = capi is not None and capi.action == "delete"
            cause = (rec.past_jobs[-1] if rec and rec.past_jobs else None) if late else capi_id
            e = ev(kind, CapiApplied(pr_id=PR, action="apply", objects=()), at, cause)
        case "capi.failed":
            e = ev(kind, CapiFailed(pr_id=PR, action="apply", reason="Invalid", message="422"), at, capi_id)
        case "capi.deleting":
            e = ev(kind, CapiDeleted(pr_id=PR, cluster=s.name, namespace=s.namespace, gone=False), at, capi_id)
        case "capi.deleted":
            e = ev(kind, CapiDeleted(pr_id=PR, cluster=s.name, namespace=s.namespace, gone=True), at, capi_id)
        case "capi.delete_failed":
            e = ev(kind, CapiFailed(pr_id=PR, action="delete", reason="Forbidden", message="403"), at, capi_id)
        case "cluster.status":
            e = summary(s, at, ready=False, workers_ready=0, waiting_for="workers")
        case "cluster.ready":
            e = summary(s, at)
        case "cluster.failed":
            e = ev(
                kind,
                ClusterTransition(
                    type="cluster.failed", namespace=s.namespace, name=s.name, pr_id=PR, reason="Machine m1 Failed"
                ),
                at,
            )
        case "cluster.gone":
            e = summary(s, at, ready=False, exists=False)
        case "byohost.status":
            e = byohost(s, hosts[0], claimed=False, at=at)
        case "leases.released":
            e = Event(kind=kind, at=at, message_id="")
        case "deadline":
            seq = rec.deadline_seq if rec else 0
            due = rec.deadline if rec is not None and rec.deadline else at
            e = ev(kind, PrDeadline(pr_id=PR, seq=seq, state="pending", deadline=due), at)
            now = max(at, due + timedelta(seconds=1))
        case _:
            raise AssertionError(kind)
    return e, now


def _issued(rec: PrRecord | None, job_id: str) -> int:
    """Order of jobs: the later command number wins (ids are derived from it)."""
    from shared.messages import derive_id

    assert rec is not None
    return next((n for n in range(rec.cmd_seq, 0, -1) if str(derive_id("o2ims", rec.pr_id, n)) == job_id), 0)


class Driver:
    """Drives one PR through the real table, keeping the record and every command."""

    def __init__(self, policy: Policy = POLICY) -> None:
        self.rec: PrRecord | None = None
        self.clock = Clock()
        self.policy = policy
        self.commands: list[Any] = []

    def apply(self, event: Event, now: datetime | None = None) -> Decision:
        d = decide(self.rec, event, now or self.clock.tick(), self.policy)
        if d.record is not None:
            self.rec = d.record.without_commands({c.id for c in d.record.outbox})  # published
            self.commands.extend(d.commands)
            if self.rec.tombstone_pending:  # as the engine does once the releases are carried out
                done = decide(
                    self.rec,
                    Event(kind="leases.released", at=self.clock.tick(), message_id=""),
                    self.clock.now,
                    self.policy,
                )
                assert done.record is not None, done.ignored
                self.rec = done.record.without_commands({c.id for c in done.record.outbox})
                self.commands.extend(done.commands)
                return replace(d, record=self.rec, commands=(*d.commands, *done.commands))
        return d

    def send(self, kind: EventKind) -> Decision:
        e, now = canonical(kind, self.rec, self.clock.tick())
        self.clock.now = now
        return self.apply(e, now)

    @property
    def phase(self) -> str:
        return self.rec.phase if self.rec else "absent"


#: How to reach each phase from nothing, with canonical events.
ROUTES: dict[str, tuple[EventKind, ...]] = {
    "absent": (),
    "pending": ("create",),
    "progressing/hostprep": ("create", "host.progress"),
    "progressing/apply": ("create", "host.progress", "hostprep.done"),
    "progressing/provisioning": ("create", "host.progress", "hostprep.done", "capi.applied"),
    "fulfilled": ("create", "host.progress", "hostprep.done", "capi.applied", "cluster.ready"),
    "failed": ("create", "hostprep.failed"),
    "deleting/capi-delete": ("create", "hostprep.done", "capi.applied", "cluster.ready", "delete"),
    "deleting/teardown": ("create", "hostprep.done", "capi.applied", "cluster.ready", "delete", "capi.deleted"),
    "deleted": ("create", "hostprep.done", "capi.applied", "cluster.ready", "delete", "capi.deleted", "teardown.done"),
}


#: The version the upgrade routes move to, and the spare host a single control plane moves onto.
TO_VERSION = "v1.31.1"
SPARE = host(9, "cp")


def upgraded(s: ClusterSpec, version: str = TO_VERSION) -> ClusterSpec:
    """``s`` at ``version``; a single control plane moved to ``SPARE``."""
    change: dict[str, Any] = {"k8s_version": version}
    if len(s.control_plane) == 1:
        change["control_plane"] = (SPARE,)
    return s.model_copy(update=change)


def rolled(s: ClusterSpec, at: datetime, *, cp: str, workers: str, **kw: Any) -> Event:
    """A ready cluster whose control plane runs ``cp`` and workers run ``workers`` (every Machine updated)."""
    machines = {f"m-{h.host_id}": (cp if h in s.control_plane else workers) for h in s.all_hosts}
    return summary(
        s,
        at,
        control_plane_version=cp,
        control_plane_updated=len(s.control_plane),
        workers_version=workers,
        workers_updated=len(s.workers),
        machine_versions=machines,
        **kw,
    )


def driven_to(phase: str, policy: Policy | None = None) -> Driver:
    if policy is None:
        policy = TEARDOWN if phase == "deleting/teardown" else POLICY
    drv = Driver(policy)
    if phase in ("progressing/upgrade-control-plane", "progressing/upgrade-workers"):
        for kind in ROUTES["fulfilled"]:
            drv.send(kind)
        old = drv.rec.spec  # type: ignore[union-attr]
        assert old is not None
        drv.apply(request("update", upgraded(old), drv.clock.tick()))
        drv.send("hostprep.done")  # the spare is prepared
        if phase == "progressing/upgrade-workers":
            drv.send("capi.applied")
            new = drv.rec.spec  # type: ignore[union-attr]
            assert new is not None
            drv.apply(rolled(new, drv.clock.tick(), cp=TO_VERSION, workers=old.k8s_version))
            # The workers roll only once the old control-plane host, freed by the rollout, is reset.
            moved = old.control_plane[0].host_id
            drv.apply(byohost(new, moved, claimed=False, at=drv.clock.tick(), version=old.k8s_version))
            drv.send("teardown.done")
        assert drv.phase == phase, (phase, drv.phase, drv.rec.message if drv.rec else None)
        return drv
    if phase == "progressing/teardown":
        for kind in ROUTES["fulfilled"]:
            drv.send(kind)
        s = drv.rec.spec  # type: ignore[union-attr]
        assert s is not None
        drv.apply(byohost(s, s.workers[1].host_id, claimed=True, at=drv.clock.tick()))
        smaller = s.model_copy(update={"workers": s.workers[:1]})
        drv.apply(request("update", smaller, drv.clock.tick()))
        drv.send("capi.applied")
        drv.apply(summary(smaller, drv.clock.tick()))
        drv.apply(byohost(smaller, s.workers[1].host_id, claimed=False, at=drv.clock.tick()))
    elif phase == "progressing/scaling":
        for kind in ROUTES["fulfilled"]:
            drv.send(kind)
        smaller = drv.rec.spec.model_copy(update={"workers": drv.rec.spec.workers[:1]})  # type: ignore[union-attr]
        drv.apply(request("update", smaller, drv.clock.tick()))
    else:
        for kind in ROUTES[phase]:
            drv.send(kind)
    assert drv.phase == phase, (phase, drv.phase)
    return drv
