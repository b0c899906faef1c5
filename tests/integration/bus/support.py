"""Helpers of the bus delivery tests: a test consumer spec, a job, and waits on the broker's own counters."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from shared.bus import Bus
from shared.messages import Envelope
from shared.payloads import HostprepJob
from shared.subjects import HOSTPREP, ConsumerSpec, hostprep_event


def spec(durable: str, **kw: Any) -> ConsumerSpec:
    return ConsumerSpec(durable, HOSTPREP, ("hostprep.jobs.>",), lambda _s, key: hostprep_event(key), **kw)


PR1 = "00000000-0000-4000-8000-000000000001"


def pr_id(name: str) -> str:
    """A PR id (a UUID, as the bus requires) named by the test for readability."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"test-pr/{name}"))


def job(pr: str = PR1) -> HostprepJob:
    return HostprepJob(pr_id=pr, action="prepare", cluster="c1", k8s_version="v1.30.2", hosts=("h1",))


async def count(bus: Bus, subject: str) -> int:
    info = await bus.js.stream_info(HOSTPREP.name, subjects_filter=subject)
    return int((info.state.subjects or {}).get(subject, 0))


async def failed_events(bus: Bus, subject: str) -> list[Envelope]:
    from shared.messages import decode

    sub = await bus.js.subscribe(subject, ordered_consumer=True)
    out = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=0.5)
            except Exception:
                break
            env = decode(msg.data)
            if env.type == "message.failed":
                out.append(env)
    finally:
        await sub.unsubscribe()
    return out


async def wait_settled(bus: Bus, durable: str) -> None:
    """Wait until the consumer has nothing pending and nothing unacknowledged."""
    for _ in range(200):
        info = await bus.js.consumer_info(HOSTPREP.name, durable)
        if info.num_ack_pending == 0 and info.num_pending == 0:
            return
        await asyncio.sleep(0.05)  # polling the broker's own counters, bounded
    raise AssertionError(f"consumer {durable} never settled: {info}")


async def wait_until(cond: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)  # polling a local condition, bounded
