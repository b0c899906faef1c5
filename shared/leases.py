"""Host leases in the ``hosts`` KV bucket: key = host id, value = the PR that holds it.

A set of hosts is acquired all-or-nothing: keys are created (never overwritten) in sorted
order, and on the first host held by someone else every lease taken by this call is rolled
back with a revision check. Sorted order means two concurrent acquisitions over overlapping
sets cannot both fail on each other: at least one wins, and the loser holds nothing.
Acquiring hosts already held by the same owner is a no-op (idempotent replays).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from nats.js.kv import KeyValue
from pydantic import BaseModel, ConfigDict

from shared.errors import PermanentError
from shared.store import RecordConflict, RecordExists, RecordStore


class Lease(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    owner: str
    acquired_at: datetime
    #: Why the host is quarantined (its reset failed): it stays leased, ``release`` keeps it, and only
    #: ``lift_quarantine`` (an operator, once the host is repaired) frees it.
    quarantined: str | None = None


class LeaseConflict(PermanentError):
    """A requested host is held by another owner."""

    def __init__(self, host_id: str, holder: str) -> None:
        super().__init__(f"host {host_id!r} is leased to {holder!r}", reason="HostLeased")
        self.host_id = host_id
        self.holder = holder


def _lease(owner: str) -> Lease:
    return Lease(owner=owner, acquired_at=datetime.now(UTC))


class HostLeases:
    def __init__(self, kv: KeyValue) -> None:
        self.store = RecordStore(kv, Lease)

    async def owner_of(self, host_id: str) -> str | None:
        got = await self.store.get(host_id)
        return got[0].owner if got else None

    async def _holder(self, host_id: str) -> str | None:
        """Who holds the host, for acquiring: a quarantined host is held by no requester, not even its owner."""
        got = await self.store.get(host_id)
        if got is None:
            return None
        lease = got[0]
        return lease.owner if lease.quarantined is None else f"quarantine (reset failed under {lease.owner})"

    async def available_to(self, host_id: str, owner: str) -> bool:
        """Whether ``owner`` could lease the host now: free, or already its own (and not quarantined)."""
        return await self._holder(host_id) in (None, owner)

    async def acquire(self, owner: str, host_ids: Iterable[str]) -> list[str]:
        """Take every host for ``owner`` or none; returns the hosts newly taken by this call."""
        taken: list[tuple[str, int]] = []
        try:
            for host_id in sorted(set(host_ids)):
                lease = Lease(owner=owner, acquired_at=datetime.now(UTC))
                try:
                    taken.append((host_id, await self.store.create(host_id, lease)))
                except RecordExists:
                    holder = await self._holder(host_id)
                    if holder == owner:
                        continue
                    if holder is None:
                        # Released between our create and our read: try once more.
                        taken.append((host_id, await self.store.create(host_id, lease)))
                        continue
                    raise LeaseConflict(host_id, holder) from None
        except BaseException:
            await self._rollback(taken)
            raise
        return [h for h, _ in taken]

    async def acquire_batch(
        self, assignments: Mapping[str, str], *, concurrency: int = 256, settle: float = 0.05
    ) -> list[str]:
        """Take every host for its own owner (host id → owner), all or nothing; returns the hosts newly taken.

        For a batch of many owners (one per PR) that must succeed or fail together. Fast path: every
        create in flight at once. If any host is held by another owner, all this call took is rolled
        back and the batch is taken again one host at a time in sorted order (ordered locking: of two
        overlapping callers one wins); a conflict there is re-checked once after ``settle`` seconds, so
        a competitor's fast-path rollback still in flight cannot make both lose.
        """
        items = sorted(assignments.items())
        slots = asyncio.Semaphore(concurrency)

        async def one(host_id: str, owner: str) -> tuple[str, int | None, str | None]:
            async with slots:
                try:
                    return host_id, await self.store.create(host_id, _lease(owner)), None
                except RecordExists:
                    return host_id, None, await self._holder(host_id)

        results = await asyncio.gather(*(one(h, o) for h, o in items), return_exceptions=True)
        taken = [(r[0], r[1]) for r in results if not isinstance(r, BaseException) and r[1] is not None]
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            await self._rollback_all(taken, concurrency)
            raise failure
        if all(r[1] is not None or r[2] == assignments[r[0]] for r in results if not isinstance(r, BaseException)):
            return [h for h, _ in taken]
        await self._rollback_all(taken, concurrency)
        return await self._acquire_ordered(items, settle)

    async def _acquire_ordered(self, items: list[tuple[str, str]], settle: float) -> list[str]:
        taken: list[tuple[str, int]] = []
        try:
            for host_id, owner in items:
                for attempt in range(3):
                    try:
                        taken.append((host_id, await self.store.create(host_id, _lease(owner))))
                        break
                    except RecordExists:
                        holder = await self._holder(host_id)
                        if holder == owner:
                            break
                        if holder is not None and attempt == 2:
                            raise LeaseConflict(host_id, holder) from None
                        if holder is not None:
                            # Possibly a competitor's fast path about to roll back: look again shortly.
                            await asyncio.sleep(settle * (attempt + 1))
                else:
                    raise LeaseConflict(host_id, "a concurrent request")
        except BaseException:
            await self._rollback(taken)
            raise
        return [h for h, _ in taken]

    async def _rollback_all(self, taken: list[tuple[str, int]], concurrency: int) -> None:
        slots = asyncio.Semaphore(concurrency)

        async def undo(host_id: str, revision: int) -> None:
            async with slots:
                with contextlib.suppress(RecordConflict):
                    await self.store.delete(host_id, revision)

        await asyncio.gather(*(undo(h, r) for h, r in taken))

    async def _rollback(self, taken: list[tuple[str, int]]) -> None:
        for host_id, revision in reversed(taken):
            # Revision-checked: never remove a lease someone else took after us.
            with contextlib.suppress(RecordConflict):
                await self.store.delete(host_id, revision)

    async def release(self, owner: str, host_ids: Iterable[str] | None = None) -> list[str]:
        """Release the given hosts (default: all) that ``owner`` holds; returns those released.

        A quarantined host is not released: it must not go back into the pool until it is repaired.
        """
        candidates = sorted(set(host_ids)) if host_ids is not None else await self.store.keys()
        released = []
        for host_id in candidates:
            got = await self.store.get(host_id)
            if got is None or got[0].owner != owner or got[0].quarantined is not None:
                continue
            try:
                await self.store.delete(host_id, got[1])
                released.append(host_id)
            except RecordConflict:
                continue
        return released

    async def quarantine(self, owner: str, host_ids: Iterable[str], reason: str) -> list[str]:
        """Mark hosts ``owner`` holds as quarantined (kept out of the pool); returns those marked now."""
        marked = []
        for host_id in sorted(set(host_ids)):
            for _ in range(8):
                got = await self.store.get(host_id)
                if got is None or got[0].owner != owner or got[0].quarantined is not None:
                    break
                try:
                    await self.store.update(host_id, got[0].model_copy(update={"quarantined": reason[:300]}), got[1])
                    marked.append(host_id)
                    break
                except RecordConflict:
                    continue
        return marked

    async def quarantined(self) -> dict[str, Lease]:
        """Every quarantined host and its lease (owner, reason)."""
        out = {}
        for host_id in await self.store.keys():
            got = await self.store.get(host_id)
            if got is not None and got[0].quarantined is not None:
                out[host_id] = got[0]
        return out

    async def lift_quarantine(self, host_id: str) -> bool:
        """An operator repaired the host: drop its quarantined lease (revision-checked); True if dropped."""
        got = await self.store.get(host_id)
        if got is None or got[0].quarantined is None:
            return False
        try:
            await self.store.delete(host_id, got[1])
        except RecordConflict:
            return False
        return True

    async def held_by(self, owner: str) -> list[str]:
        out = []
        for host_id in await self.store.keys():
            got = await self.store.get(host_id)
            if got is not None and got[0].owner == owner:
                out.append(host_id)
        return sorted(out)

    async def all(self) -> dict[str, str]:
        out = {}
        for host_id in await self.store.keys():
            got = await self.store.get(host_id)
            if got is not None:
                out[host_id] = got[0].owner
        return out
