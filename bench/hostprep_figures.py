"""The host-preparation fan-out figures: one run's measurements, and the figures (with stable ids) made of them.

Kept apart from the benchmark's driver (``bench.hostprep_fanout``) so that the ids and ratios are unit-tested
without starting a sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.report import Figure

BENCH = "hostprep_fanout"


@dataclass
class Run:
    """One measurement: wall seconds, our (or the controller's) CPU seconds, the sandbox's CPU seconds."""

    hosts: int
    wall: float
    cpu: float
    sandbox_cpu: float
    peak_rss_mib: float = 0.0
    base_rss_mib: float = 0.0
    peak_fds: int = 0
    #: The machine's 1-minute load average when the run ended: wall times mean little without it.
    load: float = 0.0


def figures(ours: dict[int, Run], peer: dict[int, Run], concurrency: int) -> list[Figure]:
    """The fan-out figures, with stable ids; ratios are against one host."""
    out: list[Figure] = []
    one = ours.get(1)
    for n, r in sorted(ours.items()):
        out.append(
            Figure(
                BENCH,
                f"hostprep, {n} hosts: wall time",
                r.wall,
                "s",
                id=f"hostprep.wall_s_{n}",
                peer=f"ansible-playbook, forks={n}" if n in peer else "",
                peer_value=peer[n].wall if n in peer else None,
                note=f"realistic latency profile, load average {r.load:.1f}",
            )
        )
        if one is not None and n != 1:
            out.append(
                Figure(
                    BENCH,
                    f"hostprep, {n} hosts vs 1 host: wall-time ratio",
                    r.wall / one.wall,
                    "x",
                    id=f"hostprep.wall_ratio_{n}",
                    note=f"max_parallel_hosts={concurrency}",
                )
            )
        out.append(
            Figure(
                BENCH,
                f"hostprep, {n} hosts: CPU per host",
                1000 * r.cpu / n,
                "ms",
                id=f"hostprep.cpu_per_host_ms_{n}",
                peer="sandbox (hosts+emulator+controllers)",
                peer_value=1000 * r.sandbox_cpu / n,
            )
        )
    for n, r in sorted(peer.items()):
        out.append(
            Figure(
                BENCH,
                f"ansible, {n} hosts: wall time",
                r.wall,
                "s",
                id=f"ansible.wall_s_{n}",
                note=f"forks={n}, load average {r.load:.1f}",
            )
        )
        out.append(
            Figure(
                BENCH,
                f"ansible, {n} hosts: controller CPU per host",
                1000 * r.cpu / n,
                "ms",
                id=f"ansible.cpu_per_host_ms_{n}",
                note="ansible-playbook + forks + ssh",
            )
        )
        if 1 in peer and n != 1:
            out.append(
                Figure(
                    BENCH,
                    f"ansible, {n} hosts vs 1 host: wall-time ratio",
                    r.wall / peer[1].wall,
                    "x",
                    id=f"ansible.wall_ratio_{n}",
                )
            )
    # The headline per-host CPU figures: the largest pool both sides ran (per-run fixed costs amortised).
    common = sorted(set(ours) & set(peer) - {1}) or sorted(set(ours) & set(peer))
    if common:
        n = common[-1]
        mine, theirs = 1000 * ours[n].cpu / n, 1000 * peer[n].cpu / n
        out.append(
            Figure(
                BENCH,
                f"CPU per host, {n} hosts: hostprep vs ansible controller",
                mine,
                "ms",
                id="hostprep.cpu_per_host_ms",
                peer="ansible controller",
                peer_value=theirs,
                note="aim: ratio <= 0.2",
            )
        )
        out.append(
            Figure(BENCH, f"ansible controller CPU per host, {n} hosts", theirs, "ms", id="ansible.cpu_per_host_ms")
        )
    big = max(ours, default=1)
    if big > 1:
        r = ours[big]
        grown = max(r.peak_rss_mib - r.base_rss_mib, 0.0)
        out.append(
            Figure(
                BENCH,
                f"hostprep memory per host in flight ({big} hosts)",
                1024 * grown / big,
                "KiB",
                id="hostprep.rss_kib_per_connection",
                note=f"peak RSS {r.peak_rss_mib:.0f} MiB, idle {r.base_rss_mib:.0f} MiB",
            )
        )
        out.append(
            Figure(BENCH, f"hostprep peak open fds ({big} hosts)", float(r.peak_fds), "fds", id="hostprep.peak_fds")
        )
    return out
