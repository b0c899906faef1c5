"""PNG charts of a benchmark run (matplotlib, from the ``bench`` extra), drawn from the figures' stable ids.

Each chart is drawn only when its figures are in the run: wall time against hosts (hostprep and
Ansible), CPU per host prepared by process, CPU per cluster against clusters (by service) and service
memory against clusters, and the CDF of status latency.
"""

from __future__ import annotations

import re
from pathlib import Path

from bench.report import SERIES, Figure

#: The provisioning services whose CPU the e2e chart stacks, and the optional SMO-facing APIs drawn beside them.
E2E_SERVICES = ("o2ims", "hostprep", "status_watcher", "capi_renderer", "focom")
E2E_APIS = ("o2ims_api", "focom_api")


def _series(figures: list[Figure], prefix: str) -> list[tuple[int, float]]:
    """(n, value) of every figure whose id is ``<prefix><n>``, by n."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)$")
    points = [(int(m.group(1)), f.ours) for f in figures if (m := pattern.match(f.key))]
    return sorted(points)


def draw(figures: list[Figure], out_dir: Path) -> list[Path]:
    """Write the charts this run has data for; returns their paths (none without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def save(fig: object, name: str) -> None:
        path = out_dir / name
        fig.savefig(path, dpi=110, bbox_inches="tight")  # type: ignore[attr-defined]
        plt.close(fig)  # type: ignore[arg-type]
        written.append(path)

    ours, peer = _series(figures, "hostprep.wall_s_"), _series(figures, "ansible.wall_s_")
    if ours:
        fig, ax = plt.subplots(figsize=(6.4, 4))
        ax.plot(*zip(*ours, strict=True), "o-", label="hostprep (one replica)")
        if peer:
            ax.plot(*zip(*peer, strict=True), "s--", label="ansible-playbook (forks = hosts)")
        ax.set_xscale("log")
        ax.set_xlabel("hosts prepared at once")
        ax.set_ylabel("wall time (s)")
        ax.set_ylim(bottom=0)
        one = dict(ours).get(1)
        if one is not None:
            goals = [(n, factor * one) for n, factor in ((200, 1.3), (1000, 2.0))]
            ax.plot(*zip(*goals, strict=True), "k*", markersize=9, label="goals: 1.3x at 200, 2x at 1,000")
        ax.set_title("Host preparation, realistic host latency")
        ax.grid(True, alpha=0.3)
        ax.legend()
        save(fig, "hostprep_wall.png")

    # CPU per host prepared: hostprep, the sandbox serving the hosts, and Ansible's controller.
    per_host = re.compile(r"hostprep\.cpu_per_host_ms_(\d+)$")
    mine = sorted((int(m.group(1)), f.ours, f.peer_value) for f in figures if (m := per_host.match(f.key)))
    controller = _series(figures, "ansible.cpu_per_host_ms_")
    if mine:
        fig, ax = plt.subplots(figsize=(6.4, 4))
        ax.plot([n for n, _, _ in mine], [v for _, v, _ in mine], "o-", label="hostprep")
        sandbox = [(n, v) for n, _, v in mine if v is not None]
        if sandbox:
            ax.plot(*zip(*sandbox, strict=True), "^:", label="sandbox (SSH hosts, emulator, controllers)")
        if controller:
            ax.plot(*zip(*controller, strict=True), "s--", label="ansible-playbook controller")
        ax.set_xscale("log")
        ax.set_xlabel("hosts prepared at once")
        ax.set_ylabel("CPU per host (ms)")
        ax.set_ylim(bottom=0)
        ax.set_title("CPU per host prepared, by process")
        ax.grid(True, alpha=0.3)
        ax.legend()
        save(fig, "hostprep_cpu_per_host.png")

    cpu = _series(figures, "e2e.cpu_s_per_cluster_")
    if cpu:
        # One stacked bar per cluster count: each provisioning service's share of the CPU per cluster.
        counts = [n for n, _ in cpu]
        fig, ax = plt.subplots(figsize=(6.4, 4))
        positions = range(len(counts))
        bottom = [0.0] * len(counts)
        for service in E2E_SERVICES:
            by_n = dict(_series(figures, f"e2e.cpu_s_per_cluster_{service}_"))
            heights = [by_n.get(n, 0.0) for n in counts]
            ax.bar(positions, heights, bottom=bottom, label=service, width=0.6)
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        ax.axhline(0.5, color="grey", linestyle=":", label="goal: 0.5 CPU-s")
        ax.set_xticks(list(positions), [str(n) for n in counts])
        ax.set_xlabel("clusters in one request (3 hosts each)")
        ax.set_ylabel("CPU seconds per cluster")
        ax.set_ylim(0, max(0.5, *bottom) * 1.45)  # room above the bars for the legend
        ax.set_title("Our CPU per fulfilled cluster, by service")
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize="small", ncol=3, loc="upper center")
        save(fig, "e2e_cpu_per_cluster.png")

    rss = {service: _series(figures, f"e2e.rss_mib_{service}_") for service in (*E2E_SERVICES, *E2E_APIS)}
    if any(len(points) > 1 for points in rss.values()):
        fig, ax = plt.subplots(figsize=(6.4, 4))
        for service, points in rss.items():
            if points:
                ax.plot(*zip(*points, strict=True), "o-", label=service)
        ax.set_xscale("log")
        ax.set_xlabel("clusters in one request (3 hosts each)")
        ax.set_ylabel("resident memory at Synced (MiB)")
        ax.set_ylim(bottom=0)
        ax.set_title("Service memory against clusters")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
        save(fig, "e2e_rss.png")

    latency = {name: values for name, values in SERIES.items() if name.startswith("status.") and values}
    if latency:
        fig, ax = plt.subplots(figsize=(6.4, 4))
        for name, values in sorted(latency.items()):
            ordered = sorted(values)
            ax.step(
                ordered,
                [(i + 1) / len(ordered) for i in range(len(ordered))],
                where="post",
                label=name.removeprefix("status.").replace("_latency_ms", ".status"),
            )
        ax.set_xlabel("status change in the API → event (ms)")
        ax.set_ylabel("fraction of changes")
        ax.set_title("CDF of status latency")
        ax.grid(True, alpha=0.3)
        ax.legend()
        save(fig, "status_latency_cdf.png")
    return written
