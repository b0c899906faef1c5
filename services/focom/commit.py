"""How focom commits a decision: plan, lease, write the FPR record (revision-checked), then carry it out.

Leases are taken all or nothing before the record is written and undone when the write does not happen;
only after the write are the cluster specs stored and the PR commands published, with ids derived from
(FPR, PR, generation, command), so a redelivery re-publishes duplicates the stream drops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from services.focom.domain import FprRecord, Plan
from services.focom.specs import SpecRecord, spec_key
from shared.bus import Bus
from shared.errors import InputError, TemporaryError
from shared.leases import HostLeases, LeaseConflict
from shared.messages import Envelope, derive_id
from shared.models import ClusterSpec
from shared.store import RecordConflict, RecordExists, RecordStore
from shared.subjects import o2ims_request

log = structlog.get_logger(__name__)

#: Writes of one FPR record retried on revision conflicts before the message is retried later.
MAX_ATTEMPTS = 16

PublishStatus = Callable[[FprRecord, int, Envelope | None], Awaitable[None]]


class Committer:
    """Commits focom's decisions to the ``fpr`` bucket and the host leases, then publishes what follows."""

    def __init__(
        self,
        bus: Bus,
        records: RecordStore[FprRecord],
        specs: RecordStore[SpecRecord],
        leases: HostLeases,
        publish_status: PublishStatus,
    ) -> None:
        self.bus = bus
        self.records = records
        self.specs = specs
        self.leases = leases
        self._publish_status = publish_status

    async def decide(
        self, name: str, planner: Callable[[FprRecord | None], Plan], where: Callable[[str], str]
    ) -> tuple[Plan, int]:
        """Plan, lease, write (revision-checked), retrying on conflict; leases taken are undone on failure."""
        taken: dict[str, str] = {}
        try:
            for _ in range(MAX_ATTEMPTS):
                got = await self.records.get(name)
                record, revision = got if got else (None, None)
                plan = planner(record)
                new = await self._lease(plan.leases, where)
                taken.update({h: plan.leases[h] for h in new})
                if plan.replay and revision is not None:
                    return plan, revision
                try:
                    if revision is None:
                        return plan, await self.records.create(name, plan.record)
                    return plan, await self.records.update(name, plan.record, revision)
                except (RecordConflict, RecordExists):
                    continue
            raise TemporaryError(f"FPR {name!r} kept changing while being written", delay=0.5)
        except BaseException:
            await asyncio.shield(self._undo(name, taken))
            raise

    async def _lease(self, leases: dict[str, str], where: Callable[[str], str]) -> list[str]:
        try:
            return await self.leases.acquire_batch(leases, concurrency=1024)
        except LeaseConflict as exc:
            path = where(exc.host_id)
            raise InputError(
                f"{path} [host-leased]: host {exc.host_id!r} is held by PR {exc.holder} (another "
                "request); nothing was reserved",
                path=path,
                reason="HostLeased",
            ) from None

    async def _undo(self, name: str, taken: dict[str, str]) -> None:
        if not taken:
            return
        got = await self.records.get(name)
        kept = {h for c in got[0].children.values() if c.desired == "present" for h in c.hosts} if got else set()
        by_owner: dict[str, list[str]] = {}
        for host_id, owner in taken.items():
            if host_id not in kept:
                by_owner.setdefault(owner, []).append(host_id)
        for owner, hosts in by_owner.items():
            await self.leases.release(owner, hosts)

    async def carry_out(self, plan: Plan, revision: int, specs: dict[str, ClusterSpec], env: Envelope) -> None:
        """After the decision is written: store specs, publish the commands and the FPR status."""
        record = plan.record
        children = {c.pr_id: c for c in record.children.values()}
        await self._store_specs(record, specs)
        items = []
        for cmd in plan.commands:
            child = children[cmd.pr_id]
            msg_id = derive_id("focom.pr", record.name, cmd.pr_id, child.command_gen, cmd.operation)
            items.append(
                (
                    o2ims_request(cmd.pr_id),
                    Envelope.wrap(cmd, source=self.bus.source, cause=env, correlation_id=record.name, id=msg_id),
                )
            )
        await self.bus.publish_batch(items)
        await self._publish_status(record, revision, env)
        log.info(
            "fpr_accepted",
            fpr=record.name,
            operation=record.operation,
            generation=record.generation,
            commands=len(items),
            replay=plan.replay,
            phase=record.phase,
        )

    async def _store_specs(self, record: FprRecord, specs: dict[str, ClusterSpec]) -> None:
        gen = record.generation
        wanted = [
            (c.cluster, SpecRecord(generation=c.command_gen, spec=specs[c.cluster]))
            for c in record.children.values()
            if c.command_gen == gen and c.command != "delete" and c.cluster in specs
        ]
        slots = asyncio.Semaphore(512)

        def newer(new: SpecRecord) -> Callable[[SpecRecord | None], SpecRecord | None]:
            return lambda cur: new if cur is None or cur.generation < new.generation else None

        async def put(cluster: str, new: SpecRecord) -> None:
            async with slots:
                try:  # the common case, a new cluster: one round trip instead of read-then-write
                    await self.specs.create(spec_key(record.name, cluster), new)
                except RecordExists:
                    await self.specs.mutate(spec_key(record.name, cluster), newer(new))

        await asyncio.gather(*(put(c, r) for c, r in wanted))
