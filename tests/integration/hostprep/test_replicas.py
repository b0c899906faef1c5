"""Two hostprep replicas handed the same job at once: the host claims let one of them work on each host while
the other waits, so every host is changed once, its agent started once and never restarted, and both
replicas report the job done.

The first test hands the job to both through two durables (deterministic); the second goes the way it
happened under chaos: a replica dies holding the job, the job is redelivered to another, NATS restarts
before that delivery's first heartbeat, and the server hands the job out a third time, to a third replica,
while the second still runs it."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import nats

from sandbox.capi import CapiSimulators
from sandbox.hosts import Fault, SandboxHostPool
from services.hostprep.app import build_deps
from services.hostprep.claims import HostClaims
from services.hostprep.deps import Deps
from services.hostprep.handlers import CLAIM_STEP, JobHandler
from shared.bus import Bus, Consumer, MessageContext
from shared.dispatch import dispatch
from shared.kube import KubeClient
from shared.messages import Envelope, decode
from shared.natsserver import EmbeddedNats
from shared.payloads import HostprepDone, HostprepJob
from shared.subjects import ALL_HOSTPREP_EVENTS, BUCKET_HOSTPREP_CLAIMS, HOSTPREP, HOSTPREP_JOBS_CONSUMER, hostprep_job
from tests.integration.hostprep.conftest import HarnessFactory
from tests.integration.hostprep.harness import Harness, settings_for, write_inventory

#: A replica's first apt-get update on each host lasts this long: the other replica gets the job meanwhile.
HOLD = 8.0


def assert_changed_once(pool: SandboxHostPool) -> None:
    for host in pool.hosts:
        changed = Counter(r.command for r in host.state.log if r.changed and r.source in ("ssh", "exec"))
        twice = [c[:120] for c, n in changed.items() if n > 1 and not c.startswith("systemctl restart")]
        assert twice == [], f"{host.host_id} changed twice by {twice}"
        agent = host.state.services["byoh-hostagent"]
        assert (agent.active, agent.start_count, agent.restart_count) == ("active", 1, 0), agent


async def test_the_same_job_on_two_replicas_at_once_changes_each_host_once(hostprep: HarnessFactory, bus: Bus) -> None:
    first, pool = await hostprep(3)
    for host in pool.hosts:
        pool.set_fault(host.host_id, Fault.slow_command(r"apt-get .*update", delay=HOLD, times=1))
    job = first.job(pool)
    await first.submit(job)

    def at_base_packages() -> set[str]:
        return {p.host_id for p in first.progress(job.pr_id) if (p.step, p.status) == ("base-packages", "running")}

    async with asyncio.timeout(60):
        while at_base_packages() != {h.host_id for h in pool.hosts}:
            first._arrived.clear()
            await first._arrived.wait()

    # A second replica (its own process state, its own durable: it is handed the same message) starts now,
    # while the first is in the middle of every host.
    deps, client = await build_deps(first.deps.settings)
    claims = HostClaims(await bus.kv(BUCKET_HOSTPREP_CLAIMS))
    spec = dataclasses.replace(HOSTPREP_JOBS_CONSUMER, durable="hostprep-jobs-second-replica")
    second = bus.consumer(spec, dispatch(JobHandler(deps, claims).on_job))
    await second.start()
    try:
        async with asyncio.timeout(100):
            while len([r for r in first.results(job.pr_id) if isinstance(r, HostprepDone)]) < 2:
                first._arrived.clear()
                await first._arrived.wait()
    finally:
        await second.stop(5.0)
        if deps.byohosts is not None:
            await deps.byohosts.close()
        if deps.bootstrap is not None:
            await deps.bootstrap.close()
        if client is not None:
            await client.close()

    assert_changed_once(pool)
    waited = {p.host_id for p in first.progress(job.pr_id) if (p.step, p.status) == (CLAIM_STEP, "checking")}
    assert waited == {h.host_id for h in pool.hosts}, "the second replica did not wait for the first"


async def test_a_redelivery_handed_out_again_by_a_nats_restart_does_not_prepare_a_host_twice(
    bus: Bus,
    nats_server: EmbeddedNats,
    sandbox_hosts: Callable[..., Awaitable[SandboxHostPool]],
    kubeconfig: Path,
    capi_sim: CapiSimulators,
    tmp_path: Path,
) -> None:
    pool = await sandbox_hosts(count=3)
    for host in pool.hosts:
        pool.set_fault(host.host_id, Fault.slow_command(r"apt-get .*update", delay=HOLD, times=1))
    settings = settings_for(pool, kubeconfig, write_inventory(pool, tmp_path / "input.json"), jobs_ack_wait=6.0)
    spec = dataclasses.replace(HOSTPREP_JOBS_CONSUMER, ack_wait=settings.jobs_ack_wait)
    events: list[Envelope] = []
    arrived = asyncio.Event()

    async def on_event(msg: Any) -> None:
        events.append(decode(msg.data))
        arrived.set()

    async def until(predicate: Callable[[], bool], timeout: float = 100.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                arrived.clear()
                await arrived.wait()

    sub = await bus.nc.subscribe(ALL_HOSTPREP_EVENTS, cb=on_event)
    job = Harness.job(pool)

    async def unbound(job: HostprepJob, ctx: MessageContext) -> None:
        raise AssertionError("only the durable's configuration is used here")

    await bus.js.add_consumer(HOSTPREP.name, Consumer(bus, spec, dispatch(unbound)).config())
    await bus.emit(hostprep_job(job.pr_id), job)

    # A replica takes the job and dies with it: no ack, no nak.
    doomed = await nats.connect(nats_server.url)
    taken = await (await doomed.jetstream().pull_subscribe_bind(durable=spec.durable, stream=HOSTPREP.name)).fetch(1)
    assert len(taken) == 1
    await doomed.close()

    deliveries: dict[str, list[int]] = {"second": [], "third": []}
    handed = asyncio.Event()
    started: list[tuple[Consumer, Deps, KubeClient | None]] = []

    async def replica(name: str, concurrency: int) -> Consumer:
        deps, client = await build_deps(settings)
        handler = JobHandler(deps, HostClaims(await bus.kv(BUCKET_HOSTPREP_CLAIMS)))

        async def on_job(job: HostprepJob, ctx: MessageContext) -> None:
            deliveries[name].append(ctx.deliveries)
            handed.set()
            await handler.on_job(job, ctx)

        consumer = bus.consumer(dataclasses.replace(spec, concurrency=concurrency), dispatch(on_job))
        started.append((consumer, deps, client))
        return consumer

    def done() -> int:
        return len([e for e in events if isinstance(e.payload, HostprepDone) and e.payload.pr_id == job.pr_id])

    try:
        # The second replica takes one job at a time: the job's next delivery can only go to the third.
        second, third = await replica("second", concurrency=1), await replica("third", concurrency=16)
        await second.start()
        async with asyncio.timeout(60):
            await handed.wait()  # redelivered after ack_wait, to the second replica
        await nats_server.restart()  # before that delivery's first heartbeat
        async with asyncio.timeout(30):
            while not bus.nc.is_connected:
                await asyncio.sleep(0.05)  # the client reconnects on its own; bounded
        await third.start()
        await until(lambda: done() >= 2 or (done() >= 1 and not deliveries["third"]))
        assert deliveries["third"], (
            "NATS did not hand the job out again after its restart: this test no longer reproduces the interleaving"
        )
    finally:
        await sub.unsubscribe()
        for consumer, deps, client in started:
            await consumer.stop(5.0)
            if deps.byohosts is not None:
                await deps.byohosts.close()
            if deps.bootstrap is not None:
                await deps.bootstrap.close()
            if client is not None:
                await client.close()
    assert deliveries["second"] == [2]
    assert_changed_once(pool)
