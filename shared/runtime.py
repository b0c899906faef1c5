"""Running a service process: settings, logging, signals, bus, consumers, health, drain, exit code.

Every ``services/<name>/app.py`` calls ``run_service`` with its settings class and a ``setup``
coroutine that registers consumers and background tasks on the ``ServiceRuntime``. Exit codes:
0 after a clean stop (SIGTERM/SIGINT), 1 when the service could not run (e.g. NATS never
became reachable, a background task died), 2 for invalid settings (the message names the field).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, Generic, TypeVar

import structlog

from shared.bus import Bus
from shared.connect import connect, ensure_buckets, ensure_streams
from shared.dispatch import PayloadHandler, dispatch
from shared.errors import InputError, ServiceError
from shared.health import HealthServer
from shared.logging import configure_logging
from shared.payloads import Payload
from shared.settings import ServiceSettings, load_settings
from shared.subjects import ConsumerSpec

log = structlog.get_logger(__name__)
S = TypeVar("S", bound=ServiceSettings)

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2


class ServiceRuntime(Generic[S]):
    """What ``setup`` gets: the settings, the bus, and places to hang consumers and tasks."""

    def __init__(self, name: str, settings: S, bus: Bus, health: HealthServer, stop: asyncio.Event) -> None:
        self.name = name
        self.settings = settings
        self.bus = bus
        self.health = health
        self.stop = stop
        self._tasks: list[asyncio.Task[None]] = []
        self._closers: list[Callable[[], Awaitable[None]]] = []

    def consume(self, spec: ConsumerSpec, *handlers: PayloadHandler, ignore: Iterable[type[Payload]] = ()) -> None:
        """Serve ``spec`` with typed handlers, one per payload type (see ``shared.dispatch``)."""
        self.bus.consumer(spec, dispatch(*handlers, ignore=ignore))

    def background(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run a long-lived task; if it dies, the service stops (and its supervisor restarts it)."""
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        self._closers.append(closer)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self.stop.is_set():
            return
        exc = task.exception()
        if exc is not None:
            log.error("background_task_failed", task=task.get_name(), exc_info=exc)
            self.failed = True
            self.stop.set()

    failed = False

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for closer in reversed(self._closers):
            with contextlib.suppress(Exception):
                await closer()


async def _serve(
    name: str, settings: S, setup: Callable[[ServiceRuntime[S]], Awaitable[None]], stop: asyncio.Event
) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    connecting = asyncio.create_task(connect(settings, name=name))
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({connecting, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if not connecting.done():
        connecting.cancel()
        await asyncio.gather(connecting, return_exceptions=True)
        return EXIT_OK
    stopper.cancel()
    nc = connecting.result()  # raises TemporaryError when NATS never came up

    bus = Bus(nc, source=name)
    health = HealthServer(host=settings.http_host, port=settings.http_port, metrics=bus.metrics.render)
    runtime = ServiceRuntime(name, settings, bus, health, stop)
    try:
        await ensure_streams(bus.js, replicas=settings.stream_replicas)
        await ensure_buckets(bus.js, replicas=settings.stream_replicas)
        await setup(runtime)
        for consumer in bus.consumers:
            await consumer.start()
        health.add_check("nats", lambda: (bus.connected, "connected" if bus.connected else "disconnected"))
        health.add_check(
            "consumers",
            lambda: (
                all(c.bound for c in bus.consumers),
                ",".join(f"{c.spec.durable}={'bound' if c.bound else 'unbound'}" for c in bus.consumers),
            ),
        )
        await health.start()
        log.info("service_ready", http_port=health.port, consumers=[c.spec.durable for c in bus.consumers])
        await stop.wait()
        log.info("service_stopping")
    finally:
        await bus.stop_consumers(settings.drain_timeout)
        await runtime.close()
        await bus.close()
        await health.stop()
    log.info("service_stopped")
    return EXIT_FAILURE if runtime.failed else EXIT_OK


def run_service(name: str, settings_cls: type[S], setup: Callable[[ServiceRuntime[S]], Awaitable[None]]) -> int:
    """Build settings, configure logging and run until stopped; returns the process exit code."""
    try:
        settings = load_settings(settings_cls)
    except InputError as exc:
        print(f"{name}: {exc}", file=sys.stderr)  # noqa: T201 - logging is not configured yet
        return EXIT_CONFIG
    configure_logging(level=settings.log_level, fmt=settings.log_format, service=name)
    try:
        return asyncio.run(_serve(name, settings, setup, asyncio.Event()))
    except ServiceError as exc:
        log.error("service_failed", reason=exc.reason, error=exc.message)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK
