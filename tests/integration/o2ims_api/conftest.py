from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from shared.bus import Bus

from .support import Harness, settings, start


@pytest.fixture
async def harness(tmp_path: Path, bus: Bus, nats_url: str) -> AsyncIterator[Harness]:
    s = settings(tmp_path, nats_url)
    a, runner, base = await start(tmp_path, bus, s)
    async with aiohttp.ClientSession() as session:
        try:
            yield Harness(base, tmp_path / "keys", session, a)
        finally:
            await a.state.stop()
            await runner.cleanup()
