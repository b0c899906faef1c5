"""End to end on the sandbox: 10, 100 and 300 clusters of 3 hosts each, one ``allClusters`` request.

Each count gets a fresh stack (``tests.e2e.harness``: NATS, the Kubernetes API emulator with the simulated
CAPI/BYOH controllers, the SSH sandbox hosts and the five services as processes, production settings,
logging at info). Measured: the time from publishing the request to the FPR record being Synced (every
cluster fulfilled), each service's peak RSS, and the messages the streams hold per cluster. The whole
O-Cloud (hundreds of SSH servers, the emulator and its controllers) shares the machine with the services,
so on a small machine the sandbox's CPU bounds the wall time.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from pathlib import Path

from bench.report import Figure
from shared.subjects import ALL_STREAMS
from tests.e2e.harness import SERVICES, Stack, StackOptions

BENCH = "e2e_scale"
COUNTS = (10, 100, 300)
HOSTS_PER_CLUSTER = 3


async def measure(n: int, workdir: Path) -> tuple[float, dict[str, float], float]:
    """(seconds to Synced, service -> peak RSS MiB, stream messages per cluster) for ``n`` clusters."""
    options = StackOptions(clusters=n, hosts_per_cluster=HOSTS_PER_CLUSTER, record_objects=False, test_env=False)
    async with Stack(workdir / f"n{n}", options) as stack:
        started = time.perf_counter()
        await stack.submit("scale", allClusters=True)
        rec = await stack.settled("scale", timeout=3600)
        elapsed = time.perf_counter() - started
        if rec["phase"] != "Synced":
            failed = {k: v.get("message") for k, v in rec["children"].items() if v.get("state") != "fulfilled"}
            raise RuntimeError(f"{n} clusters: {rec['phase']}: {list(failed.items())[:3]}")
        rss = {name: stack.rss_kib(name)[1] / 1024 for name in SERVICES}
        messages = 0
        for spec in ALL_STREAMS:
            messages += (await stack.bus.js.stream_info(spec.name)).state.messages
    return elapsed, rss, messages / n


async def run() -> list[Figure]:
    results: dict[int, tuple[float, dict[str, float], float]] = {}
    with tempfile.TemporaryDirectory(prefix="e2e-scale-") as tmp:
        for n in COUNTS:
            print(f"{BENCH}: {n} clusters …", file=sys.stderr, flush=True)
            results[n] = await measure(n, Path(tmp))
            print(f"{BENCH}: {n} clusters Synced in {results[n][0]:.1f}s", file=sys.stderr, flush=True)
    lo, hi = COUNTS[0], COUNTS[-1]
    t_lo = results[lo][0]
    figures = []
    for n in COUNTS:
        t, _, per_cluster = results[n]
        linear = t_lo * n / lo if n != lo else None
        figures.append(Figure(BENCH, f"{n} clusters ({n * HOSTS_PER_CLUSTER} hosts): request → all Synced", t, "s",
                              peer=f"{lo} clusters, scaled linearly" if linear else "", peer_value=linear,
                              note=f"{1000 * t / n:.0f} ms per cluster"))  # fmt: skip
        figures.append(Figure(BENCH, f"{n} clusters: messages per cluster (all streams)", per_cluster, "msg"))
    exponent = math.log(results[hi][0] / t_lo) / math.log(hi / lo)
    figures.append(Figure(BENCH, f"time growth {lo} → {hi} clusters: b in t ∝ n^b", exponent, "",
                          note=f"b = {exponent:.2f}; 1 = linear, < 1 = sublinear"))  # fmt: skip
    for name in SERVICES:
        figures.append(Figure(BENCH, f"peak RSS {name}, {hi} clusters", results[hi][1][name], "MiB",
                              peer=f"{lo} clusters", peer_value=results[lo][1][name]))  # fmt: skip
    growth = ", ".join(f"{n}: {results[n][0]:.1f}s ({1000 * results[n][0] / n:.0f} ms/cluster)" for n in COUNTS)
    print(f"{BENCH}: time to all Synced: {growth}; grows as n^{exponent:.2f}", file=sys.stderr)
    return figures


if __name__ == "__main__":
    import asyncio

    for f in asyncio.run(run()):
        print(f)
