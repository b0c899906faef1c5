"""focom fan-out: one ``allClusters`` request over 1,000 clusters / 3,000 hosts, vs raw JetStream publish.

Ours: publish the FOCOM request, then focom (in process, its real handler and consumer) validates the
3,000-host inventory, takes the 3,000 host leases all-or-nothing, writes the FPR record and the
cluster specs, and publishes 1,000 ``o2ims.requests.<pr>``; the clock stops when the last PR command
has arrived at a subscriber (every lease is held by then: leases are taken before any command is
sent, which the run checks). Peer: raw nats-py ``publish_async`` of 1,000 messages of the same size
to the same stream. Aim: under 2 s on a 2-core machine.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import nats

from bench.report import Figure
from services.focom.domain import FprRecord
from services.focom.handlers import Focom
from services.focom.inventory_source import InventorySource
from services.focom.settings import FocomSettings
from services.focom.specs import SpecRecord
from shared.bus import Bus
from shared.catalog import load_catalog
from shared.connect import ensure_buckets, ensure_streams
from shared.dispatch import dispatch
from shared.leases import HostLeases
from shared.natsserver import EmbeddedNats
from shared.payloads import FocomRequest
from shared.store import RecordStore
from shared.subjects import (
    ALL_O2IMS_REQUESTS,
    BUCKET_FPR,
    BUCKET_HOSTS,
    FOCOM_REQUESTS,
    FOCOM_REQUESTS_CONSUMER,
    o2ims_request,
)

CLUSTERS = 1000
HOSTS_PER_CLUSTER = 3


def inventory(clusters: int = CLUSTERS) -> dict[str, Any]:
    hosts, wanted = [], []
    for c in range(clusters):
        ids = []
        for k in range(HOSTS_PER_CLUSTER):
            n = c * HOSTS_PER_CLUSTER + k
            ids.append(f"h{n:05d}")
            address = f"10.{n // 65536}.{n // 256 % 256}.{n % 256}"
            hosts.append({"host_id": ids[-1], "host_name": f"node-{n:05d}", "host_ip": address})
        wanted.append(
            {
                "cluster_name": f"c{c:04d}",
                "cluster_masters": [{"host_id": ids[0]}],
                "cluster_workers": [{"host_id": i} for i in ids[1:]],
                "control_plane_endpoint": f"172.16.{c // 256}.{c % 256}",
            }
        )
    return {"k8s_version": "v1.31.4", "hosts": hosts, "clusters": wanted}


async def _ours(url: str, path: Path) -> tuple[float, int]:
    nc = await nats.connect(url)
    bus = Bus(nc, source="bench")
    settings = FocomSettings(inventory_path=path)
    fpr = await bus.kv(BUCKET_FPR)
    leases = HostLeases(await bus.kv(BUCKET_HOSTS))
    focom = Focom(
        settings,
        bus,
        RecordStore(fpr, FprRecord),
        RecordStore(fpr, SpecRecord),
        leases,
        InventorySource(path, max_bytes=settings.inventory_max_bytes, window=settings.k8s_window),
        load_catalog(None),
    )
    got = 0
    done = asyncio.Event()

    async def count(_msg: Any) -> None:
        nonlocal got
        got += 1
        if got == CLUSTERS:
            done.set()

    sub = await nc.subscribe(ALL_O2IMS_REQUESTS, cb=count)
    await bus.consumer(FOCOM_REQUESTS_CONSUMER, dispatch(focom.on_request)).start()
    t0 = time.perf_counter()
    await bus.emit(FOCOM_REQUESTS, FocomRequest(name="bench", allClusters=True), correlation_id="bench")
    await asyncio.wait_for(done.wait(), 120)
    elapsed = time.perf_counter() - t0
    held = len(await leases.all())
    await sub.unsubscribe()
    await bus.stop_consumers(5)
    await bus.close()
    return elapsed, held


async def _raw(url: str, size: int) -> float:
    nc = await nats.connect(url)
    js = nc.jetstream()
    body = b"x" * size
    t0 = time.perf_counter()
    futures = [
        await js.publish_async(o2ims_request(f"raw-{i}"), body, headers={"Nats-Msg-Id": f"raw-{i}"})
        for i in range(CLUSTERS)
    ]
    await asyncio.gather(*futures)
    elapsed = time.perf_counter() - t0
    await nc.close()
    return elapsed


async def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input.json"
        path.write_text(json.dumps(inventory()))
        async with EmbeddedNats() as server:
            nc = await nats.connect(server.url)
            js = nc.jetstream()
            await ensure_streams(js)
            await ensure_buckets(js)
            await nc.close()
            ours, held = await _ours(server.url, path)
            raw = await _raw(server.url, 900)
    assert held == CLUSTERS * HOSTS_PER_CLUSTER, f"only {held} leases held"
    return [
        Figure(
            "focom",
            f"allClusters fan-out, {CLUSTERS:,} clusters / {CLUSTERS * HOSTS_PER_CLUSTER:,} hosts",
            ours * 1000,
            "ms",
            f"raw JetStream publish of {CLUSTERS:,} msgs",
            raw * 1000,
            "publish → all PR commands out, all leases held; aim < 2,000 ms",
        ),
    ]


if __name__ == "__main__":
    from bench.report import table

    print(table(asyncio.run(run())))
