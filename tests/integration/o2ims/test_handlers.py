"""o2ims's handlers against a real nats-server, the other services played by the test (``World``).

Every handler is exercised: requests, hostprep events (progress, done, failed, a rejected job),
capi events (applied, deleted), cluster status (summaries and ``cluster.ready``), and timers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from services.o2ims.policy import Policy
from services.o2ims.record import Command, PrRecord, node_cluster_id
from shared.bus import Bus
from shared.leases import HostLeases
from shared.messages import Envelope, utcnow
from shared.natsserver import EmbeddedNats
from shared.payloads import (
    ClusterSummary,
    ClusterTransition,
    HostprepDone,
    HostprepJob,
    MessageFailed,
    PrRequest,
    PrStatus,
)
from shared.subjects import (
    BUCKET_HOSTS,
    CAPI,
    HOSTPREP,
    K8S,
    O2IMS,
    O2IMS_CAPI_EVENTS_CONSUMER,
    O2IMS_CLUSTER_STATUS_CONSUMER,
    O2IMS_EVENTS_CONSUMER,
    O2IMS_REQUESTS_CONSUMER,
    hostprep_event,
    k8s_status,
    o2ims_request,
    o2ims_status,
)
from tests.integration.o2ims.world import InProcessO2ims, World, make_spec

Start = Callable[..., Awaitable[InProcessO2ims]]


@pytest.fixture
async def world(bus: Bus) -> World:
    return await World(bus).start()


@pytest.fixture
async def start_o2ims(nats_server: EmbeddedNats) -> AsyncIterator[Start]:
    started: list[InProcessO2ims] = []

    async def start(**policy: float | bool) -> InProcessO2ims:
        o2 = await InProcessO2ims(nats_server.url, Policy(**policy)).start()  # type: ignore[arg-type]
        started.append(o2)
        return o2

    yield start
    for o2 in started:
        await o2.stop()


def pr_id() -> str:
    return str(uuid.uuid4())


async def _stream_count(bus: Bus, stream: str, subject: str) -> int:
    info = await bus.js.stream_info(stream, subjects_filter=subject)
    return int((info.state.subjects or {}).get(subject, 0))


async def test_create_goes_to_fulfilled(world: World, start_o2ims: Start) -> None:
    o2 = await start_o2ims()
    pr, spec = pr_id(), make_spec()
    await world.request("create", pr, spec)
    done = await world.wait_state(pr, "fulfilled")
    assert done.node_cluster_id == node_cluster_id(pr, spec.name) and done.fpr == "fpr-1"
    # The cluster may be seen ready before the apply is confirmed: provisioning is then skipped.
    assert [s for s in world.states(pr) if s != ("progressing", "provisioning")] == [
        ("pending", None),
        ("progressing", "hostprep"),
        ("progressing", "apply"),
        ("fulfilled", None),
    ]
    await quiet(world.bus)
    rec = await o2.record(pr)
    assert rec is not None and rec.state == "fulfilled" and rec.outbox == ()
    assert {c.type for c in rec.conditions if c.status == "True"} >= {
        "HostsPrepared",
        "ResourcesApplied",
        "ClusterProvisioned",
    }
    assert all(st.resource_id for st in rec.hosts.values())
    # Each command went into its stream once, and names its cause and the FPR.
    assert await _stream_count(world.bus, HOSTPREP.name, f"hostprep.jobs.{pr}") == 1
    assert await _stream_count(world.bus, CAPI.name, f"capi.jobs.{pr}") == 1
    job = world.hostprep_jobs[0]
    assert job.correlation_id == "fpr-1" and job.causation_id is not None and job.source == "o2ims"


async def test_a_host_failing_prep_fails_the_pr_naming_host_and_step(world: World, start_o2ims: Start) -> None:
    await start_o2ims()
    pr, spec = pr_id(), make_spec()
    world.fail_host[spec.workers[1].host_id] = "containerd"
    await world.request("create", pr, spec)
    failed = await world.wait_state(pr, "failed")
    assert failed.stage == "hostprep" and failed.reason == "StepFailed"
    assert spec.workers[1].host_id in (failed.message or "") and "containerd" in (failed.message or "")
    assert world.capi_jobs == []


async def test_control_plane_never_initializing_fails_at_the_provisioning_deadline(
    world: World, start_o2ims: Start
) -> None:
    o2 = await start_o2ims(provisioning_deadline=1.0)
    pr = pr_id()
    world.never_ready.add(pr)
    await world.request("create", pr, make_spec())
    failed = await world.wait_state(pr, "failed")
    assert (failed.stage, failed.reason) == ("provisioning", "ProvisioningTimedOut")
    assert "control plane initialized" in (failed.message or "")
    await quiet(world.bus)
    rec = await o2.record(pr)
    assert rec is not None and rec.deadline is None


async def test_hostprep_deadline_covers_a_job_nobody_answers(world: World, start_o2ims: Start) -> None:
    await start_o2ims(hostprep_deadline=1.0)
    pr = pr_id()
    world.hold_hostprep.add(pr)
    await world.request("create", pr, make_spec())
    failed = await world.wait_state(pr, "failed")
    assert failed.reason == "HostprepTimedOut" and "edge1-cp0" in (failed.message or "")


async def test_delete_after_fulfilled_waits_for_the_cluster_and_releases_leases(
    world: World, start_o2ims: Start
) -> None:
    o2 = await start_o2ims()
    pr, spec = pr_id(), make_spec()
    leases = HostLeases(await world.bus.kv(BUCKET_HOSTS))
    await leases.acquire(pr, [h.host_id for h in spec.all_hosts])
    await world.request("create", pr, spec)
    await world.wait_state(pr, "fulfilled")
    await world.request("delete", pr, spec)
    await world.wait_state(pr, "deleted")
    # The hosts are reset (hostprep teardown) before their leases are released.
    assert world.states(pr)[-3:] == [("deleting", "capi-delete"), ("deleting", "teardown"), ("deleted", None)]
    assert [e.payload.action for e in world.capi_jobs] == ["apply", "delete"]  # type: ignore[union-attr]
    await quiet(world.bus)
    assert await leases.held_by(pr) == []
    rec = await o2.record(pr)
    assert rec is not None and rec.state == "deleted" and rec.hosts == {} and rec.outbox == ()


async def test_delete_mid_hostprep_tombstones_and_releases_without_touching_capi(
    world: World, start_o2ims: Start
) -> None:
    await start_o2ims()
    pr, spec = pr_id(), make_spec()
    world.hold_hostprep.add(pr)
    leases = HostLeases(await world.bus.kv(BUCKET_HOSTS))
    await leases.acquire(pr, [h.host_id for h in spec.all_hosts])
    await world.request("create", pr, spec)
    await world.wait(lambda: world.hostprep_jobs)
    await world.request("delete", pr, spec)
    await world.wait_state(pr, "deleted")
    assert await leases.held_by(pr) == []
    # The preparation finishing afterwards starts nothing.
    job = world.hostprep_jobs[0]
    assert isinstance(job.payload, HostprepJob)
    hosts = job.payload.hosts
    await world.publish(hostprep_event(pr), HostprepDone(pr_id=pr, action="prepare", hosts=hosts), cause=job)
    await settled(world.bus, HOSTPREP.name, O2IMS_EVENTS_CONSUMER.durable)
    assert world.capi_jobs == [] and world.states(pr)[-1] == ("deleted", None)


async def test_delete_of_an_unknown_pr_is_a_no_op_success(world: World, start_o2ims: Start) -> None:
    o2 = await start_o2ims()
    pr = pr_id()
    await world.request("delete", pr, None)
    deleted = await world.wait_state(pr, "deleted")
    assert deleted.reason == "NotFound"
    assert world.failures == [] and world.capi_jobs == [] and world.hostprep_jobs == []
    await quiet(world.bus)
    rec = await o2.record(pr)
    assert rec is not None and rec.state == "deleted"


async def test_scale_two_to_three_workers(world: World, start_o2ims: Start) -> None:
    await start_o2ims()
    pr, spec = pr_id(), make_spec(workers=2)
    await world.request("create", pr, spec)
    await world.wait_state(pr, "fulfilled")
    bigger = make_spec(workers=3)
    await world.request("update", pr, bigger)
    await world.wait(lambda: len([s for s in world.statuses if s.pr_id == pr and s.state == "fulfilled"]) == 2)
    assert world.states(pr)[-3:] == [("progressing", "hostprep"), ("progressing", "scaling"), ("fulfilled", None)]
    second = world.hostprep_jobs[-1].payload
    assert isinstance(second, HostprepJob) and list(second.hosts) == ["edge1-w3"]
    assert [e.payload.action for e in world.capi_jobs] == ["apply", "scale"]  # type: ignore[union-attr]


async def test_an_immutable_change_is_refused_with_a_failure_event(world: World, start_o2ims: Start) -> None:
    await start_o2ims()
    pr, spec = pr_id(), make_spec()
    await world.request("create", pr, spec)
    await world.wait_state(pr, "fulfilled")
    other_cp = make_spec(offset=50).control_plane
    await world.request("update", pr, spec.model_copy(update={"control_plane": other_cp}))
    failure = await world.wait(lambda: world.failures)
    assert isinstance(failure[0].payload, MessageFailed)
    assert failure[0].payload.reason == "ImmutableField" and failure[0].payload.path == "spec.control_plane"


async def test_a_job_the_worker_rejects_fails_the_pr(world: World, start_o2ims: Start) -> None:
    await start_o2ims()
    pr = pr_id()
    world.hold_hostprep.add(pr)
    await world.request("create", pr, make_spec())
    await world.wait(lambda: world.hostprep_jobs)
    job = world.hostprep_jobs[0]
    rejected = MessageFailed(
        consumer="hostprep-jobs", subject=f"hostprep.jobs.{pr}", reason="InvalidMessage", error="bad", deliveries=1
    )
    await world.publish(hostprep_event(pr), rejected, cause=job)
    failed = await world.wait_state(pr, "failed")
    assert failed.reason == "InvalidMessage"


async def test_cluster_ready_transition_fulfils_once_the_counts_agree(world: World, start_o2ims: Start) -> None:
    await start_o2ims()
    pr, spec = pr_id(), make_spec()
    world.never_ready.add(pr)
    await world.request("create", pr, spec)
    await world.wait(lambda: ("progressing", "provisioning") in world.states(pr))
    # The watcher's summary (0/1 control plane ready) is published with the apply: let o2ims take it first.
    await settled(world.bus, K8S.name, O2IMS_CLUSTER_STATUS_CONSUMER.durable)
    where = k8s_status("cluster", spec.namespace, spec.name)
    # The last summary said 0/1 control plane ready: the edge event alone cannot contradict the counts.
    await world.publish(
        where, ClusterTransition(type="cluster.ready", namespace=spec.namespace, name=spec.name, pr_id=pr)
    )
    await settled(world.bus, K8S.name, O2IMS_CLUSTER_STATUS_CONSUMER.durable)
    assert world.states(pr)[-1] == ("progressing", "provisioning")
    summary = ClusterSummary(
        namespace=spec.namespace,
        name=spec.name,
        pr_id=pr,
        ready=False,
        control_plane_initialized=True,
        control_plane_ready=1,
        control_plane_desired=1,
        workers_ready=2,
        workers_desired=2,
        waiting_for="cni",
    )
    await world.publish(where, summary)
    await settled(world.bus, K8S.name, O2IMS_CLUSTER_STATUS_CONSUMER.durable)
    await world.publish(
        where, ClusterTransition(type="cluster.ready", namespace=spec.namespace, name=spec.name, pr_id=pr)
    )
    await world.wait_state(pr, "fulfilled")


class FlakyBus(Bus):
    """Fails the first ``failures`` publishes, as a process dying right after its KV write would."""

    failures = 1

    async def publish(self, subject: str, env: Envelope, *, timeout: float = 5.0) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("simulated crash after the write")
        return await super().publish(subject, env, timeout=timeout)

    async def publish_batch(self, items: list[tuple[str, Envelope]], *, timeout: float = 30.0) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("simulated crash after the write")
        await super().publish_batch(items, timeout=timeout)


async def test_commands_decided_but_not_published_go_out_on_redelivery(world: World, nats_server: EmbeddedNats) -> None:
    o2 = InProcessO2ims(nats_server.url, Policy(), bus_class=FlakyBus)
    await o2.start()
    try:
        pr, spec = pr_id(), make_spec()
        await world.request("create", pr, spec)
        await world.wait_state(pr, "fulfilled")
    finally:
        await o2.stop()
    # The create's decision was written before its publishes failed; the redelivery found the
    # record already pending and published the outbox: each command exactly once.
    assert world.states(pr)[0] == ("pending", None)
    assert len([s for s in world.statuses if s.pr_id == pr and s.state == "pending"]) == 1
    assert await _stream_count(world.bus, HOSTPREP.name, f"hostprep.jobs.{pr}") == 1


async def test_flushing_an_outbox_twice_publishes_nothing_new(world: World, start_o2ims: Start) -> None:
    o2 = await start_o2ims()
    pr = pr_id()
    world.hold_hostprep.add(pr)
    assert o2.engine is not None
    await world.request("create", pr, make_spec())
    await world.wait(lambda: world.hostprep_jobs)
    await settled(world.bus, O2IMS.name, O2IMS_REQUESTS_CONSUMER.durable)
    rec = await o2.record(pr)
    assert rec is not None and rec.outbox == ()
    # Rebuild what the create put in the outbox (as if the clearing write had been lost) and flush again.
    replay = rec.model_copy(update={"outbox": tuple(_replayed(rec))})
    await o2.engine.flush(replay)
    assert await _stream_count(world.bus, HOSTPREP.name, f"hostprep.jobs.{pr}") == 1


def _replayed(rec: PrRecord) -> list[Command]:
    job = rec.hostprep_job
    assert job is not None and rec.spec is not None
    payload = HostprepJob(
        pr_id=rec.pr_id,
        action="prepare",
        cluster=rec.spec.name,
        k8s_version=rec.spec.k8s_version,
        hosts=tuple(h.host_id for h in rec.spec.all_hosts),
    )
    return [Command(id=job.id, at=rec.created_at, subject=f"hostprep.jobs.{rec.pr_id}", payload=payload)]


async def test_sweep_publishes_outboxes_left_behind_and_purge_drops_old_tombstones(
    world: World, start_o2ims: Start
) -> None:
    o2 = await start_o2ims()
    assert o2.engine is not None
    pr = pr_id()
    await world.request("delete", pr, None)
    await world.wait_state(pr, "deleted")
    await settled(world.bus, O2IMS.name, O2IMS_REQUESTS_CONSUMER.durable)
    rec = await o2.record(pr)
    assert rec is not None
    stranded = rec.model_copy(update={"outbox": tuple(_replayed_status(rec))})
    got = await o2.engine.store.get(pr)
    assert got is not None
    await o2.engine.store.update(pr, stranded, got[1])
    assert await o2.engine.sweep() == 1
    cleared = await o2.record(pr)
    assert cleared is not None and cleared.outbox == ()
    assert await o2.engine.purge_tombstones(retention=3600) == 0
    assert await o2.engine.purge_tombstones(retention=0) == 1
    assert await o2.record(pr) is None


def _replayed_status(rec: PrRecord) -> list[Command]:
    status = PrStatus(pr_id=rec.pr_id, fpr=rec.fpr, cluster="", state="deleted", at=rec.updated_at, seq=rec.seq)
    return [Command(id=str(uuid.uuid4()), at=rec.updated_at, subject=o2ims_status(rec.pr_id), payload=status)]


async def quiet(bus: Bus) -> None:
    """Wait until o2ims has handled (and acknowledged) everything sent to it so far."""
    for spec in (
        O2IMS_REQUESTS_CONSUMER,
        O2IMS_EVENTS_CONSUMER,
        O2IMS_CAPI_EVENTS_CONSUMER,
        O2IMS_CLUSTER_STATUS_CONSUMER,
    ):
        await settled(bus, spec.stream.name, spec.durable)


async def settled(bus: Bus, stream: str, durable: str) -> None:
    """Wait until a consumer has nothing pending and nothing unacknowledged."""
    for _ in range(400):
        info = await bus.js.consumer_info(stream, durable)
        if info.num_ack_pending == 0 and info.num_pending == 0:
            return
        await asyncio.sleep(0.05)  # polling the broker's own counters, bounded
    raise AssertionError(f"consumer {durable} never settled")


async def test_a_request_naming_another_pr_than_its_subject_is_refused(world: World, start_o2ims: Start) -> None:
    o2 = await start_o2ims()
    pr, other = pr_id(), pr_id()
    req = PrRequest(pr_id=other, fpr="fpr-1", operation="create", spec=make_spec())
    await world.bus.emit(o2ims_request(pr), req, correlation_id="fpr-1")
    failure = await world.wait(lambda: world.failures)
    assert isinstance(failure[0].payload, MessageFailed) and failure[0].payload.reason == "SubjectMismatch"
    assert await o2.record(pr) is None and await o2.record(other) is None


async def test_a_post_dated_request_does_not_outrank_the_requests_after_it(world: World, start_o2ims: Start) -> None:
    """#15 item 2: senders set ``occurred_at``; o2ims ordered requests by it, so a create dated a year ahead made
    every later update "overtaken". o2ims now uses when the bus received each message."""
    o2 = await start_o2ims()
    pr, spec = pr_id(), make_spec(workers=2)
    before = utcnow()
    post_dated = Envelope(
        type="o2ims.request",
        occurred_at=before + timedelta(days=365),
        source="attacker",
        correlation_id="fpr-1",
        payload=PrRequest(pr_id=pr, fpr="fpr-1", operation="create", spec=spec),
    )
    await world.bus.publish(o2ims_request(pr), post_dated)
    await world.wait_state(pr, "fulfilled")
    rec = await o2.record(pr)
    assert rec is not None and before - timedelta(minutes=5) <= rec.request_at <= utcnow()
    await world.request("update", pr, make_spec(workers=3))
    await world.wait(lambda: len([s for s in world.statuses if s.pr_id == pr and s.state == "fulfilled"]) == 2)
    rec = await o2.record(pr)
    assert rec is not None and rec.spec is not None and len(rec.spec.workers) == 3
