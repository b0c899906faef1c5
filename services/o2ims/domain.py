"""The ProvisioningRequest state machine as a table: (phase, event) → rule, and ``decide``.

Phases are a PR's state, with the stage where the stage matters::

    absent ─create─▶ pending ─host progress─▶ progressing/hostprep ─hostprep done─▶ progressing/apply
      ─capi applied─▶ progressing/provisioning ─cluster ready─▶ fulfilled
    fulfilled ─update─▶ progressing/hostprep (new workers) or progressing/scaling ─ready─▶ fulfilled
    any ─delete─▶ deleting/capi-delete ─gone─▶ [deleting/teardown ─done─▶] deleted (tombstone)
    any stage ─failure or deadline─▶ failed ─newer create/update─▶ pending (retry)

Every pair not in ``TABLE`` is ignored: late, duplicate and out-of-order events change nothing
(a ``hostprep.done`` after ``failed`` finds no row). ``decide`` is pure: it returns the record
to write (or None) and the commands that the write puts in the record's outbox.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import get_args

from shared.messages import Envelope
from shared.payloads import (
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

from . import deletion as d
from . import requests as q
from . import rules as r
from .effects import Event, EventKind, Policy, Tx
from .record import Command, PrRecord

Rule = Callable[[Tx], None]

ABSENT = "absent"
PENDING = "pending"
HOSTPREP = "progressing/hostprep"
APPLY = "progressing/apply"
PROVISIONING = "progressing/provisioning"
SCALING = "progressing/scaling"
FULFILLED = "fulfilled"
FAILED = "failed"
CAPI_DELETE = "deleting/capi-delete"
TEARDOWN = "deleting/teardown"
DELETED = "deleted"
PHASES = (ABSENT, PENDING, HOSTPREP, APPLY, PROVISIONING, SCALING, FULFILLED, FAILED, CAPI_DELETE, TEARDOWN, DELETED)
EVENT_KINDS: tuple[EventKind, ...] = get_args(EventKind)
REQUESTS: tuple[EventKind, ...] = ("create", "update", "delete")
#: Phases in which a flow is running: a changed spec waits for it to settle.
RUNNING = (PENDING, HOSTPREP, APPLY, PROVISIONING, SCALING)


def _rows(phases: tuple[str, ...], kinds: tuple[EventKind, ...], rule: Rule) -> dict[tuple[str, EventKind], Rule]:
    return {(p, k): rule for p in phases for k in kinds}


# fmt: off
TABLE: dict[tuple[str, EventKind], Rule] = {
    # ── requests ─────────────────────────────────────────────────────────────────────────
    (ABSENT, "create"):                    q.admit,
    (ABSENT, "update"):                    q.admit,
    (ABSENT, "delete"):                    d.tombstone_unknown,
    **_rows(RUNNING, ("create", "update"), q.queue_request),
    (FULFILLED, "create"):                 q.change_spec,
    (FULFILLED, "update"):                 q.change_spec,
    (FAILED, "create"):                    q.retry,
    (FAILED, "update"):                    q.retry,
    **_rows((*RUNNING, FULFILLED, FAILED), ("delete",), d.begin_delete),
    (CAPI_DELETE, "create"):               d.queue_recreate,
    (TEARDOWN, "create"):                  d.queue_recreate,
    (DELETED, "create"):                   d.reincarnate,
    # ── host preparation ─────────────────────────────────────────────────────────────────
    (PENDING, "host.progress"):            r.hostprep_started,
    (HOSTPREP, "host.progress"):           r.note_host_progress,
    (TEARDOWN, "host.progress"):           r.note_host_progress,
    (PENDING, "hostprep.done"):            r.hostprep_finished,
    (HOSTPREP, "hostprep.done"):           r.hostprep_finished,
    (PENDING, "hostprep.failed"):          r.hostprep_failed,
    (HOSTPREP, "hostprep.failed"):         r.hostprep_failed,
    (TEARDOWN, "hostprep.done"):           d.repeat_teardown,
    (DELETED, "hostprep.done"):            d.repeat_teardown,
    (TEARDOWN, "teardown.done"):           d.torn_down,
    (TEARDOWN, "teardown.failed"):         d.torn_down,
    # ── CAPI objects ─────────────────────────────────────────────────────────────────────
    (APPLY, "capi.applied"):               r.resources_applied,
    (SCALING, "capi.applied"):             r.resources_applied,
    **_rows((APPLY, PROVISIONING, SCALING), ("capi.failed",), r.capi_failed),
    **_rows((CAPI_DELETE, TEARDOWN, DELETED), ("capi.applied",), d.redelete),
    (CAPI_DELETE, "capi.deleting"):        d.deletion_in_progress,
    (CAPI_DELETE, "capi.deleted"):         d.resources_deleted,
    (CAPI_DELETE, "cluster.gone"):         d.resources_deleted,
    (CAPI_DELETE, "capi.delete_failed"):   d.deletion_failed,
    # ── the cluster, as status_watcher sees it ───────────────────────────────────────────
    **_rows((APPLY, PROVISIONING, SCALING, FULFILLED), ("cluster.status", "cluster.ready"), r.observe),
    **_rows((APPLY, PROVISIONING, SCALING, FULFILLED), ("cluster.failed",), r.cluster_failed),
    **_rows((PROVISIONING, SCALING, FULFILLED), ("cluster.gone",), r.cluster_gone),
    # ── deadlines ────────────────────────────────────────────────────────────────────────
    **_rows((PENDING, HOSTPREP, APPLY, PROVISIONING, SCALING, CAPI_DELETE), ("deadline",), r.timed_out),
    (TEARDOWN, "deadline"):                d.teardown_timed_out,
}
# fmt: on


def ignore(tx: Tx) -> None:
    tx.ignore(f"nothing to do for {tx.event.kind} in {tx.rec.phase}")


@dataclass(frozen=True)
class Decision:
    """What ``decide`` concluded: the record to write (None: unchanged) and its new commands."""

    record: PrRecord | None
    rule: str
    ignored: str | None
    commands: tuple[Command, ...]


def _provisional(event: Event, now: datetime) -> PrRecord:
    req = event.payload
    assert isinstance(req, PrRequest)
    return PrRecord(
        pr_id=req.pr_id, fpr=req.fpr, template_name=req.template_name, template_version=req.template_version,
        spec=req.spec, state="pending", stage_entered_at=now, request_at=event.at, created_at=now, updated_at=now,
    )  # fmt: skip


def resolve(record: PrRecord | None, event: Event) -> EventKind:
    """A job the bus rejected counts as that job failing (found by the rejected message's id)."""
    if event.kind != "job.rejected" or record is None:
        return event.kind
    cause = event.causation_id
    if record.hostprep_job is not None and cause == record.hostprep_job.id:
        return "hostprep.failed" if record.hostprep_job.action == "prepare" else "teardown.failed"
    if record.capi_job is not None and cause == record.capi_job.id:
        return "capi.delete_failed" if record.capi_job.action == "delete" else "capi.failed"
    return event.kind


def decide(record: PrRecord | None, event: Event, now: datetime, policy: Policy | None = None) -> Decision:
    """Apply ``event`` to ``record`` at ``now``: the one entry point of the state machine.

    Raises ``InputError`` for a request that can never be honoured (e.g. an immutable field).
    """
    policy = policy or Policy()
    event = replace(event, kind=resolve(record, event))
    if record is None:
        if event.kind not in REQUESTS:
            return Decision(None, "ignore", "unknown PR", ())
        tx = Tx(_provisional(event, now), event, now, policy, fresh=True)
        phase = ABSENT
    else:
        tx = Tx(record, event, now, policy)
        phase = record.phase
    rule = TABLE.get((phase, event.kind), ignore)
    rule(tx)
    if tx.ignored is None:
        q.start_queued(tx)
    return Decision(tx.result(), rule.__name__, tx.ignored, tuple(tx.commands))


def event_from(env: Envelope, subject_pr: str | None = None) -> tuple[str, Event] | None:
    """The PR a message concerns and what it means to the state machine; None when irrelevant."""
    p = env.payload
    kind: EventKind
    pr: str | None = getattr(p, "pr_id", None)
    match p:
        case PrRequest():
            kind = p.operation
        case HostProgress():
            kind = "host.progress"
        case HostprepDone():
            kind = "hostprep.done" if p.action == "prepare" else "teardown.done"
        case HostprepFailed():
            kind = "hostprep.failed" if p.action == "prepare" else "teardown.failed"
        case CapiApplied():
            kind = "capi.applied"
        case CapiFailed():
            kind = "capi.delete_failed" if p.action == "delete" else "capi.failed"
        case CapiDeleted():
            kind = "capi.deleted" if p.gone else "capi.deleting"
        case ClusterSummary():
            kind = (
                "cluster.gone" if not p.exists
                else "cluster.failed" if p.failure
                else "cluster.ready" if p.ready
                else "cluster.status"
            )  # fmt: skip
        case ClusterTransition():
            kind = "cluster.ready" if p.type == "cluster.ready" else "cluster.failed"
        case PrDeadline():
            kind = "deadline"
        case MessageFailed():
            kind, pr = "job.rejected", subject_pr
        case _:
            return None
    if not pr:
        return None
    cause = str(env.causation_id) if env.causation_id else None
    return pr, Event(kind=kind, at=env.occurred_at, message_id=str(env.id), causation_id=cause, payload=p)


def timer_wait(record: PrRecord | None, timer: PrDeadline, now: datetime) -> float | None:
    """Seconds until ``timer`` is due when it is still the PR's current deadline, else None."""
    if record is None or record.deadline is None or timer.seq != record.deadline_seq:
        return None
    remaining = (record.deadline - now).total_seconds()
    return remaining if remaining > 0 else None
