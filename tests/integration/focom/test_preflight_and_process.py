"""SSH reachability preflight against real sockets, and focom run as its own process."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.bus import Bus
from shared.payloads import FocomRequest, FprStatus, PrRequest, PrStatus
from shared.subjects import ALL_FOCOM_STATUS, ALL_O2IMS_REQUESTS, FOCOM_REQUESTS, o2ims_status
from tests.integration.focom.support import Recorder, example_inventory, start_focom, write_inventory
from tests.integration.services.procs import ServiceProcess


@pytest.fixture
async def ssh_like() -> AsyncIterator[int]:
    """A banner-only 'SSH server' on 127.0.6.1 (the port is free on 127.0.6.2, so that one refuses)."""

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.6 sandbox\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, "127.0.6.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def _inventory(port: int) -> dict[str, Any]:
    hosts = [
        {"host_id": f"h{i}", "host_name": f"node-{i}", "host_ip": f"127.0.6.{i}", "ssh_port": port} for i in (1, 2)
    ]
    clusters = [
        {"cluster_name": f"c{i}", "cluster_masters": [{"host_id": f"h{i}"}], "control_plane_endpoint": f"127.0.7.{i}"}
        for i in (1, 2)
    ]
    return {"k8s_version": "v1.31.4", "hosts": hosts, "clusters": clusters}


async def test_preflight_refuses_unreachable_hosts(bus: Bus, tmp_path: Path, ssh_like: int) -> None:
    path = write_inventory(tmp_path / "input.json", _inventory(ssh_like))
    h = await start_focom(bus, path, ssh_preflight=True, ssh_preflight_timeout=2.0)
    await h.submit("reachable", clusterNames=("c1",))
    await h.commands.wait(lambda: h.prs("reachable"))
    await h.submit("unreachable", clusterNames=("c2",))
    failure = await h.wait_failure("unreachable")
    assert failure.path == "inventory $.clusters[1].cluster_masters[0].host_id" and "ssh-reachable" in failure.error
    assert "127.0.6.2" in failure.error and await h.leases.owner_of("h2") is None


async def test_focom_process_end_to_end_with_a_stand_in_o2ims(bus: Bus, nats_url: str, tmp_path: Path) -> None:
    commands, statuses = Recorder(), Recorder()
    await bus.js.subscribe(ALL_O2IMS_REQUESTS, cb=commands.on_msg, ordered_consumer=True)
    await bus.js.subscribe(ALL_FOCOM_STATUS, cb=statuses.on_msg, ordered_consumer=True)
    proc = await ServiceProcess(
        "services.focom", {"O2_NATS_URL": nats_url, "O2_FOCOM_INVENTORY_PATH": str(example_inventory(tmp_path))}
    ).start()
    try:
        await proc.wait_event("service_ready")
        await bus.emit(FOCOM_REQUESTS, FocomRequest(name="proc", allClusters=True), correlation_id="proc")
        prs: list[PrRequest] = await commands.wait(
            lambda: len(commands.payloads(PrRequest)) == 3 and commands.payloads(PrRequest)
        )
        for seq, state in enumerate(("progressing", "fulfilled"), start=1):
            for pr in prs:
                assert pr.spec is not None
                status = PrStatus(
                    pr_id=pr.pr_id,
                    fpr="proc",
                    cluster=pr.spec.name,
                    state=state,  # type: ignore[arg-type]
                    seq=seq,
                    at=datetime.now(UTC),
                )
                await bus.emit(o2ims_status(pr.pr_id), status, correlation_id="proc")
        await statuses.wait(lambda: any(s.phase == "Synced" for s in statuses.payloads(FprStatus)))
        accepted = await proc.wait_event("fpr_accepted")
        assert accepted["fpr"] == "proc" and accepted["commands"] == 3
        assert not any("secret" in line or "id_ed25519" in line for line in proc.raw)
        proc.signal(signal.SIGTERM)
        assert await proc.wait() == 0
    finally:
        await proc.kill()


async def test_invalid_settings_exit_with_code_2(nats_url: str) -> None:
    proc = await ServiceProcess("services.focom", {"O2_NATS_URL": nats_url, "O2_FOCOM_K8S_MIN_VERSION": "one"}).start()
    try:
        assert await proc.wait() == 2
        assert any("k8s_min_version" in line for line in proc.raw)
    finally:
        await proc.kill()
