"""The HTTP face of a service: ``/healthz`` (alive), ``/readyz`` (NATS connected, consumers bound)
and ``/metrics`` (Prometheus text), on a configurable loopback port by default."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

ReadinessCheck = Callable[[], tuple[bool, str]]


class HealthServer:
    def __init__(self, *, host: str, port: int, metrics: Callable[[], bytes]) -> None:
        self.host = host
        self.port = port
        self._metrics = metrics
        self._checks: dict[str, ReadinessCheck] = {}
        self._runner: web.AppRunner | None = None

    def add_check(self, name: str, check: ReadinessCheck) -> None:
        self._checks[name] = check

    def readiness(self) -> tuple[bool, dict[str, str]]:
        results = {name: check() for name, check in self._checks.items()}
        return all(ok for ok, _ in results.values()), {n: detail for n, (_, detail) in results.items()}

    async def _healthz(self, _req: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, _req: web.Request) -> web.Response:
        ok, details = self.readiness()
        return web.json_response({"ready": ok, "checks": details}, status=200 if ok else 503)

    async def _metrics_handler(self, _req: web.Request) -> web.Response:
        resp = web.Response(body=self._metrics())
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return resp

    async def start(self) -> None:
        if self.port < 0:
            return
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics_handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        addresses = self._runner.addresses
        if addresses:
            self.port = int(addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
