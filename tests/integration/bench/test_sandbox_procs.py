"""The benchmark's sandbox processes: a host pool child serves its hosts; a child that never gets ready is named."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncssh
import pytest

from bench.sandbox_procs import Child, HostPool, host_processes
from sandbox.hosts.latency import FAST


async def test_a_pool_split_over_processes_serves_the_hosts_of_its_inventory(tmp_path: Path) -> None:
    pool = HostPool(
        tmp_path / "pool",
        count=3,
        first_address="127.0.9.1",
        agent_binary_url="https://x.invalid/a",
        latency=FAST,
        processes=2,
    )
    assert len(pool.children) == 2
    await pool.start()
    try:
        assert [h.host_id for h in pool.hosts] == ["host-001", "host-002", "host-003"]
        assert [h.ip for h in pool.hosts] == ["127.0.9.1", "127.0.9.2", "127.0.9.3"]
        assert [e["host_id"] for e in pool.inventory_hosts()] == ["host-001", "host-002", "host-003"]
        assert len({h.port for h in pool.hosts}) == 2  # one listening port per process
        for host in (pool.hosts[0], pool.hosts[2]):  # one host of each process, through the joined known_hosts
            async with asyncssh.connect(
                host.ip,
                host.port,
                username="root",
                client_keys=[host.key_file],
                known_hosts=str(pool.known_hosts_path),
                agent_path=None,
            ) as conn:
                result = await asyncio.wait_for(conn.run("hostname", check=True), 30)
            assert str(result.stdout).strip() == host.host_name
        assert pool.cpu_seconds() > 0
    finally:
        await pool.stop()
    assert all(child.proc is None for child in pool.children)


def test_hundreds_of_hosts_spread_over_the_cores_and_the_setting_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENCH_HOST_PROCESSES", raising=False)
    assert host_processes(1) == 1 and host_processes(99) == 1
    assert host_processes(1000) == min(os.cpu_count() or 1, 10)
    monkeypatch.setenv("BENCH_HOST_PROCESSES", "4")
    assert host_processes(1000) == 4 and host_processes(2) == 2


async def test_a_child_that_never_prints_its_readiness_line_is_refused_with_its_log(tmp_path: Path) -> None:
    child = Child("a broken sandbox part", ["-c", "import sys; sys.stderr.write('cannot bind\\n')"], tmp_path / "x.log")
    with pytest.raises(RuntimeError, match=r"(?s)a broken sandbox part did not start.*cannot bind"):
        await child.start()
    assert child.proc is None
