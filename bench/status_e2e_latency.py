"""Status latency: a status change in the Kubernetes API emulator → the FPR status event that reports it.

A sandbox stack (``tests.e2e.harness``, production settings) provisions WARMUP + SAMPLES one-host clusters.
Then, one cluster at a time, the bench writes a terminal failure into that ``Cluster``'s status
(``failureReason``/``failureMessage``, as CAPI does) and times, from just before the write, the arrival of
the ``focom.status`` event in which that cluster is ``failed``: emulator watch → status_watcher →
``k8s.status`` → o2ims → ``o2ims.status`` → focom → ``focom.status``. The ``o2ims.status`` event on the
way is timed too. Samples are taken one after another (no queueing); the first WARMUP are not counted.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.report import SERIES, Figure
from shared.messages import decode
from shared.payloads import FprStatus, PrStatus, pr_id_for
from shared.subjects import ALL_O2IMS_STATUS, focom_status
from tests.e2e.harness import Stack, StackOptions, cluster_name

BENCH = "status_e2e_latency"
WARMUP = 5
SAMPLES = 100
FPR = "latency"
CORE = "cluster.x-k8s.io/v1beta1"


class Arrivals:
    """When the o2ims and the focom status events reporting a failed cluster arrived (perf_counter)."""

    def __init__(self) -> None:
        self.o2ims: dict[str, float] = {}
        self.focom: dict[str, float] = {}
        self.changed = asyncio.Event()

    async def on_msg(self, msg: Any) -> None:
        now = time.perf_counter()
        payload = decode(msg.data).payload
        if isinstance(payload, PrStatus) and payload.state == "failed":
            self.o2ims.setdefault(payload.pr_id, now)
        elif isinstance(payload, FprStatus):
            for child in payload.children:
                if child.state == "failed":
                    self.focom.setdefault(child.cluster, now)
        self.changed.set()

    async def wait(self, cluster: str, timeout: float = 60.0) -> None:
        async with asyncio.timeout(timeout):
            while cluster not in self.focom:
                self.changed.clear()
                await self.changed.wait()


def percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


async def run() -> list[Figure]:
    n = WARMUP + SAMPLES
    focom_ms: list[float] = []
    o2ims_ms: list[float] = []
    options = StackOptions(clusters=n, hosts_per_cluster=1, record_objects=False, test_env=False)
    with tempfile.TemporaryDirectory(prefix="status-latency-") as tmp:
        async with Stack(Path(tmp) / "stack", options) as stack:
            await stack.submit(FPR, allClusters=True)
            rec = await stack.settled(FPR, timeout=1800)
            if rec["phase"] != "Synced":
                raise RuntimeError(f"{n} clusters did not all become fulfilled: {rec['message']}")
            arrivals = Arrivals()
            await stack.bus.nc.subscribe(focom_status(FPR), cb=arrivals.on_msg)
            await stack.bus.nc.subscribe(ALL_O2IMS_STATUS, cb=arrivals.on_msg)
            for i in range(n):
                cluster = cluster_name(i)
                started = time.perf_counter()
                await stack.kube.patch(
                    CORE,
                    "Cluster",
                    cluster,
                    "default",
                    {"status": {"failureReason": "InvalidConfiguration", "failureMessage": f"latency probe {i}"}},
                    subresource="status",
                )
                await arrivals.wait(cluster)
                if i >= WARMUP:
                    focom_ms.append(1000 * (arrivals.focom[cluster] - started))
                    o2ims_ms.append(1000 * (arrivals.o2ims[pr_id_for(FPR, cluster)] - started))
    SERIES["status.focom_latency_ms"] = sorted(focom_ms)
    SERIES["status.o2ims_latency_ms"] = sorted(o2ims_ms)
    figures = [
        Figure(
            BENCH,
            f"emulator status change → focom.status, p50 ({SAMPLES} samples)",
            percentile(focom_ms, 50),
            "ms",
            note="watch → status_watcher → o2ims → focom",
            id="status.focom_p50_ms",
        ),
        Figure(
            BENCH,
            f"emulator status change → focom.status, p99 ({SAMPLES} samples)",
            percentile(focom_ms, 99),
            "ms",
            note=f"max {max(focom_ms):.0f} ms",
            id="status.focom_p99_ms",
        ),
        Figure(BENCH, "emulator status change → o2ims.status, p50", percentile(o2ims_ms, 50), "ms"),
        Figure(BENCH, "emulator status change → o2ims.status, p99", percentile(o2ims_ms, 99), "ms"),
    ]
    print(f"{BENCH}: focom p50 {figures[0].ours:.1f} ms, p99 {figures[1].ours:.1f} ms", file=sys.stderr)
    return figures


if __name__ == "__main__":
    for f in asyncio.run(run()):
        print(f)
