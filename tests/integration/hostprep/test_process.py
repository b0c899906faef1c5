"""hostprep as a process: killed mid-job and restarted it finishes the job without redoing finished steps;
and no secret (password, private key, bootstrap token, kubeconfig) reaches its logs or the bus."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.capi import CapiSimulators
from sandbox.hosts import Fault, SandboxHostPool
from services.hostprep.bootstrap import INFRA_VERSION
from shared.bus import Bus
from shared.kube import KubeClient
from shared.messages import Envelope, decode
from shared.payloads import HostprepDone, HostprepFailed, HostProgress
from shared.subjects import hostprep_job
from tests.integration.hostprep.harness import Harness, byohosts_by_host_id, write_inventory
from tests.integration.services.procs import ServiceProcess

PASSWORD = "s3cret-Pa55word!"
WRONG_PASSWORD = "n0t-the-Pa55word?"


class Events:
    """Every message on the bus, as raw bytes and decoded envelopes."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self.envelopes: list[Envelope] = []
        self.arrived = asyncio.Event()

    async def on(self, msg: Any) -> None:
        self.raw.append(msg.data)
        try:
            self.envelopes.append(decode(msg.data))
        except Exception:
            return
        self.arrived.set()

    async def wait(self, predicate: Callable[[list[Envelope]], Any], timeout: float = 60.0) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                found = predicate(self.envelopes)
                if found:
                    return found
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def events(bus: Bus) -> AsyncIterator[Events]:
    ev = Events()
    sub = await bus.nc.subscribe(">", cb=ev.on)
    yield ev
    await sub.unsubscribe()


@pytest.fixture
async def procs() -> AsyncIterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for proc in started:
        await proc.kill()


def hostprep_env(
    nats_url: str, pool: SandboxHostPool, kubeconfig: Path, inventory: Path, **extra: str
) -> dict[str, str]:
    env = {
        "O2_NATS_URL": nats_url,
        "O2_LOG_LEVEL": "debug",
        "O2_HOSTPREP_INVENTORY_FILE": str(inventory),
        "O2_HOSTPREP_SSH_KEY_DIR": str(pool.client_key_path.parent),
        "O2_HOSTPREP_KNOWN_HOSTS_FILE": str(pool.known_hosts_path),
        "O2_HOSTPREP_KUBECONFIG": str(kubeconfig),
        "O2_HOSTPREP_AGENT_BINARY_FILE": str(pool.agent_binary_path),
        "O2_HOSTPREP_JOBS_ACK_WAIT": "3",
        "O2_HOSTPREP_CONNECT_TIMEOUT": "5",
        "O2_HOSTPREP_REGISTRATION_TIMEOUT": "30",
        "O2_HOSTPREP_RETRY_INITIAL_DELAY": "0.2",
        "O2_HOSTPREP_MAX_STEP_ATTEMPTS": "2",
        # These tests tell finished steps from re-run ones by every transition: none is folded.
        "O2_HOSTPREP_PROGRESS_SETTLE": "0",
    }
    env.update(extra)
    return env


def progress(envelopes: list[Envelope], pr_id: str) -> list[HostProgress]:
    return [e.payload for e in envelopes if isinstance(e.payload, HostProgress) and e.payload.pr_id == pr_id]


def result_of(pr_id: str) -> Callable[[list[Envelope]], Any]:
    def find(envelopes: list[Envelope]) -> Any:
        for e in envelopes:
            if isinstance(e.payload, HostprepDone | HostprepFailed) and e.payload.pr_id == pr_id:
                return e.payload
        return None

    return find


