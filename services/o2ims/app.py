"""Composition root of o2ims: settings, bus consumers, background tasks."""

from __future__ import annotations

from services.o2ims import handlers
from services.o2ims.settings import O2imsSettings
from shared.runtime import ServiceRuntime, run_service
from shared.subjects import (
    O2IMS_CAPI_EVENTS_CONSUMER,
    O2IMS_CLUSTER_STATUS_CONSUMER,
    O2IMS_EVENTS_CONSUMER,
    O2IMS_REQUESTS_CONSUMER,
    O2IMS_TIMERS_CONSUMER,
)


async def setup(runtime: ServiceRuntime[O2imsSettings]) -> None:
    runtime.consume(O2IMS_REQUESTS_CONSUMER, handlers.not_implemented)
    runtime.consume(O2IMS_EVENTS_CONSUMER, handlers.not_implemented)
    runtime.consume(O2IMS_CAPI_EVENTS_CONSUMER, handlers.not_implemented)
    runtime.consume(O2IMS_CLUSTER_STATUS_CONSUMER, handlers.not_implemented)
    runtime.consume(O2IMS_TIMERS_CONSUMER, handlers.not_implemented)


def main() -> int:
    return run_service("o2ims", O2imsSettings, setup)
