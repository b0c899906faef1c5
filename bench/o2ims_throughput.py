"""o2ims throughput: 500 ProvisioningRequests created at once, driven to fulfilled through the real
o2ims handlers (engine, KV records, outboxes, deadline timers) on one embedded nats-server.

The other services are played by an instant fake on the bus: a hostprep job is answered with one
host progress and ``done``, a capi apply with ``applied`` and a ready cluster summary. Printed:
the time from publishing the 500 creates to the last ``fulfilled``, and PR transitions per second.
Peer: raw nats-py ``publish_async`` of as many messages as the whole flow put in the streams.
"""

from __future__ import annotations

import asyncio
import logging
import time

import nats
from nats.aio.msg import Msg
from nats.js import api as js_api

from bench.report import Figure
from services.o2ims.engine import PrEngine
from services.o2ims.handlers import Handlers
from services.o2ims.record import PrRecord
from services.o2ims.settings import O2imsSettings
from shared.bus import Bus, MessageContext
from shared.connect import ensure_buckets, ensure_streams
from shared.dispatch import dispatch
from shared.leases import HostLeases
from shared.messages import Envelope, decode
from shared.models import ClusterSpec, HostRef
from shared.natsserver import EmbeddedNats
from shared.payloads import (
    CapiApplied,
    CapiJob,
    ClusterSummary,
    HostprepDone,
    HostprepJob,
    HostProgress,
    PrRequest,
    pr_id_for,
)
from shared.store import RecordStore
from shared.subjects import (
    ALL_CAPI_JOBS,
    ALL_HOSTPREP_JOBS,
    ALL_O2IMS_STATUS,
    ALL_STREAMS,
    BUCKET_HOSTS,
    BUCKET_PR,
    CAPI,
    HOSTPREP,
    ConsumerSpec,
    StreamSpec,
    capi_event,
    hostprep_event,
    k8s_status,
    o2ims_request,
    o2ims_status,
)

N = 500


def _spec(i: int) -> ClusterSpec:
    def host(role: str, j: int) -> HostRef:
        n = 3 * i + j
        return HostRef(
            host_id=f"c{i}-{role}{j}",
            host_name=f"c{i}-{role}{j}",
            host_ip=f"10.{n // 62500}.{n // 250 % 250}.{n % 250 + 1}",
        )

    return ClusterSpec(
        name=f"c{i}",
        k8s_version="v1.30.2",
        control_plane=(host("cp", 0),),
        workers=(host("w", 1), host("w", 2)),
        vip="192.168.255.1",
    )


async def _start_o2ims(url: str) -> Bus:
    bus = Bus(await nats.connect(url), source="o2ims")
    settings = O2imsSettings()
    engine = PrEngine(
        bus, RecordStore(await bus.kv(BUCKET_PR), PrRecord), HostLeases(await bus.kv(BUCKET_HOSTS)), settings.policy()
    )
    for spec, handlers in Handlers(engine).consumers():
        bus.consumer(spec, dispatch(*handlers))
    for c in bus.consumers:
        await c.start()
    return bus


async def _start_fake(url: str) -> Bus:
    """hostprep, capi_renderer and status_watcher, answering at once."""
    bus = Bus(await nats.connect(url), source="fake")

    async def hostprep(env: Envelope, ctx: MessageContext) -> None:
        job = env.payload
        assert isinstance(job, HostprepJob)
        out = hostprep_event(job.pr_id)
        first = job.hosts[0]
        await ctx.publish(out, HostProgress(pr_id=job.pr_id, host_id=first, step="preflight", status="done"), key=1)
        hosts = job.hosts
        await ctx.publish(out, HostprepDone(pr_id=job.pr_id, action=job.action, hosts=hosts), key=2)

    async def capi(env: Envelope, ctx: MessageContext) -> None:
        job = env.payload
        assert isinstance(job, CapiJob)
        s = job.spec
        await ctx.publish(capi_event(job.pr_id), CapiApplied(pr_id=job.pr_id, action="apply", objects=()), key=1)
        summary = ClusterSummary(
            namespace=s.namespace,
            name=s.name,
            pr_id=job.pr_id,
            phase="Provisioned",
            control_plane_initialized=True,
            control_plane_ready=1,
            control_plane_desired=1,
            workers_ready=2,
            workers_desired=2,
            cni_applied=True,
            kubeconfig_present=True,
            ready=True,
        )
        await ctx.publish(k8s_status("cluster", s.namespace, s.name), summary, key=2)

    def spec(durable: str, stream: StreamSpec, subject: str) -> ConsumerSpec:
        return ConsumerSpec(
            durable,
            stream,
            (subject,),
            lambda _s, k: o2ims_status(k),
            concurrency=256,
            max_ack_pending=10_000,
        )

    await bus.consumer(spec("fake-hostprep", HOSTPREP, ALL_HOSTPREP_JOBS), hostprep).start()
    await bus.consumer(spec("fake-capi", CAPI, ALL_CAPI_JOBS), capi).start()
    return bus


