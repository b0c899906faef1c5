"""The I/O around the state machine: read the PR record, decide, write, then publish the outbox.

``PrEngine.handle`` is the whole life of one event: a revision-checked read-decide-write of the
record (``RecordStore.mutate`` re-decides on a conflicting write), then ``flush``: every command
in the record's outbox goes out with its stored, deterministic envelope id (lease releases run
in order between publishes), and the published commands are removed from the record. Writing
first makes the write the decision: a crash before the publishes leaves them in the outbox, and
the redelivered event (which the record has already absorbed) publishes them; a crash after
them re-publishes ids the stream drops as duplicates. A deletion is the one decision in two writes: its
lease releases go out first, and only then is the tombstone written (``deletion.finalize``/``complete``),
so that ``deleted`` is never seen while a host is still leased to the PR.

One process handles one PR's events one at a time (a lock per PR with events in hand): the events
of a PR arrive together (its hosts' progress), and deciding them concurrently would only make all
but one of the writes conflict, to be read, decided and written again. Other replicas are still
kept apart by the revision-checked writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import structlog

from services.o2ims.events import Event
from services.o2ims.policy import Policy
from services.o2ims.record import Command, PrRecord
from services.o2ims.table import COMPLETE_DELETION_FIRST, Decision, decide
from shared.bus import Bus
from shared.errors import TemporaryError
from shared.leases import HostLeases
from shared.messages import Envelope, utcnow
from shared.payloads import PrStatus
from shared.store import RecordConflict, RecordStore
from shared.vips import VipLeases

log = structlog.get_logger(__name__)


class PrEngine:
    """Decides events for PRs and carries out the decisions (one per process, shared by handlers)."""

    def __init__(
        self,
        bus: Bus,
        store: RecordStore[PrRecord],
        leases: HostLeases,
        policy: Policy,
        *,
        clock: Callable[[], datetime] = utcnow,
        vips: VipLeases | None = None,
    ) -> None:
        self.bus = bus
        self.store = store
        self.leases = leases
        #: VIPs focom allocated from the pool, released with the hosts (None: no VIP bucket to tend).
        self.vips = vips
        self.policy = policy
        self.clock = clock
        #: PR id -> (its lock, the handlers holding or awaiting it); only PRs with events in hand.
        self._serial: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def _one_at_a_time(self, pr_id: str) -> AsyncIterator[None]:
        lock, users = self._serial.setdefault(pr_id, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._serial[pr_id]

    async def handle(self, pr_id: str, event: Event) -> Decision:
        """Decide ``event`` for ``pr_id``, write the record, publish what it owes."""
        async with self._one_at_a_time(pr_id):
            return await self._handle(pr_id, event)

    async def _handle(self, pr_id: str, event: Event, *, again: bool = False) -> Decision:
        decisions: list[Decision] = []

        def change(record: PrRecord | None) -> PrRecord | None:
            decision = decide(record, event, self.clock(), self.policy)
            decisions.append(decision)
            return decision.record

        # Usually this process wrote the record last: start from the kept one and let the write's revision
        # check prove it current (a replica's write in between makes it fail, and the event is decided again).
        record, revision = await self.store.mutate(pr_id, change, known=self.store.cached(pr_id))
        decision = decisions[-1]
        structlog.contextvars.bind_contextvars(pr_id=pr_id, rule=decision.rule)
        for cmd in decision.commands:
            if isinstance(cmd.payload, PrStatus):
                status = cmd.payload
                log.info("pr_transition", pr_id=pr_id, state=status.state, stage=status.stage, reason=status.reason)
        if record is not None and (record.outbox or record.tombstone_pending):
            await self.flush(record, revision)
        if decision.rule == COMPLETE_DELETION_FIRST:
            if again:  # another replica's releases are still going out: the bus redelivers the event later
                raise TemporaryError(f"the deletion of PR {pr_id} is completing", delay=1.0, reason="Deleting")
            return await self._handle(pr_id, event, again=True)  # the deletion is complete now: decide it again
        return decision

    async def flush(self, record: PrRecord, revision: int | None = None) -> None:
        """Carry out the outbox in order, then drop what was done from the stored record.

        ``revision`` is the record's, when the caller just read or wrote it: the drop is then written
        without reading the record again (revision-checked: a newer record is read and dropped from).
        """
        batch: list[tuple[str, Envelope]] = []
        for cmd in record.outbox:
            if cmd.payload is not None and cmd.subject is not None:
                batch.append((cmd.subject, self.envelope(record, cmd)))
                continue
            await self._publish(batch)
            batch = []
            if cmd.quarantine:
                moved = await self.leases.quarantine(record.pr_id, cmd.quarantine, cmd.quarantine_reason)
                log.warning("hosts_quarantined", pr_id=record.pr_id, hosts=moved, reason=cmd.quarantine_reason)
            if cmd.release:
                released = await self.leases.release(record.pr_id, cmd.release)
                log.info("leases_released", pr_id=record.pr_id, hosts=released)
            if self.vips is not None and _deleting(record) and record.spec and record.spec.vip:
                # A pool VIP goes back with the hosts once the cluster is deleted (a VIP the inventory named
                # has no lease here: nothing happens). A scale-down, or a create queued behind the delete,
                # keeps it: focom gives a PR the VIP it already holds.
                freed = await self.vips.release(record.pr_id, [record.spec.vip])
                if freed:
                    log.info("vips_released", pr_id=record.pr_id, vips=freed)
        await self._publish(batch)
        done = {c.id for c in record.outbox}

        def drop(current: PrRecord | None) -> PrRecord | None:
            if current is None or not any(c.id in done for c in current.outbox):
                return None
            return current.without_commands(done)

        await self.store.mutate(record.pr_id, drop, known=(record, revision) if revision is not None else None)
        if record.tombstone_pending:
            # The deletion's leases are released (and quarantines recorded): only now its tombstone and
            # ``deleted`` (a crash before this line leaves the mark; the sweep or the next event completes it).
            await self._handle(record.pr_id, Event(kind="leases.released", at=self.clock(), message_id=""))

    def envelope(self, record: PrRecord, cmd: Command) -> Envelope:
        """The command's envelope, byte-identical however often it is rebuilt (stored id and time)."""
        assert cmd.payload is not None
        return Envelope(
            id=uuid.UUID(cmd.id),
            type=cmd.payload.type,
            correlation_id=record.fpr,
            causation_id=uuid.UUID(cmd.causation_id) if cmd.causation_id else None,
            occurred_at=cmd.at,
            source=self.bus.source,
            payload=cmd.payload,
        )

    async def _publish(self, batch: list[tuple[str, Envelope]]) -> None:
        if len(batch) == 1:
            await self.bus.publish(*batch[0])
        elif batch:
            await self.bus.publish_batch(batch)

    async def sweep(self) -> int:
        """Flush every record left with commands (a crash that no redelivery will revisit)."""
        flushed = 0
        for key in await self.store.keys():
            got = await self.store.get(key)
            if got is not None and (got[0].outbox or got[0].tombstone_pending):
                await self.flush(*got)
                flushed += 1
        return flushed

    async def purge_tombstones(self, retention: float) -> int:
        """Remove tombstones older than ``retention`` seconds (revision-checked)."""
        now = self.clock()
        purged = 0
        for key in await self.store.keys():
            got = await self.store.get(key)
            if got is None:
                continue
            rec, revision = got
            if rec.state != "deleted" or rec.outbox or rec.deleted_at is None:
                continue
            if (now - rec.deleted_at).total_seconds() >= retention:
                try:
                    await self.store.delete(key, revision)
                    purged += 1
                except RecordConflict:  # written since we read it: not a stale tombstone any more
                    log.info("tombstone_kept", pr_id=key)
        return purged


def _deleting(record: PrRecord) -> bool:
    """The record's releases are those of its deletion (not a scale-down's, nor one with a create queued)."""
    if record.state == "deleted":
        return True
    return record.tombstone_pending and not (record.queued is not None and record.queued.operation == "create")
