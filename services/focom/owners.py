"""Which FocomProvisioningRequest CR owns an FPR name: a durable binding in the ``fpr`` bucket.

FPR names are global, CRs are namespaced: two namespaces can hold CRs of the same name. The first CR
to claim a name binds it (KV ``create``, so exactly one wins, across replicas and restarts) under the
key ``<name>._cr`` (a CR or cluster name never contains ``_``, so no FPR or spec record can collide).
Every later CR of that name, in any namespace, is refused for as long as the owner exists or its
clusters do: a binding passes to another CR only once the owning CR is gone *and* the FPR is absent or
``Deleted``. A name already used by a request submitted on the bus is not given to a CR either.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from services.focom.domain import FprRecord
from shared.errors import TemporaryError
from shared.store import RecordConflict, RecordExists, RecordStore

OWNER_SUFFIX = "._cr"


class CrOwner(BaseModel):
    """The CR an FPR name belongs to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str
    uid: str
    bound_at: datetime


def owner_key(name: str) -> str:
    return f"{name}{OWNER_SUFFIX}"


@dataclass(frozen=True)
class Claim:
    """The outcome of a claim: ours, or held by ``holder`` (a namespace, or ``None`` for a bus request)."""

    ours: bool
    holder: str | None = None


#: Whether the CR (namespace, name, uid) still exists.
AliveCheck = Callable[[str, str, str], Awaitable[bool]]


class CrOwners:
    def __init__(self, owners: RecordStore[CrOwner], records: RecordStore[FprRecord], alive: AliveCheck) -> None:
        self.owners = owners
        self.records = records
        self.alive = alive

    async def _fpr_live(self, name: str) -> bool:
        got = await self.records.get(name)
        return got is not None and got[0].phase != "Deleted"

    async def claim(self, name: str, namespace: str, uid: str) -> Claim:
        """Bind ``name`` to this CR if it is free (or its binding is stale); say who holds it otherwise."""
        key = owner_key(name)
        mine = CrOwner(namespace=namespace, uid=uid, bound_at=datetime.now(UTC))
        for _ in range(8):
            got = await self.owners.get(key)
            try:
                if got is None:
                    if await self._fpr_live(name):
                        return Claim(False, None)  # a request submitted on the bus holds the name
                    await self.owners.create(key, mine)
                    return Claim(True)
                owner, revision = got
                if owner.uid == uid:
                    return Claim(True)
                if await self.alive(owner.namespace, name, owner.uid) or await self._fpr_live(name):
                    return Claim(False, owner.namespace)
                await self.owners.update(key, mine, revision)
                return Claim(True)
            except (RecordExists, RecordConflict):
                continue  # another replica bound or changed it meanwhile: look again
        raise TemporaryError(f"FPR name {name!r}: its owner binding keeps changing", delay=1.0)

    async def release(self, name: str, uid: str) -> None:
        """Drop the binding of ``name`` if this CR holds it (revision-checked)."""
        got = await self.owners.get(owner_key(name))
        if got is not None and got[0].uid == uid:
            with contextlib.suppress(RecordConflict):  # rebound meanwhile: not ours to drop
                await self.owners.delete(owner_key(name), got[1])
