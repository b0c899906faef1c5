"""Bus delivery semantics against a real nats-server: dedup, retry, termination, failure events."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from shared.bus import Bus, MessageContext
from shared.errors import InputError, PermanentError, TemporaryError
from shared.messages import Envelope
from shared.payloads import MessageFailed
from shared.subjects import hostprep_event, hostprep_job
from tests.integration.bus.support import count, failed_events, job, spec, wait_settled, wait_until

PR1 = "00000000-0000-4000-8000-000000000001"
PR2 = "00000000-0000-4000-8000-000000000002"
PR3 = "00000000-0000-4000-8000-000000000003"
PR4 = "00000000-0000-4000-8000-000000000004"
PR5 = "00000000-0000-4000-8000-000000000005"
PR6 = "00000000-0000-4000-8000-000000000006"
PR7 = "00000000-0000-4000-8000-000000000007"
PR8 = "00000000-0000-4000-8000-000000000008"
PR9 = "00000000-0000-4000-8000-000000000009"
PR10 = "00000000-0000-4000-8000-000000000010"


async def test_duplicate_publish_is_delivered_once(bus: Bus) -> None:
    seen: list[str] = []
    got = asyncio.Event()

    async def handler(env: Envelope, ctx: MessageContext) -> None:
        seen.append(str(env.id))
        got.set()

    env = Envelope.wrap(job(), source="test")
    await bus.publish(hostprep_job(PR1), env)
    await bus.publish(hostprep_job(PR1), env)  # same id: the stream drops it
    assert await count(bus, hostprep_job(PR1)) == 1
    await bus.consumer(spec("dup"), handler).start()
    await asyncio.wait_for(got.wait(), 10)
    await wait_settled(bus, "dup")
    assert seen == [str(env.id)]


async def test_temporary_error_is_redelivered_after_its_delay(bus: Bus) -> None:
    times: list[float] = []
    done = asyncio.Event()

    async def handler(env: Envelope, ctx: MessageContext) -> None:
        times.append(time.monotonic())
        if ctx.deliveries < 3:
            raise TemporaryError("not yet", delay=0.4)
        done.set()

    await bus.consumer(spec("temp", max_deliver=5), handler).start()
    await bus.emit(hostprep_job(PR2), job(PR2))
    await asyncio.wait_for(done.wait(), 20)
    await wait_settled(bus, "temp")
    assert len(times) == 3
    # A lower bound only: the broker must not redeliver before the delay we asked for.
    assert times[1] - times[0] >= 0.35
    assert times[2] - times[1] >= 0.35
    assert await failed_events(bus, hostprep_event(PR2)) == []


async def test_exhausted_deliveries_give_one_failed_event(bus: Bus) -> None:
    calls: list[int] = []

    async def handler(env: Envelope, ctx: MessageContext) -> None:
        calls.append(ctx.deliveries)
        raise TemporaryError("still down", delay=0.05)

    await bus.consumer(spec("exhaust", max_deliver=3), handler).start()
    await bus.emit(hostprep_job(PR3), job(PR3))
    await wait_until(lambda: len(calls) >= 3)
    await wait_settled(bus, "exhaust")
    assert calls == [1, 2, 3]
    failed = await failed_events(bus, hostprep_event(PR3))
    assert len(failed) == 1
    payload = failed[0].payload
    assert isinstance(payload, MessageFailed)
    assert payload.deliveries == 3 and payload.consumer == "exhaust" and "still down" in payload.error


async def test_permanent_error_terminates_at_once_with_one_failed_event(bus: Bus) -> None:
    calls: list[int] = []

    async def handler(env: Envelope, ctx: MessageContext) -> None:
        calls.append(ctx.deliveries)
        raise PermanentError("cannot ever work", reason="Broken")

    await bus.consumer(spec("perm", max_deliver=5), handler).start()
    sent = await bus.emit(hostprep_job(PR4), job(PR4))
    await wait_until(lambda: len(calls) >= 1)
    await wait_settled(bus, "perm")
    assert calls == [1]
    failed = await failed_events(bus, hostprep_event(PR4))
    assert len(failed) == 1
    payload = failed[0].payload
    assert isinstance(payload, MessageFailed)
    assert payload.reason == "Broken" and payload.message_id == str(sent.id)
    assert failed[0].causation_id == sent.id


async def test_input_error_is_permanent(bus: Bus) -> None:
    calls: list[int] = []

    async def handler(env: Envelope, ctx: MessageContext) -> None:
        calls.append(ctx.deliveries)
        raise InputError("bad host id", path="hosts[0].host_id")

    await bus.consumer(spec("inp"), handler).start()
    await bus.emit(hostprep_job(PR5), job(PR5))
    await wait_until(lambda: len(calls) >= 1)
    await wait_settled(bus, "inp")
    failed = await failed_events(bus, hostprep_event(PR5))
    assert len(failed) == 1 and isinstance(failed[0].payload, MessageFailed)
    assert failed[0].payload.path == "hosts[0].host_id"


async def test_undecodable_and_invalid_messages_are_terminated_not_retried(bus: Bus) -> None:
    calls: list[str] = []

    async def handler(env: Envelope, ctx: MessageContext) -> None:
        calls.append(env.type)

    await bus.consumer(spec("garbage"), handler).start()
    await bus.js.publish(hostprep_job(PR6), b"\xff\xfe not json")
    await bus.js.publish(hostprep_job(PR7), b'{"type": "hostprep.job", "payload": {"type": "hostprep.job"}}')
    await wait_settled(bus, "garbage")
    assert calls == []
    for pr in (PR6, PR7):
        failed = await failed_events(bus, hostprep_event(pr))
        assert len(failed) == 1, pr
        payload = failed[0].payload
        assert isinstance(payload, MessageFailed) and payload.reason == "InvalidMessage"
    # The consumer is still alive and handles the next good message.
    await bus.emit(hostprep_job(PR8), job(PR8))
    await wait_until(lambda: calls == ["hostprep.job"])


async def test_unknown_exception_is_retried(bus: Bus) -> None:
    calls: list[int] = []

    async def handler(env: Envelope, ctx: MessageContext) -> None:
        calls.append(ctx.deliveries)
        if ctx.deliveries == 1:
            raise RuntimeError("surprise")

    await bus.consumer(spec("unknown", retry_delay=0.05), handler).start()
    await bus.emit(hostprep_job(PR9), job(PR9))
    await wait_until(lambda: len(calls) >= 2)
    await wait_settled(bus, "unknown")
    assert calls == [1, 2]


async def test_replayed_handler_publishes_deterministic_ids(bus: Bus) -> None:
    """A handler re-run (after a crash before ack) re-publishes the same follow-up message id."""
    outs: list[Envelope] = []

    async def handler(env: Envelope, ctx: MessageContext) -> None:
        out = await ctx.publish(hostprep_event(env.payload.pr_id), _progress(env), key="h1/preflight")  # type: ignore[union-attr]
        outs.append(out)
        if ctx.deliveries == 1:
            raise TemporaryError("crash after publish", delay=0.05)

    await bus.consumer(spec("replay"), handler).start()
    await bus.emit(hostprep_job(PR10), job(PR10))
    await wait_until(lambda: len(outs) >= 2)
    await wait_settled(bus, "replay")
    assert outs[0].id == outs[1].id
    assert await count(bus, hostprep_event(PR10)) == 1


def _progress(env: Envelope) -> Any:
    from shared.payloads import HostProgress

    return HostProgress(pr_id=PR10, host_id="h1", step="preflight", status="done")


async def test_a_handler_working_past_ack_wait_keeps_its_message(bus: Bus) -> None:
    """Heartbeats (``in_progress``) keep a long-running message from being redelivered meanwhile."""
    deliveries: list[int] = []
    done = asyncio.Event()

    async def handler(env: Envelope, ctx: MessageContext) -> None:
        deliveries.append(ctx.deliveries)
        await asyncio.sleep(3.5)  # the long work itself: three and a half ack_waits
        done.set()

    await bus.consumer(spec("long", ack_wait=1.0), handler).start()
    await bus.emit(hostprep_job(PR10), job(PR10))
    await asyncio.wait_for(done.wait(), 20)
    await wait_settled(bus, "long")
    assert deliveries == [1]
