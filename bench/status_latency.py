"""Latency from a Kubernetes object write to the status event on NATS, 200 clusters changing at once.

Setup: the API emulator in its own process, an embedded nats-server, 200 ``Cluster`` objects.
Each of 200 writers flips its Cluster's ``status.phase`` (Provisioning ↔ Provisioned)
``ROUNDS`` times, and each write is timed from just before the status patch to the arrival
of the ``k8s.cluster.status`` summary carrying the new phase on a NATS subscription.

- latency: every cluster changes once per ``PERIOD`` seconds (starts spread over the period),
  i.e. 200 clusters changing concurrently at a steady 200 changes/s;
- events/s: closed loop, each cluster writes again as soon as its event arrived (saturation).

Ours: the whole status_watcher pipeline (watch → cache → reducer → dedup → JetStream
publish). Peer: the same writes observed by a bare watch on the emulator, i.e. the
emulator's own watch delivery without our pipeline; the difference is what the pipeline adds.
Everything but the emulator and nats-server shares one event loop (writers included).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nats

from bench.report import Figure
from sandbox.kubeapi.paths import default_crd_dirs
from services.status_watcher.pipeline import StatusPipeline, StatusWatcher
from shared.bus import Bus
from shared.connect import ensure_buckets, ensure_streams
from shared.kube import KubeClient
from shared.messages import decode
from shared.natsserver import EmbeddedNats
from shared.payloads import ClusterSummary
from shared.subjects import ALL_K8S_CLUSTER_STATUS

CLUSTERS = 200
ROUNDS = 10
PERIOD = 1.0
CORE = "cluster.x-k8s.io/v1beta1"
NS = "default"
PHASES = ("Provisioning", "Provisioned")


async def _emulator(tmp: Path) -> tuple[asyncio.subprocess.Process, Path]:
    out = tmp / "kubeconfig"
    args = [
        sys.executable,
        "-m",
        "sandbox.kubeapi",
        "--port",
        "0",
        "--kubeconfig-out",
        str(out),
        "--history-size",
        "20000",
    ]
    for d in default_crd_dirs():
        args += ["--crds", str(d)]
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    if not line or not json.loads(line).get("ready"):
        proc.kill()
        raise RuntimeError("the API emulator did not start")
    return proc, out


class Writers:
    """200 concurrent writers; ``arrived(cluster, phase)`` completes the matching outstanding write."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self.latencies: list[float] = []
        self._waiting: dict[str, tuple[str, float, asyncio.Future[None]]] = {}

    def arrived(self, cluster: str, phase: str) -> None:
        found = self._waiting.get(cluster)
        if found is not None and found[0] == phase and not found[2].done():
            self.latencies.append(time.perf_counter() - found[1])
            found[2].set_result(None)

    async def _one(self, index: int, period: float | None) -> None:
        loop = asyncio.get_running_loop()
        name = f"bench-{index}"
        start = loop.time() + (index / CLUSTERS * period if period else 0.0)
        for r in range(ROUNDS):
            if period:
                await asyncio.sleep(max(0.0, start + r * period - loop.time()))  # the load schedule, not a sync
            phase = PHASES[(r + 1) % 2]
            done: asyncio.Future[None] = loop.create_future()
            self._waiting[name] = (phase, time.perf_counter(), done)
            await self.client.patch(CORE, "Cluster", name, NS, {"status": {"phase": phase}}, subresource="status")
            await asyncio.wait_for(done, 60)

    async def run(self, period: float | None) -> float:
        """All writers; ``period`` None is the closed loop. Returns the elapsed seconds."""
        started = time.perf_counter()
        await asyncio.gather(*(self._one(i, period) for i in range(CLUSTERS)))
        return time.perf_counter() - started


async def _reset(client: KubeClient) -> None:
    async def one(i: int) -> None:
        name = f"bench-{i}"
        if await client.get(CORE, "Cluster", name, NS) is None:
            await client.create(
                {"apiVersion": CORE, "kind": "Cluster", "metadata": {"name": name, "namespace": NS}, "spec": {}}
            )
        await client.patch(CORE, "Cluster", name, NS, {"status": {"phase": PHASES[0]}}, subresource="status")

    await asyncio.gather(*(one(i) for i in range(CLUSTERS)))


