"""The engine against a real KV bucket: one PR's events decided one at a time, nothing lost."""

from __future__ import annotations

import asyncio

import nats

from services.o2ims.engine import PrEngine
from services.o2ims.record import PrRecord
from shared.bus import Bus
from shared.leases import HostLeases
from shared.payloads import HostProgress
from shared.store import RecordConflict, RecordStore
from shared.subjects import BUCKET_HOSTS, BUCKET_PR
from tests.unit.o2ims.machine import POLICY, PR, Clock, ev, request, spec


class CountingStore(RecordStore[PrRecord]):
    """Counts the reads, and the writes that lost to a concurrent writer."""

    conflicts = 0
    reads = 0

    async def get(self, key: str) -> tuple[PrRecord, int] | None:
        self.reads += 1
        return await super().get(key)

    async def update(self, key: str, record: PrRecord, revision: int) -> int:
        try:
            return await super().update(key, record, revision)
        except RecordConflict:
            self.conflicts += 1
            raise


async def test_one_prs_events_arriving_together_are_decided_in_turn_without_conflicts(bus: Bus) -> None:
    store = CountingStore(await bus.kv(BUCKET_PR), PrRecord, cache=8)
    engine = PrEngine(bus, store, HostLeases(await bus.kv(BUCKET_HOSTS)), POLICY)
    clock = Clock()
    s = spec(workers=2)
    await engine.handle(PR, request("create", s, clock.tick()))
    got = await store.get(PR)
    assert got is not None and got[0].hostprep_job is not None
    job = got[0].hostprep_job.id
    hosts = [h.host_id for h in s.all_hosts]

    events = [
        ev("host.progress", HostProgress(pr_id=PR, host_id=h, step=f"step-{i}", status="running"), clock.tick(), job)
        for i in range(8)
        for h in hosts
    ]
    reads = store.reads
    await asyncio.gather(*(engine.handle(PR, e) for e in events))

    assert store.conflicts == 0
    assert store.reads == reads  # each decided from the record the engine had just written
    got = await store.get(PR)
    assert got is not None
    assert {h: got[0].hosts[h].step for h in hosts} == dict.fromkeys(hosts, "step-7")
    assert engine._serial == {}  # no lock left behind for a PR with nothing in hand


async def test_two_engines_on_one_pr_still_lose_no_event(bus: Bus, nats_url: str) -> None:
    """Replicas are not serialised by the lock: their revision-checked writes keep every event."""
    nc = await nats.connect(nats_url)
    try:
        other_bus = Bus(nc, source="o2ims")
        engines = [
            PrEngine(
                b, RecordStore(await b.kv(BUCKET_PR), PrRecord, cache=8), HostLeases(await b.kv(BUCKET_HOSTS)), POLICY
            )
            for b in (bus, other_bus)
        ]
        clock = Clock()
        s = spec(workers=3)
        await engines[0].handle(PR, request("create", s, clock.tick()))
        got = await engines[0].store.get(PR)
        assert got is not None and got[0].hostprep_job is not None
        job = got[0].hostprep_job.id
        hosts = [h.host_id for h in s.all_hosts]
        events = [
            ev("host.progress", HostProgress(pr_id=PR, host_id=h, step="containerd", status="done"), clock.tick(), job)
            for h in hosts
        ]
        await asyncio.gather(*(engines[i % 2].handle(PR, e) for i, e in enumerate(events)))
        got = await engines[1].store.get(PR)
        assert got is not None
        assert all(got[0].hosts[h].step == "containerd" for h in hosts)
    finally:
        await nc.close()
