"""Faults on one host of five end that host with a clear reason and leave the other hosts and jobs alone."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from sandbox.hosts import Fault, SandboxHostPool
from shared.kube import KubeClient
from shared.payloads import HostprepDone, HostprepFailed
from tests.integration.hostprep.conftest import HarnessFactory
from tests.integration.hostprep.harness import byohosts_by_host_id

BAD = "host-003"


def _never_registers(pool: SandboxHostPool) -> None:
    # A stale agent identity pointing at a dead API server: the agent starts but can never register.
    path = pool.host(BAD).vfs.real("/root/.byoh/config")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster: {server: 'https://127.0.0.1:9'}\n"
        "users:\n- name: u\n  user: {token: stale}\n"
        "contexts:\n- name: c\n  context: {cluster: gone, user: u}\ncurrent-context: c\n"
    )


CASES: dict[str, tuple[Callable[[SandboxHostPool], None], str, set[str], dict[str, Any]]] = {
    # name: (inject, failed step, acceptable reasons, settings)
    "unreachable": (
        lambda p: p.set_fault(BAD, Fault.unreachable()),
        "preflight",
        {"ConnectionRefused", "HostUnreachable"},
        {},
    ),
    "wrong_host_key": (lambda p: p.set_fault(BAD, Fault.wrong_host_key()), "preflight", {"HostKeyMismatch"}, {}),
    "wrong_credentials": (lambda p: p.set_fault(BAD, Fault.auth_failure()), "preflight", {"AuthFailed"}, {}),
    "failing_apt_get": (
        lambda p: p.set_fault(
            BAD,
            Fault.command_failure(
                r"apt-get .*install", exit_code=100, stderr="E: Failed to fetch http://archive/socat.deb 503"
            ),
        ),
        "base-packages",
        {"CommandFailed"},
        {},
    ),
    "hung_command": (
        lambda p: p.set_fault(BAD, Fault.slow_command(r"apt-get .*install", delay=600)),
        "base-packages",
        {"CommandTimeout"},
        {"command_timeout": 2.0, "max_step_attempts": 2},
    ),
    "never_registers": (_never_registers, "registration", {"RegistrationTimeout"}, {"registration_timeout": 4.0}),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_a_fault_fails_only_that_host_with_its_reason(
    case: str, hostprep: HarnessFactory, capi_client: KubeClient
) -> None:
    inject, step, reasons, settings = CASES[case]
    harness, pool = await hostprep(5, **settings)
    inject(pool)
    job = harness.job(pool)
    result = await harness.run(job)
    assert isinstance(result, HostprepFailed), result
    assert result.host_id == BAD and result.step == step and result.reason in reasons, result
    assert [f.host_id for f in result.failures] == [BAD]
    assert sorted(result.ready_hosts) == sorted(h.host_id for h in pool.hosts if h.host_id != BAD)
    if case == "failing_apt_get":
        assert result.exit_code == 100 and "503" in (result.stderr_tail or "")
    if case == "never_registers":
        assert "failed to register" in (result.stderr_tail or ""), result.stderr_tail
    failed = [p for p in harness.progress(job.pr_id, BAD) if p.status == "failed"]
    assert failed and failed[-1].step == step
    ready = {p.host_id for p in harness.progress(job.pr_id) if p.status == "ready"}
    assert ready == set(result.ready_hosts)
    registered = await byohosts_by_host_id(capi_client)
    assert set(registered) == set(result.ready_hosts)


async def test_a_dropped_connection_is_retried(hostprep: HarnessFactory) -> None:
    harness, pool = await hostprep(2)
    pool.set_fault("host-002", Fault.drop_connection(r"apt-get .*install", times=1))
    job = harness.job(pool)
    result = await harness.run(job)
    assert isinstance(result, HostprepDone), result
    retried = [p for p in harness.progress(job.pr_id, "host-002") if p.status == "checking"]
    assert retried and retried[0].step == "base-packages" and "ConnectionLost" in (retried[0].detail or "")


async def test_a_hung_host_does_not_hold_up_another_job(hostprep: HarnessFactory) -> None:
    harness, pool = await hostprep(3, command_timeout=15.0, max_step_attempts=1)
    pool.set_fault("host-001", Fault.slow_command(r"apt-get .*install", delay=600))
    stuck = harness.job(pool, ids=["host-001"])
    other = harness.job(pool, ids=["host-002", "host-003"])
    await harness.submit(stuck)
    await harness.submit(other)
    done = await harness.result(other.pr_id)
    assert isinstance(done, HostprepDone)
    assert harness.results(stuck.pr_id) == [], "the stuck job is still waiting for its command"
    failed = await asyncio.wait_for(harness.result(stuck.pr_id), 60)
    assert isinstance(failed, HostprepFailed) and failed.reason == "CommandTimeout"
