"""``bucket_keys``: every key written before the call, whatever the watcher's early "all delivered" marker says."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from nats.js.api import KeyValueConfig
from nats.js.kv import KeyValue

from shared.bus import Bus
from shared.errors import TemporaryError
from shared.kvkeys import bucket_keys


async def _bucket(bus: Bus, name: str, **config: Any) -> KeyValue:
    return await bus.js.create_key_value(KeyValueConfig(bucket=name, **config))


class _EarlyMarker:
    """A watcher whose first update is the library's "initial values delivered" marker (nats.py issue 842)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.sent = inner, False

    async def updates(self, timeout: float = 5.0) -> Any:
        if not self.sent:
            self.sent = True
            return None
        return await self.inner.updates(timeout=timeout)

    async def stop(self) -> None:
        await self.inner.stop()


async def test_live_keys_only_and_none_of_an_empty_bucket(bus: Bus) -> None:
    kv = await _bucket(bus, "kk1")
    assert await bucket_keys(kv) == []
    for i in range(300):  # more than the watcher's queue holds
        await kv.put(f"k{i:03d}", b"v")
    await kv.delete("k001")
    await kv.purge("k002")
    keys = await bucket_keys(kv)
    assert sorted(keys) == [f"k{i:03d}" for i in range(300) if i not in (1, 2)]


async def test_an_early_marker_does_not_end_the_listing(bus: Bus, monkeypatch: pytest.MonkeyPatch) -> None:
    kv = await _bucket(bus, "kk2")
    for i in range(50):
        await kv.put(f"h{i:02d}", b"lease")
    real = kv.watchall

    async def early(**kwargs: Any) -> Any:
        return _EarlyMarker(await real(**kwargs))

    monkeypatch.setattr(kv, "watchall", early)
    assert sorted(await bucket_keys(kv)) == [f"h{i:02d}" for i in range(50)]


async def test_a_bucket_whose_values_expired_lists_nothing_at_once(bus: Bus) -> None:
    kv = await _bucket(bus, "kk3", ttl=0.5)
    await kv.put("claim", b"x")
    for _ in range(100):  # the server expires on its own schedule; no timing is asserted
        if not (await kv.status()).stream_info.state.messages:
            break
        await asyncio.sleep(0.1)
    assert await bucket_keys(kv, timeout=30) == []


async def test_a_listing_that_cannot_finish_is_a_temporary_error(bus: Bus, monkeypatch: pytest.MonkeyPatch) -> None:
    kv = await _bucket(bus, "kk4")
    await kv.put("a", b"1")

    class Silent:
        async def updates(self, timeout: float = 5.0) -> Any:
            await asyncio.sleep(timeout)
            raise TimeoutError

        async def stop(self) -> None:
            return None

    async def silent(**kwargs: Any) -> Silent:
        return Silent()

    monkeypatch.setattr(kv, "watchall", silent)
    with pytest.raises(TemporaryError, match="kk4"):
        await bucket_keys(kv, timeout=0.3)
