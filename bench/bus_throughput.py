"""Envelope publish → consume → ack throughput through ``shared.bus`` vs raw nats-py, same server.

Ours: pipelined ``Bus.publish_batch`` of validated envelopes, then a durable ``Consumer`` that
decodes each envelope, runs a no-op handler and acks. Peer: raw ``publish_async`` of the same
bytes and a raw pull subscription that acks. Both end to end, on one embedded nats-server.
"""

from __future__ import annotations

import asyncio
import time

import nats
from nats.js import api as js_api

from bench.report import Figure
from shared.bus import Bus, MessageContext
from shared.connect import ensure_streams
from shared.messages import Envelope
from shared.natsserver import EmbeddedNats
from shared.payloads import HostprepJob, pr_id_for
from shared.subjects import ALL_HOSTPREP_JOBS, HOSTPREP, ConsumerSpec, hostprep_event, hostprep_job

N = 20_000


def _envelopes(n: int) -> list[tuple[str, Envelope]]:
    prs = [pr_id_for("bench", f"c{i}") for i in range(n)]
    return [
        (
            hostprep_job(pr),
            Envelope.wrap(
                HostprepJob(pr_id=pr, action="prepare", cluster="c1", k8s_version="v1.30.2", hosts=("h1",)),
                source="bench",
            ),
        )
        for pr in prs
    ]


async def _ours(url: str, items: list[tuple[str, Envelope]]) -> float:
    nc = await nats.connect(url)
    bus = Bus(nc, source="bench")
    await ensure_streams(bus.js)
    await bus.js.purge_stream(HOSTPREP.name)
    done = asyncio.Event()
    count = 0

    async def handler(env: Envelope, ctx: MessageContext) -> None:
        nonlocal count
        count += 1
        if count == len(items):
            done.set()

    spec = ConsumerSpec(
        "bench-ours",
        HOSTPREP,
        (ALL_HOSTPREP_JOBS,),
        lambda _s, k: hostprep_event(k),
        concurrency=256,
        max_ack_pending=10_000,
    )
    bus.consumer(spec, handler)
    t0 = time.perf_counter()
    await bus.consumers[0].start()
    await bus.publish_batch(items)
    await asyncio.wait_for(done.wait(), 300)
    elapsed = time.perf_counter() - t0
    await bus.stop_consumers(5)
    await bus.close()
    return len(items) / elapsed


async def _raw(url: str, items: list[tuple[str, Envelope]]) -> float:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await ensure_streams(js)
    await js.purge_stream(HOSTPREP.name)
    payloads = [(s, e.encode(), str(e.id)) for s, e in items]
    await js.add_consumer(
        HOSTPREP.name,
        js_api.ConsumerConfig(
            durable_name="bench-raw",
            ack_policy=js_api.AckPolicy.EXPLICIT,
            filter_subject=ALL_HOSTPREP_JOBS,
            max_ack_pending=10_000,
        ),
    )
    sub = await js.pull_subscribe_bind(durable="bench-raw", stream=HOSTPREP.name)
    t0 = time.perf_counter()

    async def produce() -> None:
        futs = [await js.publish_async(s, b, headers={"Nats-Msg-Id": i}) for s, b, i in payloads]
        await asyncio.gather(*futs)

    async def consume() -> None:
        got = 0
        while got < len(payloads):
            try:
                msgs = await sub.fetch(batch=256, timeout=1)
            except nats.errors.TimeoutError:
                continue
            for m in msgs:
                await m.ack()
            got += len(msgs)

    await asyncio.gather(produce(), consume())
    elapsed = time.perf_counter() - t0
    await sub.unsubscribe()
    await nc.close()
    return len(payloads) / elapsed


async def run() -> list[Figure]:
    async with EmbeddedNats() as server:
        items = _envelopes(N)
        raw = await _raw(server.url, items)
        ours = await _ours(server.url, _envelopes(N))
    return [
        Figure(
            "bus",
            f"publish→consume→ack, {N:,} msgs",
            ours,
            "msg/s",
            "raw nats-py publish_async",
            raw,
            "aim: ratio ≥ 0.3",
        ),
    ]


if __name__ == "__main__":
    from bench.report import table

    print(table(asyncio.run(run())))
