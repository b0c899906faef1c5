"""The sandbox of the host-preparation benchmark as processes of its own: the API emulator and the hosts.

Real hosts and a real API server run on their own machines. In one process with the benchmark, the
emulator, the simulated controllers and every sandbox host shared one interpreter (one core at most),
and that interpreter, not hostprep, set the wall time of a large fan-out. Here the emulator with its
simulated CAPI/BYOH controllers (``python -m sandbox.kubeapi --simulate-capi``) and the hosts
(``python -m sandbox.hosts``, one process per core for pools of hundreds) are children of the
benchmark; their CPU seconds are read from ``/proc`` and reported as the sandbox's, apart from
hostprep's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from bench import procstat
from sandbox.hosts.latency import LatencyProfile
from sandbox.hosts.pool import host_addresses

#: How long a child may take to print its readiness line (a thousand host keys are generated first).
START_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0


class Child:
    """One sandbox process: started until its JSON readiness line, stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, name: str, argv: list[str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    async def start(self) -> dict[str, Any]:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop(); the child writes to it
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, *self.argv, stdout=asyncio.subprocess.PIPE, stderr=self._log
        )
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), START_TIMEOUT)
            ready = json.loads(line) if line else None
        except (TimeoutError, ValueError):
            ready = None
        if not isinstance(ready, dict):
            proc = self.proc
            await self.stop()
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} did not start (exit {proc.returncode}); its log ends:\n{tail}")
        return ready

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} not started"
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """This child's CPU seconds so far (0 once it has exited: measure while it runs)."""
        try:
            return procstat.cpu_seconds(self.pid)
        except (FileNotFoundError, ProcessLookupError):
            return 0.0

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.returncode is None:
            proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


async def start_emulator(workdir: Path) -> tuple[Child, Path]:
    """The API emulator with the simulated CAPI/BYOH controllers; returns it and its admin kubeconfig."""
    kubeconfig = workdir / "kubeconfig"
    child = Child(
        "the API emulator",
        ["-m", "sandbox.kubeapi", "--simulate-capi", "--kubeconfig-out", str(kubeconfig)],
        workdir / "kubeapi.log",
    )
    await child.start()
    return child, kubeconfig


def host_processes(count: int) -> int:
    """Processes for a pool of ``count`` hosts: one per core, each with at least 100 hosts.

    ``BENCH_HOST_PROCESSES`` overrides it (1 puts every host in one process, as before).
    """
    raw = os.environ.get("BENCH_HOST_PROCESSES", "")
    if raw:
        return max(1, min(int(raw), count))
    return max(1, min(os.cpu_count() or 1, count // 100))


@dataclass(frozen=True)
class PoolHost:
    """What the benchmark needs of one sandbox host: the inventory entry's fields."""

    host_id: str
    host_name: str
    ip: str
    port: int
    key_file: str


class HostPool:
    """A pool of SSH sandbox hosts served by child processes (``python -m sandbox.hosts``), each a shard.

    Shards take consecutive host numbers and addresses, so ids and ByoHost names stay unique; their
    ``known_hosts`` files are joined into one.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        count: int,
        first_address: str,
        agent_binary_url: str,
        latency: LatencyProfile,
        processes: int | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.known_hosts_path = state_dir / "known_hosts"
        self.hosts: list[PoolHost] = []
        self._inventory: list[dict[str, Any]] = []
        shards = processes or host_processes(count)
        addresses = host_addresses(first_address, count)
        self.children: list[Child] = []
        first = 0
        for k in range(shards):
            size = count // shards + (1 if k < count % shards else 0)
            self.children.append(
                Child(
                    f"sandbox hosts {first + 1}-{first + size}",
                    [
                        "-m",
                        "sandbox.hosts",
                        "--count",
                        str(size),
                        "--first-index",
                        str(first + 1),
                        "--state-dir",
                        str(state_dir / f"p{k}"),
                        "--first-address",
                        addresses[first],
                        "--agent-binary-url",
                        agent_binary_url,
                        "--latency",
                        json.dumps(latency.to_json()),
                        # Nothing reads the hosts' state files while a benchmark runs: written once, at the stop.
                        "--save-interval",
                        "3600",
                    ],
                    state_dir.parent / f"{state_dir.name}-hosts{k}.log",
                )
            )
            first += size

    async def start(self) -> HostPool:
        try:
            readies = await asyncio.gather(*(child.start() for child in self.children))
        except BaseException:
            await self.stop()
            raise
        known_hosts: list[str] = []
        for ready in readies:
            doc = json.loads(await asyncio.to_thread(Path(str(ready["inventory"])).read_text))
            self._inventory.extend(doc["hosts"])
            known_hosts.append(await asyncio.to_thread(Path(str(ready["known_hosts"])).read_text))
        await asyncio.to_thread(self.known_hosts_path.write_text, "".join(known_hosts))
        self.hosts = [
            PoolHost(
                str(h["host_id"]), str(h["host_name"]), str(h["host_ip"]), int(h["ssh_port"]), str(h["ssh_key_file"])
            )
            for h in self._inventory
        ]
        return self

    def inventory_hosts(self) -> list[dict[str, Any]]:
        return [dict(h) for h in self._inventory]

    def cpu_seconds(self) -> float:
        return sum(child.cpu_seconds() for child in self.children)

    async def stop(self) -> None:
        await asyncio.gather(*(child.stop() for child in self.children))
