"""Composition root of o2ims: settings, the engine, bus consumers, background upkeep and the mirror."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from services.o2ims.engine import PrEngine
from services.o2ims.handlers import Handlers
from services.o2ims.record import PrRecord
from services.o2ims.settings import O2imsSettings
from shared.errors import TemporaryError, UnexpectedError, classify
from shared.leases import HostLeases
from shared.runtime import ServiceRuntime, run_service
from shared.store import RecordStore
from shared.subjects import BUCKET_HOSTS, BUCKET_PR, BUCKET_VIPS
from shared.vips import VipLeases

log = structlog.get_logger(__name__)

#: PR records kept decoded (by revision): each message reads its PR's record back, mostly as o2ims wrote it.
RECORD_CACHE = 128


async def _upkeep(engine: PrEngine, settings: O2imsSettings, stop: asyncio.Event) -> None:
    """Once at start, publish outboxes a crash left behind; then purge old tombstones periodically.

    A bus or KV failure here (NATS restarting) is retried on the next round: this is housekeeping,
    and it must not take the service down with it.
    """
    swept = False
    delay = settings.purge_interval
    while not stop.is_set():
        try:
            if not swept:
                flushed = await engine.sweep()
                swept = True
                if flushed:
                    log.info("outboxes_flushed", records=flushed)
            if settings.tombstone_retention > 0:
                purged = await engine.purge_tombstones(settings.tombstone_retention)
                if purged:
                    log.info("tombstones_purged", records=purged)
            delay = settings.purge_interval
        except Exception as exc:
            err = classify(exc)
            if not isinstance(err, TemporaryError):
                raise
            delay = min(5.0, settings.purge_interval)
            if isinstance(err, UnexpectedError):  # a bug, not NATS restarting: keep the traceback
                log.error("upkeep_retry", reason=err.reason, error=err.message, retry_in=delay, exc_info=exc)
            else:
                log.warning("upkeep_retry", reason=err.reason, error=err.message, retry_in=delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)  # the upkeep period, not a sync


async def setup(runtime: ServiceRuntime[O2imsSettings]) -> None:
    settings, bus = runtime.settings, runtime.bus
    store = RecordStore(await bus.kv(BUCKET_PR), PrRecord, cache=RECORD_CACHE)
    engine = PrEngine(
        bus,
        store,
        HostLeases(await bus.kv(BUCKET_HOSTS)),
        settings.policy(),
        vips=VipLeases(await bus.kv(BUCKET_VIPS), ()),
    )
    for spec, handlers in Handlers(engine).consumers():
        runtime.consume(spec, *handlers)
    runtime.background(_upkeep(engine, settings, runtime.stop), "o2ims-upkeep")
    if settings.mirror_enabled:
        from services.o2ims.mirror import start_mirror

        await start_mirror(runtime, store)


def main() -> int:
    return run_service("o2ims", O2imsSettings, setup)
