"""Composition root of status_watcher: settings and the (not yet written) watch task."""

from __future__ import annotations

from services.status_watcher.settings import StatusWatcherSettings
from shared.runtime import ServiceRuntime, run_service


async def setup(runtime: ServiceRuntime[StatusWatcherSettings]) -> None:
    """No watches yet: the service connects, declares the topology and serves health."""


def main() -> int:
    return run_service("status_watcher", StatusWatcherSettings, setup)
