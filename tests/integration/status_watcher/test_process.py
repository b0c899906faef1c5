"""``python -m services.status_watcher`` as a process: ready after its initial lists, publishes, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.request
from pathlib import Path

from sandbox.capi import CapiSimulators
from shared.bus import Bus
from shared.subjects import k8s_status
from tests.integration.services.procs import ServiceProcess
from tests.integration.status_watcher.support import StreamReader
from tests.integration.status_watcher.test_transitions import Hosts


async def test_the_service_process_publishes_hosts_and_reports_ready(
    capi_sim: CapiSimulators, fake_hosts: Hosts, kubeconfig: Path, nats_url: str, bus: Bus
) -> None:
    await fake_hosts(1)
    stream = await StreamReader(bus).start()
    proc = ServiceProcess(
        "services.status_watcher",
        {
            "O2_NATS_URL": nats_url,
            "O2_STATUS_WATCHER_KUBECONFIG": str(kubeconfig),
            "O2_STATUS_WATCHER_NAMESPACES": "default",
        },
    )
    await proc.start()
    try:
        await proc.wait_event("initial_status_published")
        ready = await proc.wait_event("service_ready")
        summary = await stream.wait_summary(k8s_status("byohost", "default", "host-1"), lambda s: s.free)
        assert summary.host_id == "h1"
        url = f"http://127.0.0.1:{ready['http_port']}/readyz"

        def fetch() -> dict[str, object]:
            with urllib.request.urlopen(url, timeout=5) as resp:  # loopback only
                return dict(json.loads(resp.read()))

        body = await asyncio.to_thread(fetch)
        assert body["ready"] is True and "initial lists 7/7" in str(body["checks"])
        proc.signal(signal.SIGTERM)
        assert await proc.wait() == 0
    finally:
        await proc.kill()
        await stream.stop()
