"""End to end with latency-bound hosts: 10, 100 and 300 clusters of 3 hosts each, one ``allClusters`` request.

Each count gets a fresh stack (``tests.e2e.harness``: NATS, the Kubernetes API emulator with the simulated
CAPI/BYOH controllers, the SSH sandbox hosts with the ``realistic`` latency profile, and the five services
as processes with production settings, logging at info). Measured per count: the time from publishing
the request to the FPR record being Synced (every cluster fulfilled); each service's CPU seconds during
that time (``/proc``, the sandbox's processes excluded) per fulfilled cluster; each service's resident
memory at the end and at its peak (``VmHWM``; the growth figure compares peaks); the messages the streams
hold per cluster, by stream. A count that does not finish is reported and the larger ones are skipped.

``BENCH_E2E_COUNTS`` overrides the counts, ``BENCH_E2E_LATENCY`` the hosts' profile. For finding costs
(not for the figures: profiling adds CPU), ``BENCH_E2E_PROFILE=DIR`` samples every service with py-spy
(from the ``bench`` extra) and writes one collapsed-stack file per service and count into ``DIR``
(``python -m bench.stacks`` summarises them), and ``BENCH_E2E_CPROFILE=DIR`` runs every service under
``bench.cpuprofile`` instead (exact calls timed by CPU, a ``<service>.prof`` each when it stops).
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import procstat
from bench.report import Figure
from bench.stacks import Sampler
from o2ctl.supervisor import ChildSpec
from shared.subjects import ALL_STREAMS
from tests.e2e.harness import SERVICES, Stack, StackOptions

BENCH = "e2e_scale"
COUNTS = (10, 100, 300)
HOSTS_PER_CLUSTER = 3
#: Seconds to wait for all clusters to be Synced (300 clusters on a busy 2-core machine take tens of minutes);
#: ``BENCH_E2E_SETTLE_TIMEOUT`` overrides it.
SETTLE_TIMEOUT = 5400.0
#: The provisioning path; the O2IMS REST API (o2ims_api, optional, serves SMOs) is reported on its own.
PROVISIONING = ("focom", "o2ims", "hostprep", "capi_renderer", "status_watcher")


@dataclass
class Result:
    clusters: int
    synced_s: float
    #: service -> CPU seconds from request to Synced.
    cpu_s: dict[str, float]
    #: service -> resident MiB at Synced.
    rss_mib: dict[str, float]
    messages_per_cluster: float
    #: service -> peak resident MiB (the process's high-water mark, start included).
    rss_peak_mib: dict[str, float]
    #: stream -> messages it holds, per cluster.
    messages_by_stream: dict[str, float]

    @property
    def cpu_s_per_cluster(self) -> float:
        """CPU seconds of the five provisioning services per fulfilled cluster."""
        return sum(v for k, v in self.cpu_s.items() if k in PROVISIONING) / self.clusters


def _under_cprofile(out_dir: Path) -> None:
    """Start every service of the stacks made from now on under cProfile, writing ``out_dir/<name>.prof``."""
    from o2ctl import stack as stack_mod

    plain = stack_mod.service_child

    def profiled(name: str, env: dict[str, str]) -> ChildSpec:
        spec = plain(name, env)
        exe, *rest = spec.argv
        spec.argv = [exe, "-m", "bench.cpuprofile", str(out_dir / f"{name}.prof"), *rest[1:]]
        return spec

    out_dir.mkdir(parents=True, exist_ok=True)
    stack_mod.service_child = profiled


async def measure(n: int, workdir: Path) -> Result:
    options = StackOptions(
        clusters=n,
        hosts_per_cluster=HOSTS_PER_CLUSTER,
        record_objects=False,
        test_env=False,
        latency=os.environ.get("BENCH_E2E_LATENCY", "realistic"),
    )
    async with Stack(workdir / f"n{n}", options) as stack:
        pids: dict[str, int] = {}
        for name in SERVICES:
            pid = stack.child(name).pid
            assert pid is not None, f"{name} is not running"
            pids[name] = pid
        profile = os.environ.get("BENCH_E2E_PROFILE")
        sampler = Sampler(pids, Path(profile), f"n{n}") if profile else None
        if sampler is not None:
            await sampler.start()
        before = {name: procstat.cpu_seconds(pid) for name, pid in pids.items()}
        started = time.perf_counter()
        await stack.submit("scale", allClusters=True)
        try:
            rec = await stack.settled(
                "scale", timeout=float(os.environ.get("BENCH_E2E_SETTLE_TIMEOUT") or SETTLE_TIMEOUT)
            )
        finally:
            if sampler is not None:
                await sampler.stop()
        elapsed = time.perf_counter() - started
        cpu = {name: procstat.cpu_seconds(pid) - before[name] for name, pid in pids.items()}
        if rec["phase"] != "Synced":
            failed = {k: v.get("message") for k, v in rec["children"].items() if v.get("state") != "fulfilled"}
            raise RuntimeError(f"{n} clusters: {rec['phase']}: {list(failed.items())[:3]}")
        rss = {name: procstat.rss_mib(pid) for name, pid in pids.items()}
        by_stream: dict[str, float] = {}
        for spec in ALL_STREAMS:
            by_stream[spec.name] = (await stack.bus.js.stream_info(spec.name)).state.messages / n
    return Result(
        n,
        elapsed,
        cpu,
        {k: v[0] for k, v in rss.items()},
        sum(by_stream.values()),
        {k: v[1] for k, v in rss.items()},
        by_stream,
    )


def figures(results: dict[int, Result]) -> list[Figure]:
    counts = sorted(results)
    lo, hi = counts[0], counts[-1]
    out: list[Figure] = []
    for n in counts:
        r = results[n]
        out.append(
            Figure(
                BENCH,
                f"{n} clusters ({n * HOSTS_PER_CLUSTER} hosts): request → all Synced",
                r.synced_s,
                "s",
                id=f"e2e.synced_s_{n}",
                note="realistic host latency",
            )
        )
        out.append(
            Figure(
                BENCH,
                f"{n} clusters: CPU per cluster, five services",
                r.cpu_s_per_cluster,
                "CPU-s",
                id=f"e2e.cpu_s_per_cluster_{n}",
                note=", ".join(f"{s} {r.cpu_s[s] / n:.3f}" for s in PROVISIONING if s in r.cpu_s),
            )
        )
        for s, v in sorted(r.cpu_s.items()):
            out.append(
                Figure(
                    BENCH, f"{n} clusters: CPU per cluster, {s}", v / n, "CPU-s", id=f"e2e.cpu_s_per_cluster_{s}_{n}"
                )
            )
        out.append(
            Figure(
                BENCH,
                f"{n} clusters: messages per cluster (all streams)",
                r.messages_per_cluster,
                "msg",
                id=f"e2e.messages_per_cluster_{n}",
                note=", ".join(f"{k} {v:.1f}" for k, v in sorted(r.messages_by_stream.items()) if v),
            )
        )
        for name in sorted(r.rss_mib):
            out.append(
                Figure(
                    BENCH,
                    f"RSS {name}, {n} clusters",
                    r.rss_mib[name],
                    "MiB",
                    id=f"e2e.rss_mib_{name}_{n}",
                    note=f"peak {r.rss_peak_mib[name]:.1f} MiB",
                )
            )
    top = results[hi]
    out.append(
        Figure(
            BENCH,
            f"CPU per fulfilled cluster ({hi} clusters), five services",
            top.cpu_s_per_cluster,
            "CPU-s",
            id="e2e.cpu_s_per_cluster",
            note="aim: <= 0.5",
        )
    )
    low = results[lo]
    growths = {name: top.rss_peak_mib[name] / low.rss_peak_mib[name] for name in top.rss_peak_mib}
    worst = max(growths, key=lambda name: growths[name])
    out.append(
        Figure(
            BENCH,
            f"largest service peak RSS growth, {hi} over {lo} clusters",
            growths[worst],
            "x",
            id=f"e2e.rss_growth_{hi}_over_{lo}",
            note=f"aim: <= 1.5; {worst} {low.rss_peak_mib[worst]:.0f} → {top.rss_peak_mib[worst]:.0f} MiB",
        )
    )
    if hi > lo:
        cpu_b = math.log(top.cpu_s_per_cluster * hi / (results[lo].cpu_s_per_cluster * lo)) / math.log(hi / lo)
        out.append(
            Figure(
                BENCH,
                f"CPU growth {lo} → {hi} clusters: b in cpu ∝ n^b",
                cpu_b,
                "",
                id="e2e.cpu_growth_exponent",
                note="1 = linear",
            )
        )
    return out


async def run() -> list[Figure]:
    raw = os.environ.get("BENCH_E2E_COUNTS", "")
    counts = tuple(int(x) for x in raw.split(",") if x.strip()) if raw else COUNTS
    results: dict[int, Result] = {}
    if os.environ.get("BENCH_E2E_CPROFILE"):
        _under_cprofile(Path(os.environ["BENCH_E2E_CPROFILE"]))
    with tempfile.TemporaryDirectory(prefix="e2e-scale-") as tmp:
        for n in counts:
            print(f"{BENCH}: {n} clusters …", file=sys.stderr, flush=True)
            try:
                results[n] = await measure(n, Path(tmp))
            except (AssertionError, RuntimeError) as exc:  # gave up waiting, or not Synced
                print(f"{BENCH}: {n} clusters did not finish: {exc}", file=sys.stderr, flush=True)
                break
            print(f"{BENCH}: {results[n]}", file=sys.stderr, flush=True)
    return figures(results) if results else []


if __name__ == "__main__":
    import asyncio

    for f in asyncio.run(run()):
        print(f)
