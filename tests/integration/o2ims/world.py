"""The services around o2ims, played on a real bus by the test: hostprep, capi_renderer and
status_watcher answer o2ims's jobs the way the real ones do, and every status o2ims publishes
is recorded. Behaviour is switchable per PR (fail a host, never get ready, hold jobs)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import nats

from services.o2ims.engine import PrEngine
from services.o2ims.handlers import Handlers
from services.o2ims.policy import Policy
from services.o2ims.record import PrRecord
from shared.bus import Bus, MessageContext
from shared.dispatch import dispatch
from shared.leases import HostLeases
from shared.messages import Envelope
from shared.models import ClusterSpec, HostRef
from shared.payloads import (
    CapiApplied,
    CapiDeleted,
    CapiJob,
    ClusterSummary,
    HostprepDone,
    HostprepFailed,
    HostprepJob,
    HostProgress,
    Payload,
    PrRequest,
    PrStatus,
)
from shared.store import RecordStore
from shared.subjects import (
    ALL_CAPI_JOBS,
    ALL_HOSTPREP_JOBS,
    ALL_O2IMS_STATUS,
    BUCKET_HOSTS,
    BUCKET_PR,
    CAPI,
    HOSTPREP,
    O2IMS,
    ConsumerSpec,
    StreamSpec,
    capi_event,
    hostprep_event,
    k8s_status,
    o2ims_request,
    o2ims_status,
)


def make_spec(name: str = "edge1", workers: int = 2, *, offset: int = 0) -> ClusterSpec:
    def h(role: str, i: int) -> HostRef:
        n = offset + i
        return HostRef(
            host_id=f"{name}-{role}{i}", host_name=f"{name}-{role}{i}", host_ip=f"10.1.{n // 200}.{n % 200 + 10}"
        )

    return ClusterSpec(
        name=name,
        k8s_version="v1.30.2",
        control_plane=(h("cp", 0),),
        workers=tuple(h("w", i + 1) for i in range(workers)),
        vip="10.9.9.9",
    )


@dataclass
class World:
    bus: Bus
    #: PR ids whose cluster never becomes ready / whose hostprep fails on this host (host id → step).
    never_ready: set[str] = field(default_factory=set)
    fail_host: dict[str, str] = field(default_factory=dict)
    #: PR ids whose hostprep jobs (or all jobs) are recorded but not answered.
    hold_hostprep: set[str] = field(default_factory=set)
    manual: set[str] = field(default_factory=set)
    hostprep_jobs: list[Envelope] = field(default_factory=list)
    capi_jobs: list[Envelope] = field(default_factory=list)
    statuses: list[PrStatus] = field(default_factory=list)
    failures: list[Envelope] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def start(self) -> World:
        def spec(durable: str, stream: StreamSpec, subject: str) -> ConsumerSpec:
            return ConsumerSpec(durable, stream, (subject,), lambda _s, k: o2ims_status(k), concurrency=64)

        for s, handler in (
            (spec("world-hostprep", HOSTPREP, ALL_HOSTPREP_JOBS), self._hostprep),
            (spec("world-capi", CAPI, ALL_CAPI_JOBS), self._capi),
            (spec("world-status", O2IMS, ALL_O2IMS_STATUS), self._status),
        ):
            await self.bus.consumer(s, handler).start()
        return self

    # -- the services ---------------------------------------------------------------------------

    async def _hostprep(self, env: Envelope, ctx: MessageContext) -> None:
        job = env.payload
        assert isinstance(job, HostprepJob)
        await self._note(self.hostprep_jobs, env)
        # Held preparations never finish; the reset of a held PR's hosts (teardown) does.
        if (job.pr_id in self.hold_hostprep and job.action == "prepare") or job.pr_id in self.manual:
            return
        out = hostprep_event(job.pr_id)
        for host_id in job.hosts:
            await ctx.publish(
                out, HostProgress(pr_id=job.pr_id, host_id=host_id, step="preflight", status="done"), key=host_id
            )
            if host_id in self.fail_host:
                step = self.fail_host[host_id]
                await ctx.publish(
                    out,
                    HostprepFailed(
                        pr_id=job.pr_id,
                        action=job.action,
                        host_id=host_id,
                        step=step,
                        exit_code=100,
                        stderr_tail="E: broken",
                        reason="StepFailed",
                        message=f"{step} failed",
                    ),
                    key="failed",
                )
                return
        await ctx.publish(out, HostprepDone(pr_id=job.pr_id, action=job.action, hosts=job.hosts), key="done")

    async def _capi(self, env: Envelope, ctx: MessageContext) -> None:
        job = env.payload
        assert isinstance(job, CapiJob)
        await self._note(self.capi_jobs, env)
        if job.pr_id in self.manual:
            return
        s = job.spec
        watched = k8s_status("cluster", s.namespace, s.name)
        if job.action == "delete":
            await ctx.publish(
                capi_event(job.pr_id),
                CapiDeleted(pr_id=job.pr_id, cluster=s.name, namespace=s.namespace, gone=False),
                key="deleted",
            )
            await self.bus.emit(
                watched, ClusterSummary(namespace=s.namespace, name=s.name, pr_id=job.pr_id, exists=False)
            )
            return
        await ctx.publish(
            capi_event(job.pr_id), CapiApplied(pr_id=job.pr_id, action=job.action, objects=()), key="applied"
        )
        ready = job.pr_id not in self.never_ready
        n_cp, n_w = len(s.control_plane), len(s.workers)
        await self.bus.emit(
            watched,
            ClusterSummary(
                namespace=s.namespace,
                name=s.name,
                pr_id=job.pr_id,
                phase="Provisioned",
                control_plane_initialized=ready,
                control_plane_ready=n_cp if ready else 0,
                control_plane_desired=n_cp,
                workers_ready=n_w if ready else 0,
                workers_desired=n_w,
                ready=ready,
                waiting_for=None if ready else "control plane initialized",
            ),
        )

    async def _status(self, env: Envelope, ctx: MessageContext) -> None:
        if isinstance(env.payload, PrStatus):
            await self._note(self.statuses, env.payload)
        else:
            await self._note(self.failures, env)

    async def _note(self, into: list[Any], item: Any) -> None:
        async with self._changed:
            into.append(item)
            self._changed.notify_all()

    # -- the test's side ------------------------------------------------------------------------

    async def request(self, op: str, pr: str, spec: ClusterSpec | None, fpr: str = "fpr-1") -> Envelope:
        req = PrRequest(pr_id=pr, fpr=fpr, operation=op, spec=spec)  # type: ignore[arg-type]
        return await self.bus.emit(o2ims_request(pr), req, correlation_id=fpr)

    async def publish(self, subject: str, payload: Payload, cause: Envelope | None = None) -> Envelope:
        env = Envelope.wrap(payload, source="world", cause=cause)
        await self.bus.publish(subject, env)
        return env

    async def wait(self, what: Callable[[], Any], timeout: float = 45.0) -> Any:
        """Wait until ``what()`` is truthy (re-checked whenever something arrives)."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(what), timeout)
            return what()

    async def wait_state(self, pr: str, state: str, timeout: float = 30.0) -> PrStatus:
        status: PrStatus = await self.wait(
            lambda: next((s for s in self.statuses if s.pr_id == pr and s.state == state), None), timeout
        )
        return status

    def states(self, pr: str) -> list[tuple[str, str | None]]:
        return [(s.state, s.stage) for s in sorted(self.statuses, key=lambda s: s.seq) if s.pr_id == pr]


