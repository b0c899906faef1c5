"""What the state machine sees: ``Event`` and its kinds, and how bus messages become events.

``event_from`` maps an envelope to the PR it concerns and the event's kind (a hostprep answer
becomes ``hostprep.done`` or ``teardown.done``, a cluster summary ``cluster.ready``, a ByoHost
summary ``byohost.status`` for the PR holding that host …);
``resolve`` turns a job the bus rejected into that job's own failure. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, assert_never, get_args

from services.o2ims.record import PrRecord
from shared.kinds import HOSTPREP_ACTIONS, CapiAction, HostprepAction
from shared.messages import Envelope
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
    Payload,
    PrDeadline,
    PrRequest,
)

EventKind = Literal[
    "create",
    "update",
    "delete",
    "host.progress",
    "hostprep.done",
    "hostprep.failed",
    "teardown.done",
    "teardown.failed",
    "upgrade.done",
    "upgrade.failed",
    "job.rejected",
    "capi.applied",
    "capi.failed",
    "capi.deleting",
    "capi.deleted",
    "capi.delete_failed",
    "cluster.status",
    "cluster.ready",
    "cluster.failed",
    "cluster.gone",
    "byohost.status",
    "deadline",
    # Internal (never from the bus): the engine carried out a deletion's lease releases (``deletion.complete``).
    "leases.released",
]
EVENT_KINDS: tuple[EventKind, ...] = get_args(EventKind)
REQUESTS: tuple[EventKind, ...] = ("create", "update", "delete")


@dataclass(frozen=True)
class Event:
    """One thing that happened to a PR, as the state machine sees it."""

    kind: EventKind
    #: When the bus received the message (``MessageContext.received_at``), never the sender's ``occurred_at``:
    #: requests and observations are ordered by it, so a sender cannot post-date its way past later ones.
    at: datetime
    message_id: str
    causation_id: str | None = None
    payload: Payload | None = None


def event_from(
    env: Envelope, subject_pr: str | None = None, *, received_at: datetime, lease_owner: str | None = None
) -> tuple[str, Event] | None:
    """The PR a message received at ``received_at`` concerns and what it means to the state machine; None
    when irrelevant.

    A ByoHost observation names a host, not a PR: it goes to ``lease_owner``, the PR holding the
    host's lease (looked up by the handler).
    """
    p = env.payload
    kind: EventKind
    pr: str | None = getattr(p, "pr_id", None)
    match p:
        case PrRequest():
            kind = p.operation
        case HostProgress():
            kind = "host.progress"
        case HostprepDone():
            kind = hostprep_outcome(p.action, done=True)
        case HostprepFailed():
            kind = hostprep_outcome(p.action, done=False)
        case CapiApplied():
            kind = "capi.applied"
        case CapiFailed():
            kind = capi_failure(p.action)
        case CapiDeleted():
            kind = "capi.deleted" if p.gone else "capi.deleting"
        case ClusterSummary():
            kind = (
                "cluster.gone"
                if not p.exists
                else "cluster.failed"
                if p.failure
                else "cluster.ready"
                if p.ready
                else "cluster.status"
            )
        case ClusterTransition():
            kind = "cluster.ready" if p.type == "cluster.ready" else "cluster.failed"
        case ByoHostSummary():
            kind, pr = "byohost.status", lease_owner
        case PrDeadline():
            kind = "deadline"
        case MessageFailed():
            kind, pr = "job.rejected", subject_pr
        case _:
            return None
    if not pr:
        return None
    cause = str(env.causation_id) if env.causation_id else None
    return pr, Event(kind=kind, at=received_at, message_id=str(env.id), causation_id=cause, payload=p)


def hostprep_outcome(action: HostprepAction, *, done: bool) -> EventKind:
    match action:
        case "prepare":
            return "hostprep.done" if done else "hostprep.failed"
        case "teardown":
            return "teardown.done" if done else "teardown.failed"
        case "upgrade":
            return "upgrade.done" if done else "upgrade.failed"
        case _:
            assert_never(action)


def capi_failure(action: CapiAction) -> EventKind:
    match action:
        case "apply" | "scale" | "upgrade":
            return "capi.failed"
        case "delete":
            return "capi.delete_failed"
        case _:
            assert_never(action)


def resolve(record: PrRecord | None, event: Event) -> EventKind:
    """A job the bus rejected counts as that job failing (found by the rejected message's id)."""
    if event.kind != "job.rejected" or record is None:
        return event.kind
    cause = event.causation_id
    if record.hostprep_job is not None and cause == record.hostprep_job.id:
        action = record.hostprep_job.action
        return next((hostprep_outcome(a, done=False) for a in HOSTPREP_ACTIONS if a == action), "hostprep.failed")
    if record.capi_job is not None and cause == record.capi_job.id:
        return "capi.delete_failed" if record.capi_job.action == "delete" else "capi.failed"
    return event.kind
