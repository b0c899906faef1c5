"""A small process supervisor for ``o2ctl up``: start children, restart them on crash, stop them all.

Each child's stderr and stdout go through the supervisor into its own log file, so readiness
can be read from what the child itself says (a JSON line with a given ``event``, or a JSON line
on stdout) instead of guessed. A child that keeps crashing is restarted with a capped backoff;
``stop()`` sends SIGTERM to every child, waits, then SIGKILLs what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import structlog

log = structlog.get_logger(__name__)

ReadyTest = Callable[[dict[str, Any]], bool]


def event_is(name: str) -> ReadyTest:
    """Ready when the child logs a JSON line whose ``event`` is ``name``."""
    return lambda rec: rec.get("event") == name


def has_key(key: str) -> ReadyTest:
    """Ready when the child prints a JSON line that has ``key`` (e.g. a sandbox readiness line)."""
    return lambda rec: key in rec


@dataclass
class ChildSpec:
    name: str
    argv: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)
    ready: ReadyTest | None = None
    restart: bool = True
    cwd: Path | None = None


@dataclass
class Child:
    spec: ChildSpec
    log_path: Path
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    info: dict[str, Any] = field(default_factory=dict)
    started_at: float = 0.0
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc and self.proc.returncode is None else None


class Supervisor:
    def __init__(self, log_dir: Path, *, max_backoff: float = 10.0) -> None:
        self.log_dir = log_dir
        self.children: dict[str, Child] = {}
        self.max_backoff = max_backoff
        self._stopping = False
        self._watchers: list[asyncio.Task[None]] = []
        self.on_change: Callable[[], None] | None = None

    async def start(self, spec: ChildSpec) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        child = Child(spec, self.log_dir / f"{spec.name}.log")
        self.children[spec.name] = child
        await self._spawn(child)
        self._watchers.append(asyncio.create_task(self._watch(child), name=f"watch:{spec.name}"))
        return child

    async def _spawn(self, child: Child) -> None:
        spec = child.spec
        child.ready = asyncio.Event()
        child.proc = await asyncio.create_subprocess_exec(
            *spec.argv,
            env={**os.environ, **spec.env},
            cwd=spec.cwd,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # Ctrl-C in the terminal reaches the supervisor, which stops children in order
        )
        child.started_at = time.monotonic()
        out = child.log_path.open("a", encoding="utf-8")
        assert child.proc.stdout is not None and child.proc.stderr is not None
        child._tasks = [
            asyncio.create_task(self._pump(child, child.proc.stdout, out)),
            asyncio.create_task(self._pump(child, child.proc.stderr, out)),
        ]
        if self.on_change:
            self.on_change()

    async def _pump(self, child: Child, stream: asyncio.StreamReader, out: TextIO) -> None:
        try:
            async for raw in stream:
                line = raw.decode(errors="replace")
                out.write(line)
                out.flush()
                if child.spec.ready is None or child.ready.is_set():
                    continue
                with contextlib.suppress(ValueError):
                    rec = json.loads(line)
                    if isinstance(rec, dict) and child.spec.ready(rec):
                        child.info = rec
                        child.ready.set()
        finally:
            with contextlib.suppress(Exception):
                out.close()

    async def _watch(self, child: Child) -> None:
        backoff = 0.5
        while True:
            assert child.proc is not None
            code = await child.proc.wait()
            await asyncio.gather(*child._tasks, return_exceptions=True)
            if self._stopping or not child.spec.restart:
                return
            # A child that ran a while before dying gets a fresh backoff.
            if time.monotonic() - child.started_at > 30:
                backoff = 0.5
            log.warning("child_exited", child=child.spec.name, code=code, restart_in=backoff)
            await asyncio.sleep(backoff)  # restart backoff, not synchronisation
            if self._stopping:
                return
            backoff = min(backoff * 2, self.max_backoff)
            child.restarts += 1
            await self._spawn(child)

    async def wait_ready(self, name: str, timeout: float) -> dict[str, Any]:
        child = self.children[name]
        waiter = asyncio.create_task(child.ready.wait())
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            tail = child.log_path.read_text(errors="replace").splitlines()[-15:] if child.log_path.exists() else []
            raise TimeoutError(f"{name} not ready after {timeout:.0f}s; last log lines:\n" + "\n".join(tail)) from None
        return child.info

    def kill(self, name: str) -> None:
        """SIGKILL one child (chaos tests); the watcher restarts it."""
        child = self.children[name]
        if child.proc and child.proc.returncode is None:
            child.proc.kill()

    async def stop(self, timeout: float = 20.0) -> None:
        self._stopping = True
        procs = [c.proc for c in reversed(list(self.children.values())) if c.proc and c.proc.returncode is None]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        if procs:
            _done, pending = await asyncio.wait([asyncio.create_task(p.wait()) for p in procs], timeout=timeout)
            for proc in procs:
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            for task in pending:
                with contextlib.suppress(Exception):
                    await task
        for watcher in self._watchers:
            watcher.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        for child in self.children.values():
            await asyncio.gather(*child._tasks, return_exceptions=True)
