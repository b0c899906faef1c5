"""o2ims as a process, killed with SIGKILL at every stage and restarted: the PR still reaches the
same final state, and no stage's command goes out twice with a different effect (each job is in
its stream exactly once: a re-run re-publishes the same message id, which the stream drops)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from shared.bus import Bus
from shared.messages import Envelope
from shared.natsserver import EmbeddedNats
from shared.payloads import CapiApplied, ClusterSummary, HostprepDone, HostprepJob, HostProgress, Payload
from shared.subjects import CAPI, HOSTPREP, capi_event, hostprep_event, k8s_status
from tests.integration.o2ims.world import World, make_spec
from tests.integration.services.procs import ServiceProcess


@pytest.fixture
async def world(bus: Bus) -> World:
    return await World(bus).start()


@pytest.fixture
async def o2ims(nats_server: EmbeddedNats) -> AsyncIterator[Callable[[], Awaitable[ServiceProcess]]]:
    procs: list[ServiceProcess] = []

    async def restart() -> ServiceProcess:
        for p in procs:
            await p.kill()  # SIGKILL: no drain, no goodbye
        proc = await ServiceProcess("services.o2ims", {"O2_NATS_URL": nats_server.url}).start()
        procs.append(proc)
        await proc.wait_event("service_ready")
        return proc

    yield restart
    for p in procs:
        await p.kill()


async def _count(bus: Bus, stream: str, subject: str) -> int:
    info = await bus.js.stream_info(stream, subjects_filter=subject)
    return int((info.state.subjects or {}).get(subject, 0))


@pytest.mark.parametrize("wait_for_each_stage", [True, False], ids=["killed-in-stage", "killed-mid-event"])
async def test_kill_9_at_each_stage_reaches_the_same_end(
    world: World, o2ims: Callable[[], Awaitable[ServiceProcess]], wait_for_each_stage: bool
) -> None:
    pr, spec = str(uuid.uuid4()), make_spec()
    world.manual.add(pr)
    await o2ims()
    await world.request("create", pr, spec)
    await world.wait_state(pr, "pending")
    job = (await world.wait(lambda: world.hostprep_jobs))[0]

    async def step(subject: str, payload: Payload, cause: Envelope | None, state: tuple[str, str | None]) -> None:
        await world.publish(subject, payload, cause=cause)
        if wait_for_each_stage:
            await world.wait(lambda: state in world.states(pr))
        await o2ims()  # kill -9 and start again, whether or not the event was handled
        await world.wait(lambda: state in world.states(pr))

    progress = HostProgress(pr_id=pr, host_id=spec.control_plane[0].host_id, step="preflight", status="done")
    await step(hostprep_event(pr), progress, job, ("progressing", "hostprep"))
    assert isinstance(job.payload, HostprepJob)
    done = HostprepDone(pr_id=pr, action="prepare", hosts=job.payload.hosts)
    await step(hostprep_event(pr), done, job, ("progressing", "apply"))
    capi_job = (await world.wait(lambda: world.capi_jobs))[0]
    applied = CapiApplied(pr_id=pr, action="apply", objects=())
    await step(capi_event(pr), applied, capi_job, ("progressing", "provisioning"))
    ready = ClusterSummary(
        namespace=spec.namespace,
        name=spec.name,
        pr_id=pr,
        ready=True,
        control_plane_initialized=True,
        control_plane_ready=1,
        control_plane_desired=1,
        workers_ready=2,
        workers_desired=2,
    )
    await step(k8s_status("cluster", spec.namespace, spec.name), ready, None, ("fulfilled", None))

    assert world.states(pr) == [
        ("pending", None),
        ("progressing", "hostprep"),
        ("progressing", "apply"),
        ("progressing", "provisioning"),
        ("fulfilled", None),
    ]
    assert await _count(world.bus, HOSTPREP.name, f"hostprep.jobs.{pr}") == 1
    assert await _count(world.bus, CAPI.name, f"capi.jobs.{pr}") == 1
    seqs = [s.seq for s in world.statuses if s.pr_id == pr]
    assert sorted(set(seqs)) == [1, 2, 3, 4, 5]
