"""Composition root of hostprep: settings, bus consumers, background tasks."""

from __future__ import annotations

from services.hostprep import handlers
from services.hostprep.settings import HostprepSettings
from shared.runtime import ServiceRuntime, run_service
from shared.subjects import HOSTPREP_BYOHOST_CONSUMER, HOSTPREP_JOBS_CONSUMER


async def setup(runtime: ServiceRuntime[HostprepSettings]) -> None:
    runtime.consume(HOSTPREP_JOBS_CONSUMER, handlers.not_implemented)
    runtime.consume(HOSTPREP_BYOHOST_CONSUMER, handlers.not_implemented)


def main() -> int:
    return run_service("hostprep", HostprepSettings, setup)
