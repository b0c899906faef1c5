"""A local HTTP receiver of notifications: answers the GET probe, records every POST, can be made to fail."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web


class Receiver:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        #: The raw body and headers of every accepted POST, beside ``received``.
        self.raw: list[tuple[bytes, dict[str, str]]] = []
        self.probes = 0
        #: Status to answer POSTs with (set to 500 to play a broken callback).
        self.status = 204
        self.refused = 0
        #: While set, POSTs are recorded but not answered (a delivery held in flight).
        self.hold: asyncio.Event | None = None
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self, port: int = 0) -> Receiver:
        app = web.Application()
        app.router.add_get("/notify", self._probe)
        app.router.add_post("/notify", self._post)
        # A held or repeated delivery must not keep the test waiting for aiohttp's 60 s graceful shutdown.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/notify"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _probe(self, _request: web.Request) -> web.Response:
        self.probes += 1
        return web.Response(status=204)

    async def _post(self, request: web.Request) -> web.Response:
        data = await request.read()
        body = json.loads(data)
        async with self._changed:
            if self.status >= 300:
                self.refused += 1
                self._changed.notify_all()
                return web.Response(status=self.status)
            self.received.append(body)
            self.raw.append((data, dict(request.headers)))
            self._changed.notify_all()
        if self.hold is not None:
            await self.hold.wait()
        return web.Response(status=self.status)

    async def wait(self, check: Callable[[list[dict[str, Any]]], Any], timeout: float = 60.0) -> Any:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: check(self.received)), timeout)
            return check(self.received)

    async def wait_refused(self, n: int, timeout: float = 60.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.refused >= n), timeout)
