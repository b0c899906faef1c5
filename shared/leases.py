"""Host leases in the ``hosts`` KV bucket: key = host id, value = the PR that holds it.

A set of hosts is acquired all-or-nothing: keys are created (never overwritten) in sorted
order, and on the first host held by someone else every lease taken by this call is rolled
back with a revision check. Sorted order means two concurrent acquisitions over overlapping
sets cannot both fail on each other: at least one wins, and the loser holds nothing.
Acquiring hosts already held by the same owner is a no-op (idempotent replays).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import UTC, datetime

from nats.js.kv import KeyValue
from pydantic import BaseModel, ConfigDict

from shared.errors import PermanentError
from shared.store import RecordConflict, RecordExists, RecordStore


class Lease(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    owner: str
    acquired_at: datetime


class LeaseConflict(PermanentError):
    """A requested host is held by another owner."""

    def __init__(self, host_id: str, holder: str) -> None:
        super().__init__(f"host {host_id!r} is leased to {holder!r}", reason="HostLeased")
        self.host_id = host_id
        self.holder = holder


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
