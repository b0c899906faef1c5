"""Where failures of o2ims's cluster-status consumer go: the PR's own status subject.

status_watcher publishes a cluster's status on ``k8s.status.cluster.<ns>.<name>`` with no
correlation id (an observation answers no request); the PR it concerns is the payload's
``pr_id``, read from the Cluster's ``o2ims.oran.org/pr-id`` label that capi_renderer writes.
A message that consumer terminates must be reported on ``o2ims.status.<pr>``, where the PR's
watchers look, and not on ``o2ims.status._unknown``.
"""

from __future__ import annotations

import asyncio

from services.status_watcher.cache import StatusKey
from services.status_watcher.publisher import plan, publish, subject_of
from shared.bus import Bus, MessageContext
from shared.errors import PermanentError
from shared.messages import Envelope, decode
from shared.payloads import ClusterSummary, MessageFailed
from shared.subjects import O2IMS, O2IMS_CLUSTER_STATUS_CONSUMER, o2ims_status

PR = "0c5e7f52-8f7e-5d0b-9a55-4b1d0c2e9a11"


async def _stored(bus: Bus, subject: str) -> list[Envelope]:
    info = await bus.js.stream_info(O2IMS.name, subjects_filter=subject)
    if not (info.state.subjects or {}).get(subject):
        return []
    sub = await bus.js.subscribe(subject, ordered_consumer=True)
    try:
        return [decode((await sub.next_msg(timeout=5)).data) for _ in range(info.state.subjects[subject])]
    finally:
        await sub.unsubscribe()


async def test_a_terminated_cluster_status_lands_on_the_prs_own_status_subject(bus: Bus) -> None:
    handled: list[str] = []
    done = asyncio.Event()

    async def refuse(env: Envelope, ctx: MessageContext) -> None:
        handled.append(env.type)
        done.set()
        raise PermanentError("o2ims cannot take this status", reason="Refused")

    await bus.consumer(O2IMS_CLUSTER_STATUS_CONSUMER, refuse).start()
    key = StatusKey("cluster", "edge", "edge1")
    summary = ClusterSummary(namespace="edge", name="edge1", pr_id=PR, workers_desired=2)
    envelopes, _ = plan(key, None, summary, source="status_watcher")
    assert [e.correlation_id for e in envelopes] == [""]  # nothing else names the PR
    await publish(bus, [(subject_of(key), env) for env in envelopes])
    await asyncio.wait_for(done.wait(), 30)

    for _ in range(100):  # the failure event follows the handler's refusal; poll the stream's own count
        failed = await _stored(bus, o2ims_status(PR))
        if failed:
            break
        await asyncio.sleep(0.05)
    assert handled == ["k8s.cluster.status"]
    assert len(failed) == 1
    payload = failed[0].payload
    assert isinstance(payload, MessageFailed)
    assert payload.consumer == O2IMS_CLUSTER_STATUS_CONSUMER.durable
    assert payload.reason == "Refused" and payload.subject == subject_of(key)
    assert payload.message_id == str(envelopes[0].id)
    assert await _stored(bus, o2ims_status("_unknown")) == []
