"""The guards every rule asks before acting, kept together so they read (and change) as one.

An event must answer the PR's *current* job (its causation id is the job's id, or at least not
an earlier job's), a request must be newer than the last request applied, a deadline must be
the PR's current one and due, and an event must carry the payload its kind promises. Pure.
"""

from __future__ import annotations

from typing import TypeVar

from services.o2ims.record import Job
from services.o2ims.transaction import Tx
from shared.payloads import Payload, PrDeadline

P = TypeVar("P", bound=Payload)


def payload(tx: Tx, cls: type[P]) -> P:
    p = tx.event.payload
    if not isinstance(p, cls):
        raise TypeError(f"event {tx.event.kind} carries {type(p).__name__}, expected {cls.__name__}")
    return p


def answers(tx: Tx, job: Job | None) -> bool:
    """The event answers ``job``: caused by it, or by nothing we sent earlier (e.g. a watch)."""
    if job is None:
        return False
    cause = tx.event.causation_id
    return cause is None or cause == job.id or cause not in tx.rec.past_jobs


def newer_request(tx: Tx) -> bool:
    return tx.fresh or tx.event.at > tx.rec.request_at


def newer_observation(tx: Tx) -> bool:
    """Cluster observations are ordered by the watcher's clock: an older one changes nothing."""
    old = tx.rec.observed
    return old is None or tx.event.at >= old.at


def deadline_due(tx: Tx) -> bool:
    d = payload(tx, PrDeadline)
    rec = tx.rec
    if d.seq != rec.deadline_seq or rec.deadline is None or tx.now < rec.deadline:
        tx.ignore("stale or not yet due")
        return False
    return True