async def _ours(url: str) -> tuple[float, int, int]:
    """(seconds to all fulfilled, transitions published, messages in the streams)."""
    client = Bus(await nats.connect(url), source="bench")
    await ensure_streams(client.js)
    await ensure_buckets(client.js)
    o2ims, fake = await _start_o2ims(url), await _start_fake(url)
    fulfilled: set[str] = set()
    #: (PR, transition number): a core subscription also sees publishes the stream dropped as duplicates.
    transitions: set[tuple[str, int]] = set()
    all_done = asyncio.Event()

    async def on_status(msg: Msg) -> None:
        env = decode(msg.data)
        if env.type != "o2ims.status":
            return
        transitions.add((getattr(env.payload, "pr_id", ""), getattr(env.payload, "seq", 0)))
        if getattr(env.payload, "state", None) == "fulfilled":
            fulfilled.add(getattr(env.payload, "pr_id", ""))
            if len(fulfilled) == N:
                all_done.set()

    sub = await client.nc.subscribe(ALL_O2IMS_STATUS, cb=on_status)
    requests = [
        (
            o2ims_request(pr_id_for("bench", f"c{i}")),
            Envelope.wrap(
                PrRequest(pr_id=pr_id_for("bench", f"c{i}"), fpr="bench", operation="create", spec=_spec(i)),
                source="bench",
                correlation_id="bench",
            ),
        )
        for i in range(N)
    ]
    t0 = time.perf_counter()
    await client.publish_batch(requests)
    await asyncio.wait_for(all_done.wait(), 600)
    elapsed = time.perf_counter() - t0
    await sub.unsubscribe()
    messages = 0
    for stream in ALL_STREAMS:
        messages += (await client.js.stream_info(stream.name)).state.messages
    for bus in (fake, o2ims):
        await bus.stop_consumers(5)
        await bus.close()
    await client.close()
    return elapsed, len(transitions), messages


async def _raw(url: str, count: int) -> float:
    """Seconds for raw ``publish_async`` of ``count`` status-sized messages (acks awaited)."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(js_api.StreamConfig(name="BENCHRAW", subjects=["benchraw.>"]))
    body = Envelope.wrap(
        HostProgress(pr_id=pr_id_for("bench", "c0"), host_id="h", step="preflight", status="done"), source="raw"
    ).encode()
    t0 = time.perf_counter()
    futures = [
        await js.publish_async(f"benchraw.{i % N}", body, headers={"Nats-Msg-Id": f"m{i}"}) for i in range(count)
    ]
    await asyncio.gather(*futures)
    elapsed = time.perf_counter() - t0
    await nc.close()
    return elapsed


async def run() -> list[Figure]:
    # Each armed deadline is a nak'ed timer, which the bus logs as a warning: not what is measured.
    bus_log = logging.getLogger("shared.bus")
    level = bus_log.level
    bus_log.setLevel(logging.ERROR)
    try:
        async with EmbeddedNats() as server:
            elapsed, transitions, messages = await _ours(server.url)
            raw = await _raw(server.url, messages)
    finally:
        bus_log.setLevel(level)
    return [
        Figure(
            "o2ims",
            f"{N} PRs created at once → all fulfilled ({messages:,} msgs)",
            elapsed,
            "s",
            f"raw publish_async of {messages:,} msgs",
            raw,
            "lower is better; fake services answer at once",
        ),
        Figure(
            "o2ims",
            "PR transitions/s",
            transitions / elapsed,
            "transitions/s",
            "raw publish_async msgs/s",
            messages / raw,
            f"{transitions:,} transitions",
        ),
    ]


if __name__ == "__main__":
    from bench.report import table
    from shared.logging import configure_logging

    configure_logging(level="warning", fmt="json")
    print(table(asyncio.run(run())))