async def _ours(kubeconfig: Path, nats_url: str, scenario: Scenario) -> tuple[list[float], float]:
    nc = await nats.connect(nats_url)
    bus = Bus(nc, source="status_watcher")
    await ensure_streams(bus.js)
    await ensure_buckets(bus.js)
    client = await KubeClient.from_kubeconfig(kubeconfig)
    pipeline = StatusPipeline(bus, source="status_watcher", namespaces=(NS,))
    watcher = StatusWatcher(client, pipeline)

    async def on_msg(msg: Any) -> None:
        payload = decode(msg.data).payload
        if isinstance(payload, ClusterSummary) and payload.phase:
            scenario.arrived(payload.name, payload.phase)

    sub = await nc.subscribe(ALL_K8S_CLUSTER_STATUS, cb=on_msg)
    task = asyncio.create_task(watcher.run())
    try:
        await asyncio.wait_for(pipeline.started.wait(), 60)
        return await scenario()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await sub.unsubscribe()
        await client.close()
        await bus.close()


async def _peer(kubeconfig: Path, scenario: Scenario) -> tuple[list[float], float]:
    client = await KubeClient.from_kubeconfig(kubeconfig)
    _, rv = await client.list(CORE, "Cluster", NS)
    ready = asyncio.Event()

    async def watch() -> None:
        ready.set()
        async for event in client.watch(CORE, "Cluster", NS, resource_version=rv, timeout_seconds=600):
            phase = (event.object.get("status") or {}).get("phase")
            if event.type == "MODIFIED" and phase:
                scenario.arrived(event.object["metadata"]["name"], str(phase))

    task = asyncio.create_task(watch())
    try:
        await ready.wait()
        return await scenario()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.close()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


class Scenario:
    """Both load shapes, one after the other, through whichever observer is running."""

    def __init__(self, client: KubeClient) -> None:
        self.client = client
        self.writers = Writers(client)

    def arrived(self, cluster: str, phase: str) -> None:
        self.writers.arrived(cluster, phase)

    async def __call__(self) -> tuple[list[float], float]:
        await _reset(self.client)
        await self.writers.run(PERIOD)
        steady = self.writers.latencies
        self.writers = Writers(self.client)
        elapsed = await self.writers.run(None)
        return steady, CLUSTERS * ROUNDS / elapsed


async def run() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-status-") as tmp:
        proc, kubeconfig = await _emulator(Path(tmp))
        server = EmbeddedNats(Path(tmp) / "nats")
        await server.start()
        client = await KubeClient.from_kubeconfig(kubeconfig)
        try:
            # The peer first: any slowdown of a longer-running emulator then counts against ours.
            peer, peer_rate = await _peer(kubeconfig, Scenario(client))
            ours, ours_rate = await _ours(kubeconfig, server.url, Scenario(client))
        finally:
            await client.close()
            await server.close()
            proc.terminate()
            await proc.wait()
    note = f"{CLUSTERS} clusters each changing every {PERIOD:g} s, {ROUNDS} rounds"
    peer_name = "emulator watch, no pipeline"
    return [
        Figure("status_latency", "write→event p50", _pct(ours, 0.5), "ms", peer_name, _pct(peer, 0.5), note),
        Figure(
            "status_latency",
            "write→event p99",
            _pct(ours, 0.99),
            "ms",
            peer_name,
            _pct(peer, 0.99),
            "aim: p99 < 100 ms",
        ),
        Figure(
            "status_latency",
            "write→event mean",
            statistics.fmean(ours) * 1000,
            "ms",
            peer_name,
            statistics.fmean(peer) * 1000,
        ),
        Figure(
            "status_latency",
            "events/s (closed loop)",
            ours_rate,
            "events/s",
            peer_name,
            peer_rate,
            f"{CLUSTERS} writers, next write when the event arrived",
        ),
    ]


if __name__ == "__main__":
    for figure in asyncio.run(run()):
        print(figure)
