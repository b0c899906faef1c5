"""``KvView`` against a real nats-server: it holds exactly what the bucket holds, whatever happened meanwhile.

Each test compares the view with the bucket read key by key, after changes made while the view
followed, while its connection was down (a server restart), and after the bucket was replaced.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.js.kv import KeyValue

from shared.httpapi.kvview import KvView
from shared.natsserver import EmbeddedNats

BUCKET = "view-test"


def decode(_key: str, raw: bytes) -> dict[str, int] | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None  # unreadable: counts as absent
    return value if isinstance(value, dict) else None


async def connect(server: EmbeddedNats) -> NatsClient:
    return await nats.connect(server.url, connect_timeout=5, reconnect_time_wait=0.5, max_reconnect_attempts=-1)


@pytest.fixture
async def nc(nats_server: EmbeddedNats) -> AsyncIterator[NatsClient]:
    client = await connect(nats_server)
    try:
        yield client
    finally:
        await client.close()


async def bucket(nc: NatsClient) -> KeyValue:
    return await nc.jetstream().create_key_value(bucket=BUCKET, history=1)


async def contents(kv: KeyValue) -> dict[str, dict[str, int]]:
    out = {}
    try:
        keys = await kv.keys()
    except nats.js.errors.NoKeysError:
        return {}
    for key in keys:
        value = decode(key, (await kv.get(key)).value or b"")
        if value is not None:
            out[key] = value
    return out


async def put(kv: KeyValue, key: str, n: int) -> None:
    await kv.put(key, json.dumps({"n": n}).encode())


async def test_loads_then_follows_puts_deletes_and_purges(nc: NatsClient) -> None:
    kv = await bucket(nc)
    await put(kv, "a", 1)
    await put(kv, "b", 1)
    await kv.put("bad", b"not json")
    view: KvView[dict[str, int]] = KvView(kv, decode)
    seen: list[str] = []
    view.listen(seen.append)
    await view.start()
    try:
        assert view.values == {"a": {"n": 1}, "b": {"n": 1}} and view.loads == 1
        assert sorted(seen) == ["a", "b"]  # the initial values are changes too
        seen.clear()
        await put(kv, "a", 2)
        await put(kv, "a", 2)  # the same value again: no change to announce
        await kv.delete("b")
        await put(kv, "c", 1)
        await put(kv, "d", 1)
        await kv.purge("d")
        assert await view.fresh()
        assert view.values == await contents(kv) == {"a": {"n": 2}, "c": {"n": 1}}
        assert seen == ["a", "b", "c", "d", "d"]
        assert view.loads == 1
    finally:
        await view.stop()


async def test_changes_made_while_disconnected_are_not_missed(nats_server: EmbeddedNats, nc: NatsClient) -> None:
    kv = await bucket(nc)
    for i in range(20):
        await put(kv, f"k{i}", 0)
    view: KvView[dict[str, int]] = KvView(kv, decode, check_interval=120.0)
    last_seen = asyncio.Event()
    view.listen(lambda key: last_seen.set() if key == "new" else None)
    await view.start()
    try:
        await nats_server.restart()
        # Another client writes at once, before the view's connection is back.
        writer = await connect(nats_server)
        try:
            wkv = await writer.jetstream().key_value(BUCKET)
            for i in range(0, 20, 2):
                await put(wkv, f"k{i}", 1)
            await wkv.delete("k1")
            await put(wkv, "new", 1)
            # The view's connection is still down: a reader is not kept waiting, it is told the view is behind.
            if not await view.fresh(timeout=0.1):
                # Answered at once (the watch takes seconds to resume), not after waiting for it to catch up.
                assert not await view.fresh(timeout=30) and not last_seen.is_set()
            async with asyncio.timeout(90):
                await last_seen.wait()  # the last change made, applied: the watch resumed
            assert await view.fresh(timeout=30)
            assert view.values == await contents(wkv)
            assert view.values["k0"] == {"n": 1} and "k1" not in view.values and "new" in view.values
            assert view.loads == 1  # resumed where it stopped: nothing was loaded again
        finally:
            await writer.close()
    finally:
        await view.stop()


async def test_a_replaced_bucket_is_loaded_again(nc: NatsClient) -> None:
    kv = await bucket(nc)
    for i in range(5):
        await put(kv, f"old{i}", i)
    view: KvView[dict[str, int]] = KvView(kv, decode, check_interval=0.5)
    seen: list[str] = []
    view.listen(seen.append)
    await view.start()
    try:
        js = nc.jetstream()
        await js.delete_key_value(BUCKET)
        kv = await bucket(nc)
        await put(kv, "fresh", 1)  # revision 1: behind what the view had
        async with asyncio.timeout(60):
            while view.values != {"fresh": {"n": 1}}:
                await asyncio.sleep(0.1)  # bounded by the timeout: waiting for the resync
        assert view.loads == 2
        assert {f"old{i}" for i in range(5)} <= set(seen)  # their removal was announced
    finally:
        await view.stop()
