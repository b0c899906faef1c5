"""hostprep killed after a host's bootstrap kubeconfig was uploaded and before its agent started: the re-run
(after the dead replica's host claims expired) keeps the still-valid kubeconfig, so it neither creates
another BootstrapKubeconfig nor uploads another file, and starts the agent once, never restarting it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

from sandbox.capi import CapiSimulators
from sandbox.hosts import Fault, SandboxHostPool
from services.hostprep.bootstrap import INFRA_VERSION, KIND
from shared.bus import Bus
from shared.kube import KubeClient
from shared.messages import Envelope
from shared.payloads import HostprepDone
from shared.subjects import hostprep_job
from tests.integration.hostprep.harness import Harness, write_inventory
from tests.integration.hostprep.test_process import Events, events, hostprep_env, procs, progress, result_of
from tests.integration.services.procs import ServiceProcess

__all__ = ["events", "procs"]  # fixtures of the process tests, used here too


async def uids(client: KubeClient) -> dict[str, str]:
    items, _ = await client.list(INFRA_VERSION, KIND, "default")
    return {item["metadata"]["name"]: item["metadata"]["uid"] for item in items}


async def test_a_rerun_after_a_kill_between_kubeconfig_and_agent_keeps_the_kubeconfig_and_starts_the_agent_once(
    bus: Bus,
    events: Events,
    nats_url: str,
    sandbox_hosts: Callable[..., Awaitable[SandboxHostPool]],
    kubeconfig: Path,
    capi_sim: CapiSimulators,
    capi_client: KubeClient,
    procs: list[ServiceProcess],
    tmp_path: Path,
) -> None:
    pool = await sandbox_hosts(count=3)
    env = hostprep_env(nats_url, pool, kubeconfig, write_inventory(pool, tmp_path / "input.json"))
    # Every host stops where the verified agent binary is moved into place: after its kubeconfig, before its agent.
    for host in pool.hosts:
        pool.set_fault(host.host_id, Fault.slow_command(r"sha256sum -c --quiet && install ", delay=600))
    first = await ServiceProcess("services.hostprep", env).start()
    procs.append(first)
    await first.wait_event("service_ready")
    job = Harness.job(pool)
    await bus.emit(hostprep_job(job.pr_id), job)

    def all_at_agent_binary(envelopes: list[Envelope]) -> bool:
        at = {p.host_id for p in progress(envelopes, job.pr_id) if (p.step, p.status) == ("agent-binary", "running")}
        return at == {h.host_id for h in pool.hosts}

    await events.wait(all_at_agent_binary)
    first.proc.kill()  # type: ignore[union-attr]
    await first.wait()
    issued = await uids(capi_client)
    assert len(issued) == len(pool.hosts), issued
    for host in pool.hosts:
        pool.set_fault(host.host_id, None)
        assert host.state.services.get("byoh-hostagent") is None, "the agent started before the kill"

    second = await ServiceProcess("services.hostprep", env).start()
    procs.append(second)
    result = await events.wait(result_of(job.pr_id), timeout=90)
    assert isinstance(result, HostprepDone), result
    assert await uids(capi_client) == issued, "a BootstrapKubeconfig was replaced"
    for host in pool.hosts:
        changed = Counter(r.command for r in host.state.log if r.changed and r.source in ("ssh", "exec"))
        assert [c[:120] for c, n in changed.items() if n > 1] == [], host.host_id
        agent = host.state.services["byoh-hostagent"]
        assert (agent.active, agent.start_count, agent.restart_count) == ("active", 1, 0), agent
    second.signal(15)
    assert await second.wait() == 0
