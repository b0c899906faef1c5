"""Host leases in the ``hosts`` KV bucket: key = host id, value = the PR that holds it.

A set of hosts is acquired all-or-nothing: keys are created (never overwritten) in sorted
order, and on the first host held by someone else every lease taken by this call is rolled
back with a revision check. Sorted order means two concurrent acquisitions over overlapping
sets cannot both fail on each other: at least one wins, and the loser holds nothing.
Acquiring hosts already held by the same owner is a no-op (idempotent replays).

Quarantine: a host whose teardown failed or timed out is in an unknown state (half-reset, an agent
maybe still running), so it must not go back into the pool. Its lease passes from the PR to the
owner ``QUARANTINE`` (revision-checked), with the reason and the PR it came from: every acquisition
then refuses it as leased, and no PR's release can free it. Only an operator clears it
(``clear_quarantine``, e.g. ``o2ctl host clear-quarantine HOST``) after looking at the host.
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

#: The owner of a quarantined host's lease: no PR, so no one acquires or releases it.
QUARANTINE = "quarantine"


class Lease(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    owner: str
    acquired_at: datetime
    #: Quarantine only: why, and the PR whose teardown of the host failed.
    reason: str | None = None
    previous_owner: str | None = None

    @property
    def quarantined(self) -> bool:
        return self.owner == QUARANTINE


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

    async def acquire(self, owner: str, host_ids: Iterable[str]) -> list[str]:
        """Take every host for ``owner`` or none; returns the hosts newly taken by this call."""
        taken: list[tuple[str, int]] = []
        try:
            for host_id in sorted(set(host_ids)):
                lease = Lease(owner=owner, acquired_at=datetime.now(UTC))
                try:
                    taken.append((host_id, await self.store.create(host_id, lease)))
                except RecordExists:
                    holder = await self.owner_of(host_id)
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
                    return host_id, None, await self.owner_of(host_id)

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
                        holder = await self.owner_of(host_id)
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
        """Release the given hosts (default: all) that ``owner`` holds; returns those released."""
        candidates = sorted(set(host_ids)) if host_ids is not None else await self.store.keys()
        released = []
        for host_id in candidates:
            got = await self.store.get(host_id)
            if got is None or got[0].owner != owner:
                continue
            try:
                await self.store.delete(host_id, got[1])
                released.append(host_id)
            except RecordConflict:
                continue
        return released

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

    # -- quarantine ---------------------------------------------------------------------------

    async def quarantine(self, owner: str, host_ids: Iterable[str], reason: str) -> list[str]:
        """Move the given hosts from ``owner`` (or from no one) into quarantine; returns those moved.

        A host another PR holds meanwhile is left alone: it is no longer ``owner``'s to judge.
        """
        moved = []
        for host_id in sorted(set(host_ids)):
            marker = Lease(owner=QUARANTINE, acquired_at=datetime.now(UTC), reason=reason[:500], previous_owner=owner)
            for _ in range(8):
                got = await self.store.get(host_id)
                try:
                    if got is None:
                        await self.store.create(host_id, marker)
                    elif got[0].owner == owner:
                        await self.store.update(host_id, marker, got[1])
                    elif not got[0].quarantined:
                        break
                    moved.append(host_id)
                    break
                except (RecordConflict, RecordExists):
                    continue  # changed under us: look again
        return moved

    async def quarantined(self) -> dict[str, Lease]:
        """Every quarantined host, with its marker."""
        out = {}
        for host_id in await self.store.keys():
            got = await self.store.get(host_id)
            if got is not None and got[0].quarantined:
                out[host_id] = got[0]
        return dict(sorted(out.items()))

    async def clear_quarantine(self, host_id: str) -> bool:
        """Return a quarantined host to the pool (an operator's decision); False when it was not quarantined."""
        got = await self.store.get(host_id)
        if got is None or not got[0].quarantined:
            return False
        try:
            await self.store.delete(host_id, got[1])
        except RecordConflict:
            return False
        return True