async def test_killed_mid_job_and_restarted_the_job_completes_without_repeating_finished_steps(
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
    pool = await sandbox_hosts(count=4)
    inventory = write_inventory(pool, tmp_path / "input.json")
    env = hostprep_env(nats_url, pool, kubeconfig, inventory)
    # Every host stops at the Kubernetes packages, so the kill lands mid-recipe on all of them.
    for host in pool.hosts:
        pool.set_fault(host.host_id, Fault.slow_command(r"apt-get .*install .*kubelet=", delay=600))
    first = await ServiceProcess("services.hostprep", env).start()
    procs.append(first)
    await first.wait_event("service_ready")
    job = Harness.job(pool)
    await bus.emit(hostprep_job(job.pr_id), job)

    def all_stuck(envelopes: list[Envelope]) -> bool:
        running = {
            p.host_id
            for p in progress(envelopes, job.pr_id)
            if p.step == "kubernetes-packages" and p.status == "running"
        }
        return running == {h.host_id for h in pool.hosts}

    await events.wait(all_stuck)
    first.proc.kill()  # type: ignore[union-attr]
    await first.wait()
    finished = {(p.host_id, p.step) for p in progress(events.envelopes, job.pr_id) if p.status in ("done", "skipped")}
    cut = len(events.envelopes)
    marks = {h.host_id: h.state.mark() for h in pool.hosts}
    done_before = {h.host_id: {r.command for r in h.state.log if r.changed} for h in pool.hosts}
    assert all(done_before.values()), "the first process changed every host before it was killed"
    for host in pool.hosts:
        pool.set_fault(host.host_id, None)

    second = await ServiceProcess("services.hostprep", env).start()
    procs.append(second)
    result = await events.wait(result_of(job.pr_id), timeout=90)
    assert isinstance(result, HostprepDone), result
    started = [r for r in second.lines if r.get("event") == "hostprep_job_started"]
    assert started and started[0]["deliveries"] >= 2, "the second process got the same job message again"
    assert sorted(await byohosts_by_host_id(capi_client)) == sorted(h.host_id for h in pool.hosts)
    for host in pool.hosts:
        repeated = {r.command for r in host.state.changed_since(marks[host.host_id])} & done_before[host.host_id]
        assert repeated == set(), f"{host.host_id} repeated finished actions: {repeated}"
        after = [p for p in progress(events.envelopes[cut:], job.pr_id) if p.host_id == host.host_id]
        rerun = {p.step for p in after if p.status == "running"}
        assert not rerun & {step for h, step in finished if h == host.host_id}, rerun
        assert ("kubernetes-packages", "done") in {(p.step, p.status) for p in after}
    second.signal(15)
    assert await second.wait() == 0


async def test_no_secret_reaches_logs_or_the_bus(
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
    pool = await sandbox_hosts(count=3, password=PASSWORD)
    # host-001 logs in with its password only, host-002 with its key, host-003 with a wrong password.
    inventory = write_inventory(
        pool,
        tmp_path / "input.json",
        **{
            "host-001": {"ssh_key_file": None, "host_pwd": PASSWORD},
            "host-003": {"ssh_key_file": None, "host_pwd": WRONG_PASSWORD},
        },
    )
    proc = await ServiceProcess("services.hostprep", hostprep_env(nats_url, pool, kubeconfig, inventory)).start()
    procs.append(proc)
    await proc.wait_event("service_ready")
    job = Harness.job(pool)
    await bus.emit(hostprep_job(job.pr_id), job)
    result = await events.wait(result_of(job.pr_id), timeout=90)
    assert isinstance(result, HostprepFailed), result
    assert result.host_id == "host-003" and result.reason == "AuthFailed"
    assert sorted(result.ready_hosts) == ["host-001", "host-002"]
    await proc.wait_event("hostprep_job_finished")
    proc.signal(15)
    assert await proc.wait() == 0

    secrets = {PASSWORD, WRONG_PASSWORD}
    key_text = pool.client_key_path.read_text()
    secrets |= {line for line in key_text.splitlines() if len(line) > 20 and "PRIVATE KEY" not in line}
    bkcs, _ = await capi_client.list(INFRA_VERSION, "BootstrapKubeconfig", "default")
    assert len(bkcs) == 2
    for bkc in bkcs:
        data = bkc["status"]["bootstrapKubeconfigData"]
        config = yaml.safe_load(data)
        token = config["users"][0]["user"]["token"]
        secrets |= {token, token.split(".")[1], base64.b64encode(data.encode()).decode()[:60]}
    logs = "\n".join(proc.raw)
    assert "host_step_acting" in logs and "host_finished" in logs, logs
    messages = b"\n".join(events.raw).decode("utf-8", "replace")
    assert "hostprep.host.progress" in messages
    for secret in secrets:
        assert secret not in logs, "a secret appeared in hostprep's logs"
        assert secret not in messages, "a secret appeared on the bus"
