"""Fixtures of the hostprep integration tests: a harness factory over bus, emulator, simulators and sandbox hosts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox.capi import CapiSimulators
from sandbox.hosts import SandboxHostPool
from shared.bus import Bus
from tests.integration.hostprep.harness import Harness, settings_for, write_inventory

HarnessFactory = Callable[..., Awaitable[tuple[Harness, SandboxHostPool]]]


@pytest.fixture
async def hostprep(
    bus: Bus,
    sandbox_hosts: Callable[..., Awaitable[SandboxHostPool]],
    kubeconfig: Path,
    capi_sim: CapiSimulators,
    tmp_path: Path,
) -> AsyncIterator[HarnessFactory]:
    """``await hostprep(count, pool_kw={...}, inventory={host_id: {...}}, **settings)`` → (harness, pool)."""
    started: list[Harness] = []

    async def make(
        count: int,
        *,
        pool_kw: dict[str, Any] | None = None,
        inventory: dict[str, dict[str, Any]] | None = None,
        **settings: Any,
    ) -> tuple[Harness, SandboxHostPool]:
        pool = await sandbox_hosts(count=count, **(pool_kw or {}))
        path = write_inventory(pool, tmp_path / f"input-{len(started)}.json", **(inventory or {}))
        harness = await Harness.start(bus, settings_for(pool, kubeconfig, path, **settings))
        started.append(harness)
        return harness, pool

    yield make
    for harness in started:
        await harness.close()
