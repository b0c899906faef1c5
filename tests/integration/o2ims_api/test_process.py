"""The API as a process: notifications reach a local receiver in order across a kill -9 of the API.

A delivery is held in flight at the receiver while the API is killed; after the restart the same
notification (same id) is delivered again, before anything newer: at least once, in order.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
from pathlib import Path
from typing import Any

import aiohttp

from services.o2ims_api.catalogue import resource_id
from shared.httpapi.auth import generate_signing_key
from tests.integration.services.procs import ServiceProcess

from .receiver import Receiver
from .support import AUDIENCE, ISSUER, Harness, I, inventory
from .test_notifications import SUBS, subscribe, write_inventory


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(tmp: Path, nats_url: str, port: int) -> dict[str, str]:
    generate_signing_key(tmp / "keys" / "key.pem", tmp / "keys" / "key.pub.pem")
    (tmp / "input.json").write_text(json.dumps(inventory()))
    return {
        "O2_NATS_URL": nats_url,
        "O2_HTTP_PORT": "-1",
        "O2_O2IMS_API_PORT": str(port),
        "O2_O2IMS_API_JWT_PUBLIC_KEY_FILE": str(tmp / "keys" / "key.pub.pem"),
        "O2_O2IMS_API_JWT_ISSUER": ISSUER,
        "O2_O2IMS_API_JWT_AUDIENCE": AUDIENCE,
        "O2_O2IMS_API_INVENTORY_PATH": str(tmp / "input.json"),
        "O2_O2IMS_API_CALLBACK_ALLOW": '["127.0.0.1"]',
        "O2_O2IMS_API_SCAN_INTERVAL": "0.3",
    }


def _gen(n: dict[str, Any]) -> int | None:
    value = (n.get("postObjectState") or {}).get("extensions", {}).get("labels", {}).get("gen")
    return int(value) if value else None


async def test_notifications_in_order_across_kill_9(tmp_path: Path, nats_url: str, receiver: Receiver) -> None:
    port = _free_port()
    env = _env(tmp_path, nats_url, port)
    api = await ServiceProcess("services.o2ims_api", env).start()
    restarted: ServiceProcess | None = None
    try:
        await api.wait_event("service_ready")
        async with aiohttp.ClientSession() as session:
            harness = Harness(f"http://127.0.0.1:{port}", tmp_path / "keys", session, None)  # type: ignore[arg-type]
            await subscribe(harness, SUBS, receiver.url, filter=f"(eq,resourceId,{resource_id('h01')})")
            data = inventory()

            async def change(gen: int, *, wait: bool = True) -> None:
                data["hosts"][0]["labels"] = {"gen": str(gen)}
                write_inventory(tmp_path / "input.json", data)
                if wait:
                    await receiver.wait(lambda got: any(_gen(n) == gen for n in got))

            for gen in (1, 2, 3):
                await change(gen)
            receiver.hold = asyncio.Event()
            await change(4)  # recorded on arrival, then held unanswered
            api.signal(signal.SIGKILL)
            await api.wait()
            receiver.hold.set()
            receiver.hold = None
            await change(5, wait=False)  # while no API runs
            restarted = await ServiceProcess("services.o2ims_api", env).start()
            await restarted.wait_event("service_ready")
            await receiver.wait(lambda got: any(_gen(n) == 5 for n in got))
            for gen in (6, 7):
                await change(gen)
            status, _, subs = await harness.call("GET", SUBS, role="reader")
            assert status == 200 and len(subs) == 1
            status, _, _ = await harness.call("GET", I, role="reader")
            assert status == 200
    finally:
        await api.kill()
        if restarted is not None:
            await restarted.kill()
    gens = [_gen(n) for n in receiver.received]
    fours = [n["notificationId"] for n in receiver.received if _gen(n) == 4]
    assert len(fours) == 2 and fours[0] == fours[1], gens  # the held delivery came again, same id
    seen: list[int] = []
    ids: set[str] = set()
    for n in receiver.received:
        if n["notificationId"] not in ids:
            ids.add(n["notificationId"])
            gen = _gen(n)
            if gen is not None:
                seen.append(gen)
    assert seen == [1, 2, 3, 4, 5, 6, 7], gens


async def test_two_replicas_share_the_port(tmp_path: Path, nats_url: str) -> None:
    port = _free_port()
    env = {**_env(tmp_path, nats_url, port), "O2_O2IMS_API_REUSE_PORT": "true"}
    replicas = [await ServiceProcess("services.o2ims_api", env).start() for _ in range(2)]
    try:
        for replica in replicas:
            await replica.wait_event("service_ready")
        async with aiohttp.ClientSession() as session:
            harness = Harness(f"http://127.0.0.1:{port}", tmp_path / "keys", session, None)  # type: ignore[arg-type]
            for _ in range(4):
                status, _, cloud = await harness.call("GET", I, role="reader")
                assert status == 200 and cloud["serviceUri"] == harness.base
    finally:
        for replica in replicas:
            await replica.kill()
