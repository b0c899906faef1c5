"""Deduplicated publishing of summaries and transitions on ``k8s.status.<kind>.<namespace>.<name>``.

Message ids form a chain per subject: a summary's id is derived from (kind, namespace,
name, the id of the previous summary, the new summary's content hash), a transition's
from its type and the id of the summary it precedes. So a restarted watcher, which
reads the last message of every subject back from the K8S stream (:func:`load_history`),
republishes an unchanged state under the *same* id (JetStream drops it inside its
duplicate window), yet a state that comes back after a change (A → B → A) gets a new
id and is never mistaken for a duplicate. A resourceVersion change that does not change
the summary publishes nothing. Transitions go out before their summary, so the last
message of a subject is a summary unless the process died between the two.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from dataclasses import dataclass

import nats.errors
import structlog
from nats.js import api as js_api

from services.status_watcher.cache import StatusKey
from services.status_watcher.domain import LastState, cluster_transitions
from shared.bus import Bus
from shared.errors import InputError
from shared.messages import Envelope, decode, derive_id
from shared.payloads import ByoHostSummary, ClusterSummary, ClusterTransition
from shared.subjects import ALL_K8S_STATUS, K8S, k8s_status

log = structlog.get_logger(__name__)

Summary = ClusterSummary | ByoHostSummary


@dataclass(frozen=True)
class Published:
    """The last message published for one status key."""

    id: uuid.UUID
    #: Content hash of the last summary; None when only a transition made it out (crash between the two).
    digest: str | None
    exists: bool = True
    ready: bool = False
    failed: bool = False
    pr_id: str | None = None


def digest(summary: Summary) -> str:
    return hashlib.sha256(summary.model_dump_json().encode()).hexdigest()


def subject_of(key: StatusKey) -> str:
    return k8s_status(key.kind, key.namespace, key.name)


def plan(
    key: StatusKey, last: Published | None, summary: Summary, *, source: str, republish: bool = False
) -> tuple[list[Envelope], Published | None]:
    """What to publish for ``summary`` given what was last published, and the new last state.

    ``republish`` (the first pass after a start) re-sends an unchanged summary under its old id.
    """
    if not summary.exists and (last is None or not last.exists):
        return [], last
    if isinstance(summary, ClusterSummary) and not summary.exists and summary.pr_id is None and last is not None:
        summary = summary.model_copy(update={"pr_id": last.pr_id})
    d = digest(summary)
    if last is not None and last.digest == d:
        if not republish:
            return [], last
        return [_envelope(summary, last.id, source)], last
    sid = derive_id("k8s.status", key.kind, key.namespace, key.name, last.id if last else "", d)
    out: list[Envelope] = []
    ready = failed = False
    if isinstance(summary, ClusterSummary):
        before = LastState(ready=last.ready, failed=last.failed) if last is not None and last.exists else None
        for transition in cluster_transitions(before, summary):
            out.append(_envelope(transition, derive_id(transition.type, sid), source, cause=sid))
        ready, failed = summary.ready, summary.failure is not None
    out.append(_envelope(summary, sid, source))
    pr_id = summary.pr_id if isinstance(summary, ClusterSummary) else None
    return out, Published(sid, d, exists=summary.exists, ready=ready, failed=failed, pr_id=pr_id)


def _envelope(
    payload: Summary | ClusterTransition, msg_id: uuid.UUID, source: str, cause: uuid.UUID | None = None
) -> Envelope:
    # No correlation id: an observation answers no request; its PR is the payload's ``pr_id``.
    return Envelope(id=msg_id, type=payload.type, causation_id=cause, source=source, payload=payload)


def remembered(env: Envelope) -> tuple[StatusKey, Published] | None:
    """The status key and last state a message read back from the stream stands for."""
    p = env.payload
    if isinstance(p, ClusterSummary):
        key = StatusKey("cluster", p.namespace, p.name)
        return key, Published(env.id, digest(p), p.exists, p.ready, p.failure is not None, p.pr_id)
    if isinstance(p, ByoHostSummary):
        return StatusKey("byohost", p.namespace, p.name), Published(env.id, digest(p), p.exists)
    if isinstance(p, ClusterTransition) and env.causation_id is not None:
        # Died between transition and summary: chain from the summary that never made it.
        key = StatusKey("cluster", p.namespace, p.name)
        ready, failed = p.type == "cluster.ready", p.type == "cluster.failed"
        return key, Published(env.causation_id, None, True, ready, failed, p.pr_id)
    return None


async def load_history(
    bus: Bus, namespaces: tuple[str, ...] = (), *, timeout: float = 10.0
) -> dict[StatusKey, Published]:
    """The last published state of every status subject, read from the K8S stream (last message per subject)."""
    config = js_api.ConsumerConfig(
        deliver_policy=js_api.DeliverPolicy.LAST_PER_SUBJECT, ack_policy=js_api.AckPolicy.NONE, inactive_threshold=30.0
    )
    sub = await bus.js.pull_subscribe(ALL_K8S_STATUS, stream=K8S.name, config=config)
    found: dict[StatusKey, Published] = {}
    info = await sub.consumer_info()
    try:
        pending = int(info.num_pending or 0)
        while pending > 0:
            try:
                msgs = await sub.fetch(batch=min(pending, 1000), timeout=timeout)
            except nats.errors.TimeoutError:
                break
            for msg in msgs:
                pending = int(msg.metadata.num_pending or 0)
                try:
                    item = remembered(decode(msg.data))
                except InputError as exc:
                    log.warning("history_message_skipped", subject=msg.subject, error=exc.message)
                    continue
                if item is not None and (not namespaces or item[0].namespace in namespaces):
                    found[item[0]] = item[1]
    finally:
        await sub.unsubscribe()
        with contextlib.suppress(Exception):  # it would expire on its own (inactive_threshold)
            await bus.js.delete_consumer(K8S.name, info.name)
    log.info("status_history_loaded", subjects=len(found))
    return found


async def publish(bus: Bus, items: list[tuple[str, Envelope]], *, timeout: float = 10.0) -> None:
    """Pipelined publish of many envelopes; every one acknowledged (or an exception)."""
    await bus.publish_batch(items, timeout=timeout)
