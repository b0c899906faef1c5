"""A deletion releases the hosts' leases before anyone can see ``deleted``, and survives a crash in between.

An SMO that sees a PR ``deleted`` (its record, the O2IMS API, the status stream) may at once ask for a new
cluster on the same hosts: none of them may still be leased to the deleted PR. So the engine carries out
the releases (and quarantines) first, and only then writes the tombstone and publishes ``deleted``. A kill
between the two steps leaves the tombstone due; a restart (the sweep) or the next event of the PR completes
it. Real NATS KV for the record and the leases.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from services.o2ims.engine import PrEngine
from services.o2ims.record import PrRecord
from shared.bus import Bus
from shared.leases import HostLeases
from shared.messages import decode
from shared.payloads import PrStatus
from shared.store import RecordStore
from shared.subjects import BUCKET_HOSTS, BUCKET_PR, o2ims_status
from tests.unit.o2ims.machine import POLICY, PR, Clock, canonical, spec

TO_DELETING = ("create", "hostprep.done", "capi.applied", "cluster.ready", "delete", "capi.deleted")


class Killed(Exception):
    """The process died here (SIGKILL): nothing after this point of the flush happened."""


class WatchedLeases(HostLeases):
    """Leases that note, at each release, what a reader of the PR's record sees at that very moment."""

    def __init__(self, kv: object, store: RecordStore[PrRecord], *, kill: str | None = None) -> None:
        super().__init__(kv)  # type: ignore[arg-type]
        self.records = store
        self.kill = kill
        self.states_at_release: list[str | None] = []

    async def release(self, owner: str, host_ids: Iterable[str] | None = None) -> list[str]:
        got = await self.records.get(owner)
        self.states_at_release.append(got[0].state if got else None)
        if self.kill == "before":
            raise Killed
        released = await super().release(owner, host_ids)
        if self.kill == "after":
            raise Killed
        return released


async def _stores(bus: Bus) -> tuple[RecordStore[PrRecord], HostLeases]:
    return RecordStore(await bus.kv(BUCKET_PR), PrRecord), HostLeases(await bus.kv(BUCKET_HOSTS))


async def _to_teardown(engine: PrEngine, clock: Clock) -> None:
    for kind in TO_DELETING:
        got = await engine.store.get(PR)
        event, now = canonical(kind, got[0] if got else None, clock.tick())
        clock.now = now
        await engine.handle(PR, event)
    got = await engine.store.get(PR)
    assert got is not None and got[0].phase == "deleting/teardown"


async def _teardown_done(engine: PrEngine, clock: Clock) -> None:
    got = await engine.store.get(PR)
    event, _ = canonical("teardown.done", got[0] if got else None, clock.tick())
    await engine.handle(PR, event)


async def test_the_leases_are_free_before_the_record_or_the_status_says_deleted(bus: Bus) -> None:
    store, plain = await _stores(bus)
    leases = WatchedLeases(plain.store.kv, store)
    s = spec(workers=2)
    hosts = [h.host_id for h in s.all_hosts]
    await plain.acquire(PR, hosts)
    free_when_deleted: list[dict[str, str | None]] = []

    async def on_status(msg: object) -> None:
        status = decode(msg.data).payload  # type: ignore[attr-defined]
        if isinstance(status, PrStatus) and status.state == "deleted":
            free_when_deleted.append({h: await plain.owner_of(h) for h in hosts})

    await bus.nc.subscribe(o2ims_status(PR), cb=on_status)
    clock = Clock()
    engine = PrEngine(bus, store, leases, POLICY, clock=lambda: clock.now)
    await _to_teardown(engine, clock)
    await _teardown_done(engine, clock)

    got = await store.get(PR)
    assert got is not None and got[0].state == "deleted" and not got[0].tombstone_pending
    # At the release, a reader of the record still saw the deletion under way, not the tombstone.
    assert leases.states_at_release == ["deleting"]
    assert {h: await plain.owner_of(h) for h in hosts} == dict.fromkeys(hosts)
    await bus.nc.flush()
    assert free_when_deleted == [dict.fromkeys(hosts)]


@pytest.mark.parametrize("kill", ["before", "after"])
@pytest.mark.parametrize("recovery", ["sweep", "next event"])
async def test_a_kill_between_the_releases_and_the_tombstone_converges_on_restart(
    bus: Bus, kill: str, recovery: str
) -> None:
    store, plain = await _stores(bus)
    s = spec(workers=2)
    hosts = [h.host_id for h in s.all_hosts]
    await plain.acquire(PR, hosts)
    clock = Clock()
    dying = PrEngine(bus, store, WatchedLeases(plain.store.kv, store, kill=kill), POLICY, clock=lambda: clock.now)
    await _to_teardown(dying, clock)
    with pytest.raises(Killed):
        await _teardown_done(dying, clock)
    got = await store.get(PR)
    assert got is not None and got[0].tombstone_pending and got[0].state == "deleting"  # nothing says deleted

    restarted = PrEngine(bus, RecordStore(await bus.kv(BUCKET_PR), PrRecord), plain, POLICY, clock=lambda: clock.now)
    if recovery == "sweep":
        assert await restarted.sweep() == 1
    else:  # the redelivered teardown answer: the deletion completes first, then the event finds a tombstone
        decision = await restarted.handle(PR, canonical("teardown.done", got[0], clock.tick())[0])
        assert decision.ignored is not None
    got = await store.get(PR)
    assert got is not None and got[0].state == "deleted" and not got[0].tombstone_pending and got[0].outbox == ()
    assert {h: await plain.owner_of(h) for h in hosts} == dict.fromkeys(hosts)
