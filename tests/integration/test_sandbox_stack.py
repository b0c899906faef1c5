"""The one-call sandbox: everything comes up, a host registers a ByoHost, and teardown leaves nothing."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import asyncssh
import nats
import nats.errors
import pytest

from sandbox.stack import Sandbox
from shared.kube import KubeClient


def _child_pids() -> list[int]:
    text = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text()
    return [int(p) for p in text.split()]


def _listening(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


async def test_sandbox_starts_everything_and_tears_down_cleanly(tmp_path: Path, crd_dirs: list[Path]) -> None:
    before = set(_child_pids())
    async with Sandbox(tmp_path / "sb", hosts=3, crd_dirs=crd_dirs) as sb:
        nc = await nats.connect(sb.nats_url, **sb.client_options("o2ctl"))
        assert nc.is_connected
        await nc.close()
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(sb.nats_url, allow_reconnect=False, max_reconnect_attempts=0)
        async with await KubeClient.from_kubeconfig(sb.kubeconfig) as kube:
            version = await kube.server_version()
            assert version.get("gitVersion")
        host = sb.hosts.hosts[0]
        async with asyncssh.connect(
            host.ip,
            host.port,
            username="root",
            client_keys=[str(sb.hosts.client_key_path)],
            known_hosts=str(sb.hosts.known_hosts_path),
        ) as conn:
            result = await conn.run("uname -m", check=True)
            assert str(result.stdout).strip() == "x86_64"
        ports = [("127.0.0.1", sb.nats.port), ("127.0.0.1", sb.kubeapi.port), (host.ip, host.port)]
        assert all(_listening(h, p) for h, p in ports)
        assert len(set(_child_pids()) - before) == 1  # only nats-server runs as a separate process
    await asyncio.sleep(0)
    assert set(_child_pids()) - before == set()
    assert not any(_listening(h, p) for h, p in ports)
