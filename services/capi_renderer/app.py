"""Composition root of capi_renderer: settings, bus consumers, background tasks."""

from __future__ import annotations

from services.capi_renderer import handlers
from services.capi_renderer.settings import CapiRendererSettings
from shared.runtime import ServiceRuntime, run_service
from shared.subjects import CAPI_JOBS_CONSUMER


async def setup(runtime: ServiceRuntime[CapiRendererSettings]) -> None:
    runtime.consume(CAPI_JOBS_CONSUMER, handlers.not_implemented)


def main() -> int:
    return run_service("capi_renderer", CapiRendererSettings, setup)
