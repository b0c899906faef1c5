"""Two hostprep replicas handed the same job at once (what a redelivery after a NATS restart does): the host
claims let one of them work on each host while the other waits, so every host is changed once, its agent
started once and never restarted, and both replicas report the job done."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter

from sandbox.hosts import Fault
from services.hostprep.app import build_deps
from services.hostprep.claims import HostClaims
from services.hostprep.handlers import CLAIM_STEP, JobHandler
from shared.bus import Bus
from shared.dispatch import dispatch
from shared.payloads import HostprepDone
from shared.subjects import BUCKET_HOSTPREP_CLAIMS, HOSTPREP_JOBS_CONSUMER
from tests.integration.hostprep.conftest import HarnessFactory

#: A replica's first apt-get update on each host lasts this long: the other replica gets the job meanwhile.
HOLD = 8.0


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
        if client is not None:
            await client.close()

    for host in pool.hosts:
        changed = Counter(r.command for r in host.state.log if r.changed and r.source in ("ssh", "exec"))
        twice = [c[:120] for c, n in changed.items() if n > 1 and not c.startswith("systemctl restart")]
        assert twice == [], f"{host.host_id} changed twice by {twice}"
        agent = host.state.services["byoh-hostagent"]
        assert (agent.active, agent.start_count, agent.restart_count) == ("active", 1, 0), agent
    waited = {p.host_id for p in first.progress(job.pr_id) if (p.step, p.status) == (CLAIM_STEP, "checking")}
    assert waited == {h.host_id for h in pool.hosts}, "the second replica did not wait for the first"
