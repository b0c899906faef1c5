"""The ProvisioningRequest state machine as a table: (phase, event) → rule, and ``decide``.

Phases are a PR's state, with the stage where the stage matters::

    absent ─create─▶ pending ─host progress─▶ progressing/hostprep ─hostprep done─▶ progressing/apply
      ─capi applied─▶ progressing/provisioning ─cluster ready─▶ fulfilled
    fulfilled ─update─▶ [progressing/hostprep (new workers) ─▶] progressing/scaling (add first, then
      remove exactly) ─ready, leaving hosts released─▶ progressing/teardown (reset them) ─done─▶ fulfilled
    any ─delete─▶ deleting/capi-delete ─gone─▶ deleting/teardown (hosts released, then reset) ─done─▶
      leases released ─▶ deleted (tombstone); a host whose reset failed is quarantined, never released
    fulfilled ─update (new version)─▶ [progressing/hostprep (the spare of a single control plane) ─▶]
      progressing/upgrade-control-plane (KCP rollout; freed hosts re-prepared) ─▶ progressing/upgrade-workers
      (MD rollout; likewise; old templates removed) ─▶ fulfilled
    any stage ─failure or deadline─▶ failed ─newer create/update─▶ pending (retry; a failed upgrade resumes)

Every pair not in ``TABLE`` is ignored: late, duplicate and out-of-order events change nothing
(a ``hostprep.done`` after ``failed`` finds no row). ``decide`` is pure: it returns the record
to write (or None) and the commands that the write puts in the record's outbox.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from services.o2ims.events import REQUESTS, Event, EventKind, resolve
from services.o2ims.policy import Policy
from services.o2ims.record import Command, PrRecord
from services.o2ims.rules import admission, capi, cluster, deadlines, deletion, hostprep, release, scaling, upgrade
from services.o2ims.transaction import Tx
from shared.payloads import PrRequest

Rule = Callable[[Tx], None]

ABSENT = "absent"
PENDING = "pending"
HOSTPREP = "progressing/hostprep"
APPLY = "progressing/apply"
PROVISIONING = "progressing/provisioning"
SCALING = "progressing/scaling"
UPGRADE_CP = "progressing/upgrade-control-plane"
UPGRADE_WORKERS = "progressing/upgrade-workers"
FULFILLED = "fulfilled"
FAILED = "failed"
RESETTING = "progressing/teardown"
CAPI_DELETE = "deleting/capi-delete"
TEARDOWN = "deleting/teardown"
DELETED = "deleted"
PHASES = (
    ABSENT,
    PENDING,
    HOSTPREP,
    APPLY,
    PROVISIONING,
    SCALING,
    UPGRADE_CP,
    UPGRADE_WORKERS,
    RESETTING,
    FULFILLED,
    FAILED,
    CAPI_DELETE,
    TEARDOWN,
    DELETED,
)
#: Phases in which a flow is running: a changed spec waits for it to settle.
RUNNING = (PENDING, HOSTPREP, APPLY, PROVISIONING, SCALING, UPGRADE_CP, UPGRADE_WORKERS, RESETTING)
#: The two rollout stages of an upgrade.
UPGRADING = (UPGRADE_CP, UPGRADE_WORKERS)


def _rows(phases: tuple[str, ...], kinds: tuple[EventKind, ...], rule: Rule) -> dict[tuple[str, EventKind], Rule]:
    return {(p, k): rule for p in phases for k in kinds}


TABLE: dict[tuple[str, EventKind], Rule] = {
    # ── requests ─────────────────────────────────────────────────────────────────────────
    (ABSENT, "create"): admission.admit,
    (ABSENT, "update"): admission.admit,
    (ABSENT, "delete"): deletion.tombstone_unknown,
    **_rows(RUNNING, ("create", "update"), admission.queue_request),
    (FULFILLED, "create"): admission.change_spec,
    (FULFILLED, "update"): admission.change_spec,
    (FAILED, "create"): admission.retry,
    (FAILED, "update"): admission.retry,
    **_rows((*RUNNING, FULFILLED, FAILED), ("delete",), deletion.begin),
    (CAPI_DELETE, "create"): deletion.queue_recreate,
    (TEARDOWN, "create"): deletion.queue_recreate,
    (DELETED, "create"): deletion.reincarnate,
    # ── host preparation ─────────────────────────────────────────────────────────────────
    (PENDING, "host.progress"): hostprep.started,
    (HOSTPREP, "host.progress"): hostprep.note_progress,
    (TEARDOWN, "host.progress"): hostprep.note_progress,
    (PENDING, "hostprep.done"): hostprep.finished,
    (HOSTPREP, "hostprep.done"): hostprep.finished,
    (PENDING, "hostprep.failed"): hostprep.failed,
    (HOSTPREP, "hostprep.failed"): hostprep.failed,
    (RESETTING, "host.progress"): hostprep.note_progress,
    (RESETTING, "teardown.done"): scaling.reset_answered,
    (RESETTING, "teardown.failed"): scaling.reset_answered,
    (TEARDOWN, "hostprep.done"): deletion.repeat_teardown,
    (DELETED, "hostprep.done"): deletion.repeat_teardown,
    (TEARDOWN, "teardown.done"): deletion.torn_down,
    (TEARDOWN, "teardown.failed"): deletion.torn_down,
    **_rows(UPGRADING, ("host.progress",), hostprep.note_progress),
    **_rows(UPGRADING, ("upgrade.done",), upgrade.host_upgraded),
    **_rows(UPGRADING, ("upgrade.failed",), upgrade.host_failed),
    **_rows(UPGRADING, ("teardown.done", "teardown.failed"), upgrade.reset_answered),
    # ── CAPI objects ─────────────────────────────────────────────────────────────────────
    (APPLY, "capi.applied"): capi.applied,
    (SCALING, "capi.applied"): scaling.applied,
    **_rows(UPGRADING, ("capi.applied",), upgrade.applied),
    **_rows((APPLY, PROVISIONING, SCALING, *UPGRADING), ("capi.failed",), capi.failed),
    **_rows((CAPI_DELETE, TEARDOWN, DELETED), ("capi.applied",), deletion.redelete),
    (CAPI_DELETE, "capi.deleting"): deletion.in_progress,
    (CAPI_DELETE, "capi.deleted"): deletion.resources_deleted,
    (CAPI_DELETE, "cluster.gone"): deletion.resources_deleted,
    (CAPI_DELETE, "capi.delete_failed"): deletion.failed,
    # ── the cluster, as status_watcher sees it ───────────────────────────────────────────
    **_rows((APPLY, PROVISIONING, RESETTING, FULFILLED), ("cluster.status", "cluster.ready"), cluster.observe),
    **_rows((SCALING,), ("cluster.status", "cluster.ready"), scaling.observe),
    **_rows(UPGRADING, ("cluster.status", "cluster.ready"), upgrade.observe),
    **_rows((APPLY, PROVISIONING, SCALING, *UPGRADING, RESETTING, FULFILLED), ("cluster.failed",), cluster.failed),
    **_rows((PROVISIONING, SCALING, *UPGRADING, RESETTING, FULFILLED), ("cluster.gone",), cluster.gone),
    # ── the hosts' ByoHosts (claimed or not), as status_watcher sees them ────────────────
    **_rows(
        (PENDING, HOSTPREP, APPLY, PROVISIONING, RESETTING, FULFILLED, FAILED, CAPI_DELETE),
        ("byohost.status",),
        release.observe_byohost,
    ),
    (SCALING, "byohost.status"): scaling.observe_byohost,
    **_rows(UPGRADING, ("byohost.status",), upgrade.observe_byohost),
    (TEARDOWN, "byohost.status"): deletion.byohost_seen,
    # ── deadlines ────────────────────────────────────────────────────────────────────────
    **_rows(
        (PENDING, HOSTPREP, APPLY, PROVISIONING, SCALING, *UPGRADING, CAPI_DELETE), ("deadline",), deadlines.timed_out
    ),
    (RESETTING, "deadline"): scaling.reset_timed_out,
    (TEARDOWN, "deadline"): deletion.teardown_timed_out,
    # ── a deletion's leases released (the engine, after carrying out the outbox) ─────────
    **_rows((*RUNNING, FULFILLED, FAILED, CAPI_DELETE, TEARDOWN), ("leases.released",), deletion.complete),
}

#: The rule name of an event met by a deletion still completing: the engine completes it, then decides again.
COMPLETE_DELETION_FIRST = "complete_deletion_first"


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
        pr_id=req.pr_id,
        fpr=req.fpr,
        template_name=req.template_name,
        template_version=req.template_version,
        spec=req.spec,
        state="pending",
        stage_entered_at=now,
        request_at=event.at,
        created_at=now,
        updated_at=now,
    )


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
        if record.tombstone_pending and event.kind != "leases.released":
            # Leases first, then the tombstone: nothing else is decided in between (``deletion.finalize``).
            return Decision(None, COMPLETE_DELETION_FIRST, "the deletion completes first", ())
        tx = Tx(record, event, now, policy)
        phase = record.phase
    rule = TABLE.get((phase, event.kind), ignore)
    rule(tx)
    if tx.ignored is None:
        admission.start_queued(tx)
    return Decision(tx.result(), rule_name(rule), tx.ignored, tuple(tx.commands))


def rule_name(rule: Rule) -> str:
    """``hostprep.failed``: the rule as the table names it (for logs and tests)."""
    module = rule.__module__.rpartition(".")[2]
    return rule.__name__ if module == "table" else f"{module}.{rule.__name__}"
