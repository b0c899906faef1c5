"""The sandbox under load: 300 SSH hosts start, 1,000 custom resources streamed to 5 concurrent watchers.

Ours: the Kubernetes API emulator through ``shared.kube`` (HTTPS, the official client's aiohttp
stack): objects created per second and the latency from a create's response to each watcher's
event. Peer, same run: the same 1,000 events through JetStream to 5 ordered consumers.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import nats
from nats.aio.msg import Msg

from bench.report import Figure
from sandbox.hosts import SandboxHostPool
from sandbox.kubeapi import KubeApiServer
from shared.kube import KubeClient
from shared.natsserver import EmbeddedNats

HOSTS, OBJECTS, WATCHERS = 300, 1000, 5
AV = "infrastructure.cluster.x-k8s.io/v1beta1"


def _q(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def _emulator(tmp: Path) -> tuple[float, list[float]]:
    server = KubeApiServer(history_size=OBJECTS * 2)
    await server.start()
    try:
        kc = server.write_kubeconfig(tmp / "kubeconfig")
        clients = [await KubeClient.from_kubeconfig(kc) for _ in range(WATCHERS + 1)]
        writer, watchers = clients[0], clients[1:]
        _, rv = await writer.list(AV, "ByoHost", "default")
        created: dict[str, float] = {}
        latencies: list[float] = []

        async def watch(client: KubeClient) -> None:
            seen = 0
            async for ev in client.watch(AV, "ByoHost", "default", resource_version=rv, bookmarks=False):
                if ev.type == "ADDED":
                    name = ev.object["metadata"]["name"]
                    while name not in created:  # the event can beat the create's response
                        await asyncio.sleep(0.001)
                    latencies.append(time.perf_counter() - created[name])
                    seen += 1
                    if seen == OBJECTS:
                        return

        tasks = [asyncio.create_task(watch(c)) for c in watchers]
        await asyncio.sleep(0.2)  # let the watch requests reach the server before the first create
        t0 = time.perf_counter()
        sem = asyncio.Semaphore(32)

        async def create(i: int) -> None:
            async with sem:
                name = f"host-{i:04d}"
                obj = {
                    "apiVersion": AV,
                    "kind": "ByoHost",
                    "metadata": {"name": name, "namespace": "default"},
                    "spec": {},
                }
                await writer.create(obj)
                created[name] = time.perf_counter()

        await asyncio.gather(*(create(i) for i in range(OBJECTS)))
        rate = OBJECTS / (time.perf_counter() - t0)
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
        for c in clients:
            await c.close()
        return rate, latencies
    finally:
        await server.stop()


async def _jetstream() -> list[float]:
    async with EmbeddedNats() as server:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await js.add_stream(name="BENCH", subjects=["bench.>"])
        sent: dict[int, float] = {}
        latencies: list[float] = []
        done = asyncio.Event()

        async def on_msg(msg: Msg) -> None:
            latencies.append(time.perf_counter() - sent[int(msg.data)])
            if len(latencies) == OBJECTS * WATCHERS:
                done.set()

        subs = [await js.subscribe("bench.>", ordered_consumer=True, cb=on_msg) for _ in range(WATCHERS)]
        for i in range(OBJECTS):
            sent[i] = time.perf_counter()
            await js.publish(f"bench.{i}", str(i).encode())
        await asyncio.wait_for(done.wait(), 60)
        for sub in subs:
            await sub.unsubscribe()
        await nc.close()
        return latencies


async def run() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as tmp:
        t0 = time.perf_counter()
        pool = SandboxHostPool(Path(tmp) / "hosts", count=HOSTS)
        await pool.start()
        start_s = time.perf_counter() - t0
        await pool.stop()
        rate, lat = await _emulator(Path(tmp))
    peer = await _jetstream()
    ms = 1000.0
    return [
        Figure("sandbox", f"start {HOSTS} SSH hosts", start_s, "s"),
        Figure("sandbox", f"create {OBJECTS:,} CRs with {WATCHERS} watchers", rate, "obj/s"),
        Figure(
            "sandbox", "watch event latency p50", _q(lat, 50) * ms, "ms", "JetStream 5 consumers p50", _q(peer, 50) * ms
        ),
        Figure(
            "sandbox", "watch event latency p99", _q(lat, 99) * ms, "ms", "JetStream 5 consumers p99", _q(peer, 99) * ms
        ),
    ]
