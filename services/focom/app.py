"""Composition root of focom: settings, bus consumers, background tasks."""

from __future__ import annotations

from services.focom import handlers
from services.focom.settings import FocomSettings
from shared.runtime import ServiceRuntime, run_service
from shared.subjects import FOCOM_CHILD_STATUS_CONSUMER, FOCOM_REQUESTS_CONSUMER


async def setup(runtime: ServiceRuntime[FocomSettings]) -> None:
    runtime.consume(FOCOM_REQUESTS_CONSUMER, handlers.not_implemented)
    runtime.consume(FOCOM_CHILD_STATUS_CONSUMER, handlers.not_implemented)


def main() -> int:
    return run_service("focom", FocomSettings, setup)
