"""Per-process cost from ``/proc``: CPU seconds, resident memory, open file descriptors.

Benchmarks run our services as their own processes and the sandbox elsewhere, so each side's cost is
read separately here instead of being inferred from wall time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU seconds of ``pid`` (plus its reaped children's with ``children``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICK


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def rss_mib(pid: int) -> tuple[float, float]:
    """(current, peak) resident set size in MiB (``VmRSS``, ``VmHWM``)."""
    status = _status(pid)
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_of_matching(marker: str) -> float:
    """Summed CPU seconds of every live process whose command line contains ``marker``.

    For processes that outlive their parent's accounting: ssh ControlPersist masters detach from
    ansible-playbook, so their CPU never reaches its rusage.
    """
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "cmdline").read_bytes():
                total += cpu_seconds(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # it exited meanwhile
    return total


@dataclass
class Sample:
    """What a poller saw of one process during a measurement."""

    peak_fds: int = 0
    peak_rss_mib: float = 0.0

    def take(self, pid: int) -> None:
        try:
            self.peak_fds = max(self.peak_fds, open_fds(pid))
            self.peak_rss_mib = max(self.peak_rss_mib, rss_mib(pid)[0])
        except FileNotFoundError:
            pass