class InProcessO2ims:
    """o2ims's engine and consumers on their own connection, in the test's loop."""

    def __init__(self, url: str, policy: Policy, *, bus_class: type[Bus] = Bus) -> None:
        self.url = url
        self.policy = policy
        self.bus_class = bus_class
        self.bus: Bus | None = None
        self.engine: PrEngine | None = None

    async def start(self) -> InProcessO2ims:
        nc = await nats.connect(self.url, connect_timeout=5)
        self.bus = self.bus_class(nc, source="o2ims")
        store = RecordStore(await self.bus.kv(BUCKET_PR), PrRecord)
        self.engine = PrEngine(self.bus, store, HostLeases(await self.bus.kv(BUCKET_HOSTS)), self.policy)
        for spec, handlers in Handlers(self.engine).consumers():
            self.bus.consumer(spec, dispatch(*handlers))
        for c in self.bus.consumers:
            await c.start()
        return self

    async def stop(self) -> None:
        if self.bus is not None:
            await self.bus.stop_consumers(5.0)
            await self.bus.close()

    async def record(self, pr: str) -> PrRecord | None:
        assert self.engine is not None
        got = await self.engine.store.get(pr)
        return got[0] if got else None


@contextlib.asynccontextmanager
async def running(url: str, policy: Policy) -> AsyncIterator[InProcessO2ims]:
    o2 = await InProcessO2ims(url, policy).start()
    try:
        yield o2
    finally:
        await o2.stop()
