"""Notifications follow the statuses' order even when a replica dies holding one, and repeats keep their number.

A "dead replica" is a second connection that takes the oldest unhandled status of a translation consumer
and closes without acknowledging it, as a process killed with SIGKILL does: the server gives that status
back only after the consumer's ack wait. Statuses published after it must not overtake it, or an old
``Creating`` would be notified after ``Synced`` and a PR's transitions would arrive out of order.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import nats

from services.focom_api.notify import NUMBERED, Translator, numberer
from shared.bus import Bus, Consumer, MessageContext
from shared.dispatch import dispatch
from shared.httpapi.delivery import Event
from shared.httpapi.subscriptions import Subscription, SubscriptionStore
from shared.messages import Envelope
from shared.payloads import FprPhase, FprStatus, MessageFailed, PrStatus, pr_id_for
from shared.subjects import (
    ALL_FOCOMAPI_EVENTS,
    BUCKET_FOCOM_API_SUBSCRIPTIONS,
    FOCOM_API_FPR_STATUS_CONSUMER,
    FOCOM_API_PR_STATUS_CONSUMER,
    ConsumerSpec,
    focom_status,
    o2ims_status,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
#: The specs' delivery policy with a short ack wait, so the held status comes back quickly.
FPR_SPEC = dataclasses.replace(FOCOM_API_FPR_STATUS_CONSUMER, ack_wait=1.0)
PR_SPEC = dataclasses.replace(FOCOM_API_PR_STATUS_CONSUMER, ack_wait=1.0)


async def die_holding_the_next(bus: Bus, nats_url: str, spec: ConsumerSpec) -> None:
    """Another replica takes the next message of ``spec``'s durable and is killed before acknowledging it."""

    async def never(_env: Envelope, _ctx: MessageContext) -> None:
        raise AssertionError("only the consumer's configuration is used")

    await bus.js.add_consumer(spec.stream.name, Consumer(bus, spec, never).config())
    nc = await nats.connect(nats_url)
    psub = await nc.jetstream().pull_subscribe_bind(durable=spec.durable, stream=spec.stream.name)
    (held,) = await psub.fetch(1, timeout=5.0)
    assert held.metadata.num_delivered == 1
    await nc.close()  # no ack, no nak: the server learns nothing until the ack wait runs out


class Handled:
    """The envelope ids a translator finished with (acknowledged), to wait for the held one."""

    def __init__(self) -> None:
        self.ids: set[uuid.UUID] = set()
        self.changed = asyncio.Event()

    def wrap(self, spec: ConsumerSpec, bus: Bus, translator: Translator) -> Consumer:
        fn = translator.on_fpr_status if spec.stream.name == "FOCOM" else translator.on_pr_status
        handler = dispatch(fn, ignore=(MessageFailed,))

        async def noted(env: Envelope, ctx: MessageContext) -> None:
            await handler(env, ctx)
            self.ids.add(env.id)
            self.changed.set()

        return bus.consumer(spec, noted)

    async def wait_for(self, ids: set[uuid.UUID]) -> None:
        async with asyncio.timeout(60):
            while not ids <= self.ids:
                self.changed.clear()
                await self.changed.wait()


async def events_on_stream(bus: Bus) -> list[Event]:
    """Every notification event on the ``FOCOM_API`` stream, in stream order."""
    info = await bus.js.stream_info("FOCOM_API")
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1) if info.state.messages else ():
        msg = await bus.js.get_msg("FOCOM_API", seq)
        if msg.subject.startswith(ALL_FOCOMAPI_EVENTS.removesuffix(">")):
            out.append(Event.model_validate_json(msg.data or b""))
    return out


async def test_a_status_held_by_a_killed_replica_is_not_overtaken(bus: Bus, nats_url: str) -> None:
    pr_id = pr_id_for("n1", "smo")
    fprs: list[tuple[FprPhase, str]] = [
        ("Creating", "0/1 fulfilled"),
        ("Creating", "0/1 fulfilled; smo: progressing"),
        ("Synced", "1 cluster(s) fulfilled"),
    ]
    prs = [("pending", None), ("progressing", "hostprep"), ("progressing", "apply"), ("fulfilled", None)]
    fpr_envs = [
        Envelope.wrap(FprStatus(name="n1", phase=p, message=m, updated_at=T0 + timedelta(seconds=i)), source="focom")
        for i, (p, m) in enumerate(fprs)
    ]
    pr_envs = [
        Envelope.wrap(
            PrStatus(pr_id=pr_id, fpr="n1", cluster="smo", state=s, stage=g, at=T0 + timedelta(seconds=i), seq=i + 1),  # type: ignore[arg-type]
            source="o2ims",
        )
        for i, (s, g) in enumerate(prs)
    ]
    # The first status of each kind is taken by a replica that dies; the rest are published after it.
    await bus.publish(focom_status("n1"), fpr_envs[0])
    await bus.publish(o2ims_status(pr_id), pr_envs[0])
    await die_holding_the_next(bus, nats_url, FPR_SPEC)
    await die_holding_the_next(bus, nats_url, PR_SPEC)
    for env in fpr_envs[1:]:
        await bus.publish(focom_status("n1"), env)
    for env in pr_envs[1:]:
        await bus.publish(o2ims_status(pr_id), env)

    handled = Handled()
    translator = Translator(bus)
    await handled.wrap(FPR_SPEC, bus, translator).start()
    await handled.wrap(PR_SPEC, bus, translator).start()
    await handled.wait_for({e.id for e in fpr_envs + pr_envs})

    events = await events_on_stream(bus)
    assert [e.post["phase"] for e in events if e.kind == "fpr" and e.post] == ["Creating", "Synced"]
    got = [(e.post["provisioningPhase"], e.post["stage"]) for e in events if e.kind == "pr" and e.post]
    assert got == prs


async def test_a_repeated_event_keeps_its_sequence(bus: Bus) -> None:
    store = SubscriptionStore(await bus.kv(BUCKET_FOCOM_API_SUBSCRIPTIONS))
    sub = Subscription(
        id=str(uuid.uuid4()),
        kind="focom",
        callback="http://127.0.0.1:1/notify",
        created_at=T0,
        extra={"signing_key": "00" * 32, "seq": 0},
    )
    await store.create(sub)
    stamp = numberer(store)

    def event(n: int) -> Event:
        return Event(id=f"ev-{n}", kind="pr", event_type=1, object_ref="x", object_id="x", at=T0)

    async def number(n: int) -> int:
        body = await stamp(sub, event(n), {})
        return int(body["sequence"])

    assert [await number(n) for n in (1, 2, 2, 3)] == [1, 2, 2, 3]
    # An event published twice (its first publication overtaken by others) gets its number again.
    assert await number(1) == 1
    assert await number(4) == 4
    # Only the latest numbers are remembered; the counter itself never goes back.
    for n in range(5, 5 + NUMBERED):
        await number(n)
    assert await number(1) == 5 + NUMBERED
