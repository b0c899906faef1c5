"""Helpers to run service processes in tests and read their structured log lines."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]


class ServiceProcess:
    def __init__(self, module: str, env: dict[str, str]) -> None:
        self.module = module
        self.env = {**os.environ, "O2_LOG_FORMAT": "json", "O2_HTTP_PORT": "0", **env}
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._reader: asyncio.Task[None] | None = None
        self._events: dict[str, asyncio.Event] = {}

    async def start(self) -> ServiceProcess:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self.module,
            cwd=REPO,
            env=self.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        async for line in self.proc.stderr:
            text = line.decode(errors="replace").rstrip()
            self.raw.append(text)
            try:
                rec = json.loads(text)
            except ValueError:
                continue
            if isinstance(rec, dict):
                self.lines.append(rec)
                ev = self._events.get(str(rec.get("event")))
                if ev:
                    ev.set()

    async def wait_event(self, name: str, timeout: float = 30.0) -> dict[str, Any]:
        ev = self._events.setdefault(name, asyncio.Event())
        for rec in self.lines:
            if rec.get("event") == name:
                return rec
        waiter = asyncio.create_task(ev.wait())
        assert self.proc is not None
        exited = asyncio.create_task(self.proc.wait())
        _done, _ = await asyncio.wait({waiter, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        exited.cancel()
        for rec in self.lines:
            if rec.get("event") == name:
                return rec
        raise AssertionError(f"{self.module}: no {name!r} log line; stderr:\n" + "\n".join(self.raw[-30:]))

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        if self._reader:
            await asyncio.wait_for(self._reader, 5)
        return code

    async def kill(self) -> None:
        if self.proc and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self._reader:
            self._reader.cancel()
