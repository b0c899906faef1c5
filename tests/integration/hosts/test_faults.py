"""Injected faults surface as the real asyncssh client errors, and clearing a fault restores the host."""

from __future__ import annotations

import asyncssh
import pytest

from sandbox.hosts import Fault
from shared.errors import InputError
from tests.fixtures.sandbox_hosts import ssh_connect
from tests.integration.hosts.helpers import run


async def test_unreachable_refuses_connections_until_cleared(sandbox_hosts):
    pool = await sandbox_hosts(count=2)
    async with await ssh_connect(pool) as conn:
        pool.set_fault("host-001", Fault.unreachable())
        with pytest.raises((asyncssh.ConnectionLost, asyncssh.DisconnectError, asyncssh.ChannelOpenError)):
            await conn.run("true", check=False)
    with pytest.raises(ConnectionRefusedError):
        await ssh_connect(pool)
    assert (await run(pool, "hostname", host_id="host-002")).stdout == "node-002\n"
    pool.set_fault("host-001", None)
    assert (await run(pool, "hostname")).stdout == "node-001\n"


async def test_wrong_host_key_fails_verification(sandbox_hosts):
    pool = await sandbox_hosts(count=1)
    pool.set_fault("host-001", Fault.wrong_host_key())
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        await ssh_connect(pool)
    pool.set_fault("host-001", None)
    assert (await run(pool, "true")).exit_status == 0


async def test_auth_failure_rejects_every_credential(sandbox_hosts):
    pool = await sandbox_hosts(count=1, password="s3cret")
    assert (await run(pool, "true")).exit_status == 0
    async with await ssh_connect(pool, client_keys=None, password="s3cret") as conn:
        assert (await conn.run("whoami")).stdout == "root\n"
    pool.set_fault("host-001", Fault.auth_failure())
    with pytest.raises(asyncssh.PermissionDenied):
        await ssh_connect(pool)
    with pytest.raises(asyncssh.PermissionDenied):
        await ssh_connect(pool, client_keys=None, password="s3cret")
    with pytest.raises(asyncssh.PermissionDenied):
        await ssh_connect(pool, username="someone-else")


async def test_command_failure_returns_the_injected_status(sandbox_hosts):
    pool = await sandbox_hosts(count=1)
    pool.set_fault(
        "host-001",
        Fault.command_failure(r"apt-get install", exit_code=100, stderr="E: Failed to fetch (injected)", times=1),
    )
    failed = await run(pool, "apt-get install -y socat")
    assert (failed.exit_status, failed.stderr) == (100, "E: Failed to fetch (injected)\n")
    assert (await run(pool, "echo apt-get update")).exit_status == 0
    retried = await run(pool, "DEBIAN_FRONTEND=noninteractive apt-get install -y socat")
    assert retried.exit_status == 0
    state = pool.host("host-001").state
    assert [(r.exit_code, r.fault) for r in state.log] == [(100, "command_failure"), (0, None), (0, None)]
    assert state.installed("socat")


async def test_drop_connection_loses_the_connection(sandbox_hosts):
    pool = await sandbox_hosts(count=1)
    pool.set_fault("host-001", Fault.drop_connection(r"modprobe"))
    async with await ssh_connect(pool) as conn:
        with pytest.raises((asyncssh.ConnectionLost, asyncssh.DisconnectError)):
            async with conn.create_process("modprobe overlay") as proc:
                await proc.stdout.read()
    state = pool.host("host-001").state
    # The command ran before the connection dropped: a retry must cope with work already done.
    assert "overlay" in state.modules_loaded
    assert state.log[-1].fault == "drop_connection"
    # conn.run() reports the same drop as a missing exit status rather than raising.
    async with await ssh_connect(pool) as conn:
        result = await conn.run("modprobe br_netfilter", check=False)
    assert (result.exit_status, result.exit_signal) == (None, None)
    pool.set_fault("host-001", None)
    assert (await run(pool, "echo fine")).stdout == "fine\n"


async def test_slow_command_trips_the_clients_timeout(sandbox_hosts):
    pool = await sandbox_hosts(count=1)
    pool.set_fault("host-001", Fault.slow_command(r"sysctl", delay=60))
    state = pool.host("host-001").state
    async with await ssh_connect(pool) as conn:
        with pytest.raises(asyncssh.TimeoutError):
            await conn.run("sysctl -w net.ipv4.ip_forward=1", check=False, timeout=0.5)
        assert (await conn.run("echo other")).stdout == "other\n"
    await pool.wait_for("host-001", lambda s: any(r.fault == "slow_command" for r in s.log), timeout=30)
    assert state.sysctls["net.ipv4.ip_forward"] == "0"  # abandoned before it ran
    assert [r.exit_code for r in state.log if r.fault] == [129]


def test_fault_specs_parse():
    assert Fault.parse("unreachable") == Fault("unreachable")
    assert Fault.parse("command_failure:apt-get") == Fault("command_failure", pattern="apt-get")
    assert Fault.parse('{"kind": "slow_command", "pattern": "x", "delay": 2}').delay == 2
    with pytest.raises(InputError, match="unknown fault kind"):
        Fault.parse("melt")
    with pytest.raises(InputError, match="invalid fault pattern"):
        Fault.command_failure("(")
