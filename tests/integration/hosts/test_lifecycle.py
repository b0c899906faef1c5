"""Pool lifecycle: many hosts in one process, addresses and inventory, the CLI, and a clean stop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import sys
from pathlib import Path

import pytest

from sandbox.hosts import SandboxHostPool
from sandbox.hosts.pool import host_addresses
from shared.errors import InputError
from tests.fixtures.sandbox_hosts import ssh_connect
from tests.integration.hosts.helpers import run

REPO_ROOT = Path(__file__).resolve().parents[3]


def listening_ports() -> set[tuple[str, int]]:
    """(ip, port) of every IPv4 TCP socket in LISTEN state on this machine."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] != "0A":
            continue
        addr_hex, port_hex = fields[1].split(":")
        ip = ".".join(str(int(addr_hex[i : i + 2], 16)) for i in (6, 4, 2, 0))
        found.add((ip, int(port_hex, 16)))
    return found


def test_host_addresses_skip_network_and_broadcast_octets():
    assert host_addresses("127.0.1.253", 4) == ["127.0.1.253", "127.0.1.254", "127.0.2.1", "127.0.2.2"]
    with pytest.raises(InputError, match="not a loopback"):
        host_addresses("10.0.0.1", 1)


async def test_three_hundred_hosts_in_one_process(sandbox_hosts):
    pool = await sandbox_hosts(count=300)
    assert len({h.ip for h in pool.hosts}) == 300
    assert pool.hosts[-1].ip == "127.0.2.46"  # 254 addresses in 127.0.1.x, then 127.0.2.1...
    assert len(pool.known_hosts_path.read_text().splitlines()) == 300
    for host_id in ("host-001", "host-150", "host-300"):
        assert (await run(pool, "hostname", host_id=host_id)).stdout == f"node-{host_id[-3:]}\n"


async def test_inventory_entries_and_key_files(sandbox_hosts):
    pool = await sandbox_hosts(count=2, user="ubuntu")
    assert pool.inventory_hosts() == [
        {
            "host_id": "host-001",
            "host_name": "node-001",
            "host_ip": "127.0.1.1",
            "host_user": "ubuntu",
            "ssh_port": pool.port,
            "ssh_key_file": str(pool.client_key_path),
        },
        {
            "host_id": "host-002",
            "host_name": "node-002",
            "host_ip": "127.0.1.2",
            "host_user": "ubuntu",
            "ssh_port": pool.port,
            "ssh_key_file": str(pool.client_key_path),
        },
    ]
    assert stat.S_IMODE(pool.client_key_path.stat().st_mode) == 0o600
    assert pool.client_key_path.with_name("id_ed25519.pub").read_text().startswith("ssh-ed25519 ")
    lines = pool.known_hosts_path.read_text().splitlines()
    assert lines[0].startswith(f"[127.0.1.1]:{pool.port} ssh-ed25519 ")
    assert lines[0].split()[2] != lines[1].split()[2]  # every host has its own host key


async def test_stop_leaves_no_port_task_or_agent(tmp_path):
    pool = SandboxHostPool(tmp_path / "pool", count=3)
    await pool.start()
    assert {(h.ip, pool.port) for h in pool.hosts} <= listening_ports()
    conn = await ssh_connect(pool)
    assert (await conn.run("true")).exit_status == 0
    await pool.stop()
    assert not {(h.ip, pool.port) for h in pool.hosts} & listening_ports()
    with pytest.raises(OSError):
        await ssh_connect(pool)
    await conn.wait_closed()
    leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert leftover == []
    # A restarted pool on the same state dir keeps host keys and state, like rebooted machines.
    known = pool.known_hosts_path.read_text().split()[2]
    again = SandboxHostPool(tmp_path / "pool", count=3)
    await again.start()
    try:
        assert again.known_hosts_path.read_text().split()[2] == known
        assert len(again.host("host-001").state.log) == 1
    finally:
        await again.stop()


async def test_cli_serves_until_sigterm(tmp_path):
    state_dir = tmp_path / "cli"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox.hosts",
        "--count",
        "2",
        "--state-dir",
        str(state_dir),
        "--user",
        "ubuntu",
        "--fault",
        "host-002=unreachable",
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        ready = json.loads(line)
        assert ready["event"] == "sandbox_hosts_ready" and ready["count"] == 2
        inventory = json.loads((state_dir / "inventory-hosts.json").read_text())
        first = inventory["hosts"][0]
        assert stat.S_IMODE((state_dir / "id_ed25519").stat().st_mode) == 0o600
        import asyncssh

        async with asyncssh.connect(
            first["host_ip"],
            first["ssh_port"],
            username=first["host_user"],
            client_keys=[first["ssh_key_file"]],
            known_hosts=str(state_dir / "known_hosts"),
            connect_timeout=10,
            agent_path=None,
        ) as conn:
            assert (await conn.run("hostname")).stdout == "node-001\n"
        with pytest.raises(ConnectionRefusedError):
            await asyncssh.connect(
                inventory["hosts"][1]["host_ip"],
                first["ssh_port"],
                connect_timeout=10,
                known_hosts=None,
                agent_path=None,
            )
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
        assert (first["host_ip"], first["ssh_port"]) not in listening_ports()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_state_file_written_once_per_save_interval_and_at_stop(tmp_path):
    pool = SandboxHostPool(tmp_path / "pool", count=1, save_interval=3600)
    await pool.start()
    try:
        state_file = pool.state_dir / "host-001" / "state.json"
        before = json.loads(state_file.read_text())
        result = await run(pool, "sudo -n mkdir -p /etc/marker")
        assert result.exit_status == 0
        # In memory at once; the file waits for the interval (an hour here) or the stop.
        assert pool.host("host-001").state.log[-1].command == "sudo -n mkdir -p /etc/marker"
        assert json.loads(state_file.read_text())["log"] == before["log"]
    finally:
        await pool.stop()
    assert json.loads(state_file.read_text())["log"][-1]["command"] == "sudo -n mkdir -p /etc/marker"
    assert not pool._saving


@pytest.mark.parametrize("interval", [0, -1, 3601])
def test_save_interval_is_bounded(tmp_path, interval):
    with pytest.raises(InputError):
        SandboxHostPool(tmp_path, count=1, save_interval=interval)


def test_pools_with_disjoint_first_indexes_name_disjoint_hosts(tmp_path):
    low = SandboxHostPool(tmp_path / "low", count=2)
    high = SandboxHostPool(tmp_path / "high", count=2, first_index=3, first_address="127.0.9.1")
    low._prepare_files()
    high._prepare_files()
    assert [h.host_id for h in low.hosts] == ["host-001", "host-002"]
    assert [(h.host_id, h.host_name) for h in high.hosts] == [("host-003", "node-003"), ("host-004", "node-004")]
    assert (tmp_path / "high" / "host-003").is_dir() and high.describe()["first_index"] == 3
    with pytest.raises(InputError):
        SandboxHostPool(tmp_path, count=1, first_index=0)
