from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from shared.bus import Bus
from tests.integration.focom.support import Harness, example_inventory, start_focom
from tests.integration.o2ims_api.receiver import Receiver

from .support import Client, settings, start

MakeSystem = Callable[..., Awaitable[tuple[Client, Harness]]]


@pytest.fixture
async def make_system(tmp_path: Path, bus: Bus, nats_url: str) -> AsyncIterator[MakeSystem]:
    """focom (in-process, o2ims played by the test) and the API over the same bus and inventory."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(**focom_settings: Any) -> tuple[Client, Harness]:
            inventory = example_inventory(tmp_path)
            focom = await start_focom(bus, inventory, **focom_settings)
            a, runner, base = await start(bus, settings(tmp_path, nats_url, inventory), asyncio.Event())
            session = await stack.enter_async_context(aiohttp.ClientSession())
            stack.push_async_callback(runner.cleanup)
            return Client(base, tmp_path / "keys", session, a), focom

        yield make


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    try:
        yield r
    finally:
        await r.stop()
