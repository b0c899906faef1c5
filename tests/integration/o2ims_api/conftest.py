from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from shared.bus import Bus

from .receiver import Receiver
from .support import Harness, settings, start

MakeHarness = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def make_harness(tmp_path: Path, bus: Bus, nats_url: str) -> AsyncIterator[MakeHarness]:
    async with contextlib.AsyncExitStack() as stack:

        async def make(**extra: Any) -> Harness:
            s = settings(tmp_path, nats_url, **extra)
            a, runner, base = await start(tmp_path, bus, s, asyncio.Event())
            session = await stack.enter_async_context(aiohttp.ClientSession())
            stack.push_async_callback(runner.cleanup)
            stack.push_async_callback(a.state.stop)
            return Harness(base, tmp_path / "keys", session, a)

        yield make


@pytest.fixture
async def harness(make_harness: MakeHarness) -> Harness:
    return await make_harness()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    try:
        yield r
    finally:
        await r.stop()


@pytest.fixture
async def receiver2() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    try:
        yield r
    finally:
        await r.stop()
