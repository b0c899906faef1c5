"""Sampling profiles of service processes (py-spy, from the ``bench`` extra), and a summary of them.

``Sampler`` runs one ``py-spy record --format raw`` per process for the length of a measurement: the
samples are taken from outside (``--nonblocking``: the process is never paused), so the service's own CPU
accounting is not charged for them. Only samples of running threads are kept (py-spy's default), so the
counts approximate CPU time. ``python -m bench.stacks FILE… [--top N] [--match TEXT]`` prints, per file,
the functions with the most samples on their own (self) and under them (inclusive).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import sys
from collections import Counter
from pathlib import Path

RATE = 50


class Sampler:
    """py-spy on every ``name -> pid`` for as long as it runs; one ``<prefix>-<name>.txt`` per process."""

    def __init__(self, pids: dict[str, int], out_dir: Path, prefix: str, rate: int = RATE) -> None:
        self.pids = pids
        self.out_dir = out_dir
        self.prefix = prefix
        self.rate = rate
        self._procs: list[asyncio.subprocess.Process] = []

    async def start(self) -> None:
        exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name, pid in self.pids.items():
            out = self.out_dir / f"{self.prefix}-{name}.txt"
            argv = [exe, "record", "--format", "raw", "--nonblocking", "-r", str(self.rate), "-p", str(pid)]
            self._procs.append(
                await asyncio.create_subprocess_exec(
                    *argv, "-o", str(out), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
                )
            )

    async def stop(self) -> None:
        """SIGINT makes py-spy write its file and exit."""
        for proc in self._procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
        for proc in self._procs:
            try:
                await asyncio.wait_for(proc.wait(), 60)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        self._procs = []


def load(path: Path) -> Counter[tuple[str, ...]]:
    """Stacks (outermost frame first) and their sample counts from a raw (collapsed) py-spy file."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks[tuple(frames.split(";"))] += int(count)
    return stacks


def summary(stacks: Counter[tuple[str, ...]], top: int, match: str = "") -> str:
    total = sum(stacks.values()) or 1
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    for frames, n in stacks.items():
        if match and not any(match in f for f in frames):
            continue
        own[frames[-1]] += n
        for frame in set(frames):
            under[frame] += n
    lines = [f"{total} samples"]
    for title, counts in (("self", own), ("inclusive", under)):
        lines.append(f"-- {title}")
        lines += [f"{100 * n / total:6.1f}%  {frame}" for frame, n in counts.most_common(top)]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.stacks", description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--match", default="", help="only stacks with a frame containing this text")
    args = p.parse_args(argv)
    for path in args.files:
        print(f"== {path.name}")
        print(summary(load(path), args.top, args.match))


if __name__ == "__main__":
    main(sys.argv[1:])
