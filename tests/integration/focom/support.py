"""In-process focom on a test bus, a recorder of what it publishes, and a stand-in for o2ims's reports."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nats.aio.msg import Msg

from services.focom import crs
from services.focom.domain import FprRecord
from services.focom.handlers import Focom
from services.focom.inventory_source import InventorySource
from services.focom.settings import FocomSettings
from services.focom.specs import SpecRecord
from shared.bus import Bus, MessageContext
from shared.catalog import load_catalog
from shared.dispatch import dispatch
from shared.kube import KubeClient
from shared.leases import HostLeases
from shared.messages import Envelope, decode
from shared.payloads import FocomDecision, FocomRequest, FprStatus, MessageFailed, PrRequest, PrStatus
from shared.store import RecordStore
from shared.subjects import (
    ALL_FOCOM_STATUS,
    ALL_O2IMS_REQUESTS,
    BUCKET_FPR,
    BUCKET_HOSTS,
    BUCKET_VIPS,
    FOCOM_CHILD_STATUS_CONSUMER,
    FOCOM_REQUESTS,
    FOCOM_REQUESTS_CONSUMER,
    o2ims_status,
)
from shared.vips import VipLeases

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def example_inventory(tmp_path: Path) -> Path:
    path = tmp_path / "input.json"
    shutil.copy(EXAMPLES / "input.json", path)
    return path


def write_inventory(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data))
    return path


class Recorder:
    """Every envelope published on a subject pattern, with a way to wait for a condition."""

    def __init__(self) -> None:
        self.items: list[tuple[str, Envelope]] = []
        self._changed = asyncio.Event()

    async def on_msg(self, msg: Msg) -> None:
        self.items.append((msg.subject, decode(msg.data)))
        self._changed.set()

    async def wait(self, pred: Callable[[], Any], timeout: float = 20.0) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                got = pred()
                if got:
                    return got
                self._changed.clear()
                await self._changed.wait()

    def payloads(self, kind: type) -> list[Any]:
        return [e.payload for _, e in self.items if isinstance(e.payload, kind)]


class Harness:
    def __init__(self, bus: Bus, focom: Focom, commands: Recorder, statuses: Recorder) -> None:
        self.bus = bus
        self.focom = focom
        self.commands = commands
        self.statuses = statuses
        self.leases = focom.leases
        self.handled: set[str] = set()
        self._handled_changed = asyncio.Event()
        self._seq: dict[str, int] = {}

    async def on_request(self, req: FocomRequest, ctx: MessageContext) -> None:
        """focom's request handler, noting each message it finished with (whatever the outcome)."""
        try:
            await self.focom.on_request(req, ctx)
        finally:
            self.handled.add(str(ctx.envelope.id))
            self._handled_changed.set()

    async def on_decision(self, decision: FocomDecision, ctx: MessageContext) -> None:
        try:
            await self.focom.on_decision(decision, ctx)
        finally:
            self.handled.add(str(ctx.envelope.id))
            self._handled_changed.set()

    async def decide(self, name: str, decision: str, by: str = "tester") -> Envelope:
        return await self.bus.emit(
            FOCOM_REQUESTS,
            FocomDecision(name=name, decision=decision, by=by),  # type: ignore[arg-type]
            correlation_id=name,
        )

    async def wait_handled(self, envelopes: list[Envelope], timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            while not {str(e.id) for e in envelopes} <= self.handled:
                self._handled_changed.clear()
                await self._handled_changed.wait()

    async def submit(self, name: str, **fields: Any) -> Envelope:
        return await self.bus.emit(FOCOM_REQUESTS, FocomRequest(name=name, **fields), correlation_id=name)

    def prs(self, fpr: str | None = None) -> list[PrRequest]:
        return [p for p in self.commands.payloads(PrRequest) if fpr is None or p.fpr == fpr]

    def fpr_statuses(self, name: str) -> list[FprStatus]:
        return [p for p in self.statuses.payloads(FprStatus) if p.name == name]

    def failures(self, name: str) -> list[MessageFailed]:
        return [
            e.payload for s, e in self.statuses.items if isinstance(e.payload, MessageFailed) and s.endswith(f".{name}")
        ]

    async def wait_phase(self, name: str, phase: str, timeout: float = 20.0) -> FprStatus:
        def found() -> FprStatus | None:
            got = self.fpr_statuses(name)
            return got[-1] if got and got[-1].phase == phase else None

        result: FprStatus = await self.statuses.wait(found, timeout)
        return result

    async def wait_failure(self, name: str, timeout: float = 20.0) -> MessageFailed:
        result: MessageFailed = await self.statuses.wait(lambda: (self.failures(name) or [None])[-1], timeout)
        return result

    async def report(self, pr: PrRequest, state: str, stage: str | None = None, reason: str | None = None) -> None:
        """What o2ims would publish for ``pr``."""
        seq = self._seq[pr.pr_id] = self._seq.get(pr.pr_id, 0) + 1
        cluster = (
            pr.spec.name if pr.spec else next((p.spec.name for p in self.prs() if p.pr_id == pr.pr_id and p.spec), "?")
        )
        status = PrStatus(
            pr_id=pr.pr_id,
            fpr=pr.fpr,
            cluster=cluster,
            state=state,
            stage=stage,  # type: ignore[arg-type]
            reason=reason,
            at=datetime.now(UTC),
            seq=seq,
        )
        await self.bus.emit(o2ims_status(pr.pr_id), status, correlation_id=pr.fpr)

    async def record(self, name: str) -> FprRecord | None:
        got = await self.focom.records.get(name)
        return got[0] if got else None


async def start_focom(bus: Bus, inventory: Path, **settings: Any) -> Harness:
    s = FocomSettings(inventory_path=inventory, **settings)
    fpr = await bus.kv(BUCKET_FPR)
    vips = VipLeases(await bus.kv(BUCKET_VIPS), s.vip_pool_entries) if s.vip_pool else None
    focom = Focom(
        s,
        bus,
        RecordStore(fpr, FprRecord),
        RecordStore(fpr, SpecRecord),
        HostLeases(await bus.kv(BUCKET_HOSTS)),
        InventorySource(inventory, **s.inventory_rules()),
        load_catalog(s.templates_dir),
        vips=vips,
    )
    commands, statuses = Recorder(), Recorder()
    # Read what the streams stored (duplicates dropped by id), not what went over the wire.
    await bus.js.subscribe(ALL_O2IMS_REQUESTS, cb=commands.on_msg, ordered_consumer=True)
    await bus.js.subscribe(ALL_FOCOM_STATUS, cb=statuses.on_msg, ordered_consumer=True)
    harness = Harness(bus, focom, commands, statuses)
    await bus.consumer(FOCOM_REQUESTS_CONSUMER, dispatch(harness.on_request, harness.on_decision)).start()
    await bus.consumer(FOCOM_CHILD_STATUS_CONSUMER, dispatch(focom.on_child_status, focom.on_child_refusal)).start()
    return harness


async def wait_cr(
    client: KubeClient,
    name: str,
    check: Callable[[dict[str, Any] | None], bool],
    namespace: str = "default",
    timeout: float = 30.0,
) -> dict[str, Any] | None:
    """Watch the CR until ``check(obj or None-if-gone)`` holds; returns the last object seen."""
    async with asyncio.timeout(timeout):
        while True:
            items, version = await client.list(
                crs.API_VERSION, crs.KIND, namespace, field_selector=f"metadata.name={name}"
            )
            obj = items[0] if items else None
            if check(obj):
                return obj
            async for event in client.watch(
                crs.API_VERSION,
                crs.KIND,
                namespace,
                resource_version=version,
                field_selector=f"metadata.name={name}",
                timeout_seconds=10,
            ):
                if event.type == "BOOKMARK":
                    continue
                obj = None if event.type == "DELETED" else event.object
                if check(obj):
                    return obj
