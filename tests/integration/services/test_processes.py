"""Every service starts, serves health, and stops cleanly as ``python -m services.<name>``."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import nats
import pytest

from shared.bus import Bus
from shared.connect import ensure_buckets, ensure_streams
from shared.messages import Envelope
from shared.natsserver import EmbeddedNats
from shared.payloads import HostprepJob
from shared.subjects import HOSTPREP, hostprep_job
from tests.integration.services.procs import ServiceProcess

PR1 = "00000000-0000-4000-8000-000000000001"
PR2 = "00000000-0000-4000-8000-000000000002"

SERVICES = ["focom", "o2ims", "hostprep", "capi_renderer", "status_watcher"]


@pytest.fixture
async def procs() -> AsyncIterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for p in started:
        await p.kill()


def _kube_env(name: str, kubeconfig: Path) -> dict[str, str]:
    # capi_renderer validates against the CRDs the emulator serves (its default source).
    return {f"O2_{name.upper()}_KUBECONFIG": str(kubeconfig)}


@pytest.mark.parametrize("name", SERVICES)
async def test_service_starts_serves_health_and_stops(
    name: str, nats_url: str, procs: list[ServiceProcess], kubeconfig: Path
) -> None:
    env = {"O2_NATS_URL": nats_url, **_kube_env(name, kubeconfig)}
    proc = await ServiceProcess(f"services.{name}", env).start()
    procs.append(proc)
    ready = await proc.wait_event("service_ready")
    port = ready["http_port"]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
            assert r.status == 200
        # Ready follows once consumers are bound and (status_watcher) the initial lists are done.
        for _ in range(200):
            async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                body = await r.json()
                if r.status == 200:
                    break
            await asyncio.sleep(0.1)  # polling the service's own readiness, bounded
        assert r.status == 200 and body["ready"] is True, body
        async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
            assert r.status == 200
    proc.signal(signal.SIGTERM)
    assert await proc.wait() == 0
    assert any(rec.get("event") == "service_stopped" for rec in proc.lines)
    assert not any("Traceback" in line for line in proc.raw)


async def test_invalid_settings_exit_2_naming_the_field(procs: list[ServiceProcess]) -> None:
    proc = await ServiceProcess("services.o2ims", {"O2_HTTP_PORT": "seventy"}).start()
    procs.append(proc)
    assert await proc.wait() == 2
    text = "\n".join(proc.raw)
    assert "http_port" in text and "Traceback" not in text


async def test_nats_unreachable_is_a_clear_error_after_retries(procs: list[ServiceProcess]) -> None:
    env = {"O2_NATS_URL": "nats://127.0.0.1:9", "O2_NATS_STARTUP_TIMEOUT": "3", "O2_NATS_CONNECT_TIMEOUT": "0.5"}
    proc = await ServiceProcess("services.focom", env).start()
    procs.append(proc)
    assert await proc.wait() == 1
    retries = [r for r in proc.lines if r.get("event") == "nats_connect_retry"]
    failed = [r for r in proc.lines if r.get("event") == "service_failed"]
    assert retries and failed and "not reachable" in failed[0]["error"]
    assert not any("Traceback" in line for line in proc.raw)


async def test_credentials_in_the_nats_url_never_reach_the_output(procs: list[ServiceProcess]) -> None:
    secret = "s3cr3t-pw-in-url"
    env = {
        "O2_NATS_URL": f"nats://focom:{secret}@127.0.0.1:9,tls://other:{secret}x@127.0.0.1:10",
        "O2_NATS_STARTUP_TIMEOUT": "2",
        "O2_NATS_CONNECT_TIMEOUT": "0.5",
    }
    proc = await ServiceProcess("services.focom", env).start()
    procs.append(proc)
    assert await proc.wait() == 1
    retries = [r for r in proc.lines if r.get("event") == "nats_connect_retry"]
    assert retries and retries[0]["url"] == "nats://***@127.0.0.1:9,tls://***@127.0.0.1:10"
    assert not any(secret in line for line in proc.raw)


def _job(pr: str) -> HostprepJob:
    return HostprepJob(pr_id=pr, action="prepare", cluster="c1", k8s_version="v1.30.2", hosts=("h1",))


async def _publish(url: str, pr: str) -> None:
    nc = await nats.connect(url)
    bus = Bus(nc, source="test")
    await ensure_streams(bus.js)
    await ensure_buckets(bus.js)
    await bus.publish(hostprep_job(pr), Envelope.wrap(_job(pr), source="test"))
    await bus.close()


async def _consumer_state(url: str) -> tuple[int, int, int]:
    nc = await nats.connect(url)
    info = await nc.jetstream().consumer_info(HOSTPREP.name, "slow")
    await nc.close()
    return info.num_ack_pending, info.num_pending, info.num_redelivered


async def _wait_file(path: Path, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not path.exists():
        assert loop.time() < deadline, f"{path.name} never appeared"
        await asyncio.sleep(0.02)  # polling a file written by the child process, bounded


async def test_sigterm_lets_a_running_handler_finish(
    nats_server: EmbeddedNats, tmp_path: Path, procs: list[ServiceProcess]
) -> None:
    env = {"O2_NATS_URL": nats_server.url, "SLOW_MARK_DIR": str(tmp_path), "SLOW_SECONDS": "1.5"}
    proc = await ServiceProcess("tests.integration.bus.slow_service", env).start()
    procs.append(proc)
    await proc.wait_event("service_ready")
    await _publish(nats_server.url, PR1)
    await _wait_file(tmp_path / f"started-{PR1}")
    proc.signal(signal.SIGTERM)
    assert await proc.wait() == 0
    assert (tmp_path / f"finished-{PR1}").exists()
    assert await _consumer_state(nats_server.url) == (0, 0, 0)


async def test_sigterm_past_the_drain_timeout_hands_the_message_back(
    nats_server: EmbeddedNats, tmp_path: Path, procs: list[ServiceProcess]
) -> None:
    env = {
        "O2_NATS_URL": nats_server.url,
        "SLOW_MARK_DIR": str(tmp_path),
        "SLOW_SECONDS": "30",
        "O2_DRAIN_TIMEOUT": "0.5",
    }
    first = await ServiceProcess("tests.integration.bus.slow_service", env).start()
    procs.append(first)
    await first.wait_event("service_ready")
    await _publish(nats_server.url, PR2)
    await _wait_file(tmp_path / f"started-{PR2}")
    first.signal(signal.SIGTERM)
    assert await first.wait() == 0
    assert not (tmp_path / f"finished-{PR2}").exists()
    # Nothing is lost: the next instance gets the same message again and completes it.
    (tmp_path / f"started-{PR2}").unlink()
    second = await ServiceProcess("tests.integration.bus.slow_service", {**env, "SLOW_SECONDS": "0.1"}).start()
    procs.append(second)
    await _wait_file(tmp_path / f"finished-{PR2}")
    assert (tmp_path / f"finished-{PR2}").read_text() == "2"  # the second delivery
    second.signal(signal.SIGTERM)
    assert await second.wait() == 0
