"""The delivery library on its own terms, as another API (FOCOM's northbound) uses it: its own stream and
durable names, a renderer, and a per-subscription signature of the raw body."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime

from shared.bus import Bus
from shared.connect import ensure_streams
from shared.httpapi.delivery import Deliverer, Event, publish_event
from shared.httpapi.subscriptions import Subscription, SubscriptionStore
from shared.subjects import BUCKET_O2IMS_API_SUBSCRIPTIONS, StreamSpec

from .receiver import Receiver

STREAM = StreamSpec("TESTNB", ("testnb.events.>",))


def sign(sub: Subscription, raw: bytes) -> dict[str, str]:
    key = str(sub.extra["key"]).encode()
    return {"X-Test-Signature": "sha256=" + hmac.new(key, raw, hashlib.sha256).hexdigest()}


async def test_signed_in_order_delivery_with_own_names(bus: Bus, receiver: Receiver) -> None:
    await ensure_streams(bus.js, (STREAM,))
    store = SubscriptionStore(await bus.kv(BUCKET_O2IMS_API_SUBSCRIPTIONS))
    deliverer = Deliverer(
        bus,
        store,
        kind="nb",
        stream=STREAM,
        subjects=("testnb.events.>",),
        render=lambda sub, ev: {"seq": ev.event_type, "id": ev.id, "sub": sub.id},
        durable=lambda sub_id: f"testnb-{sub_id}",
        timeout=5.0,
        dead_after=3,
        ack_wait=10.0,
        sign=sign,
    )
    sub = Subscription(
        id=str(uuid.uuid4()),
        kind="nb",
        callback=receiver.url,
        created_at=datetime.now(UTC),
        start_seq=await deliverer.start_position(),
        extra={"key": "s3cret"},
    )
    await store.create(sub)
    stop = asyncio.Event()
    runner = asyncio.create_task(deliverer.run(stop, interval=0.2))
    try:
        for n in range(5):
            ev = Event(
                id=str(uuid.uuid4()), kind="nb", event_type=n, object_ref="/x", object_id="x", at=datetime.now(UTC)
            )
            await publish_event(bus, f"testnb.events.{n % 2}", ev)
        got = await receiver.wait(lambda r: r if len(r) == 5 else None)
        assert [g["seq"] for g in got] == [0, 1, 2, 3, 4]
        for raw, headers in receiver.raw:
            expected = "sha256=" + hmac.new(b"s3cret", raw, hashlib.sha256).hexdigest()
            assert headers["X-Test-Signature"] == expected and json.loads(raw)["sub"] == sub.id
        info = await bus.js.consumer_info(STREAM.name, f"testnb-{sub.id}")
        assert info.config.max_ack_pending == 1
    finally:
        stop.set()
        await runner
