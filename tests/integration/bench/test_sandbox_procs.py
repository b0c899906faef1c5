"""The benchmark's sandbox processes: a host pool child serves its hosts; a child that never gets ready is named."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncssh
import pytest

from bench.sandbox_procs import Child, HostPool
from sandbox.hosts.latency import FAST


async def test_a_host_pool_child_serves_the_hosts_of_its_inventory(tmp_path: Path) -> None:
    pool = HostPool(
        tmp_path / "pool", count=2, first_address="127.0.9.1", agent_binary_url="https://x.invalid/a", latency=FAST
    )
    await pool.start()
    try:
        assert [h.host_id for h in pool.hosts] == ["host-001", "host-002"]
        assert {h.ip for h in pool.hosts} == {"127.0.9.1", "127.0.9.2"}
        assert [e["host_id"] for e in pool.inventory_hosts()] == ["host-001", "host-002"]
        host = pool.hosts[1]
        async with asyncssh.connect(
            host.ip,
            host.port,
            username="root",
            client_keys=[str(pool.client_key_path)],
            known_hosts=str(pool.known_hosts_path),
        ) as conn:
            result = await asyncio.wait_for(conn.run("hostname", check=True), 30)
        assert str(result.stdout).strip() == host.host_name
        assert pool.child.cpu_seconds() > 0
    finally:
        await pool.stop()
    assert pool.child.proc is None


async def test_a_child_that_never_prints_its_readiness_line_is_refused_with_its_log(tmp_path: Path) -> None:
    child = Child("a broken sandbox part", ["-c", "import sys; sys.stderr.write('cannot bind\\n')"], tmp_path / "x.log")
    with pytest.raises(RuntimeError, match=r"(?s)a broken sandbox part did not start.*cannot bind"):
        await child.start()
    assert child.proc is None
