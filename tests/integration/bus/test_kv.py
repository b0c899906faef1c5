"""KV record store and host leases against a real nats-server."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel, ConfigDict

from shared.bus import Bus
from shared.leases import HostLeases, LeaseConflict
from shared.store import DELETE, RecordExists, RecordStore
from shared.subjects import BUCKET_HOSTS, BUCKET_PR


class Counter(BaseModel):
    value: int = 0
    writers: list[str] = []


async def test_concurrent_revision_checked_updates_lose_no_write(bus: Bus) -> None:
    store = RecordStore(await bus.kv(BUCKET_PR), Counter)
    await store.create("counter", Counter())

    async def bump(i: int) -> None:
        await store.mutate(
            "counter", lambda c: Counter(value=(c.value if c else 0) + 1, writers=[*(c.writers if c else []), f"w{i}"])
        )

    await asyncio.gather(*(bump(i) for i in range(40)))
    got = await store.get("counter")
    assert got is not None
    record, _rev = got
    assert record.value == 40
    assert sorted(record.writers) == sorted(f"w{i}" for i in range(40))


async def test_store_create_update_delete(bus: Bus) -> None:
    store = RecordStore(await bus.kv(BUCKET_PR), Counter)
    rev = await store.create("a", Counter(value=1))
    with pytest.raises(RecordExists):
        await store.create("a", Counter(value=2))
    rev2 = await store.update("a", Counter(value=2), rev)
    assert rev2 > rev
    # No change → no write.
    same, same_rev = await store.mutate("a", lambda c: c)
    assert same is not None and same.value == 2 and same_rev == rev2
    gone, _ = await store.mutate("a", lambda c: DELETE)
    assert gone is None
    assert await store.get("a") is None
    # A deleted key can be created again.
    await store.create("a", Counter(value=3))
    assert (await store.get("a")) is not None


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)
    value: int = 0


async def test_a_cached_store_decodes_a_revision_once_and_never_serves_a_stale_record(bus: Bus) -> None:
    kv = await bus.kv(BUCKET_PR)
    cached, other = RecordStore(kv, Frozen, cache=2), RecordStore(kv, Frozen)
    rev = await cached.create("c1", Frozen(value=1))
    assert cached.cached("c1") == (Frozen(value=1), rev) and other.cached("c1") is None
    first = await cached.get("c1")
    assert first is not None and first[0].value == 1 and first[1] == rev
    again = await cached.get("c1")
    assert again is not None and again[0] is first[0]  # the same revision: the kept record, not a new decode
    # Another writer changes it: the next read is of the new revision.
    rev2 = await other.update("c1", Frozen(value=2), rev)
    assert cached.cached("c1") == (Frozen(value=1), rev)  # what it last saw, not necessarily current
    fresh = await cached.get("c1")
    assert fresh is not None and fresh == (Frozen(value=2), rev2)
    # Bounded: the least recently used key goes.
    for key in ("c2", "c3"):
        await cached.create(key, Frozen())
    assert list(cached._cache) == ["c2", "c3"]
    await other.delete("c3")
    assert await cached.get("c3") is None and "c3" not in cached._cache


def test_only_frozen_records_are_cached() -> None:
    with pytest.raises(ValueError, match="not frozen"):
        RecordStore(object(), Counter, cache=8)  # type: ignore[arg-type]


async def test_a_known_record_saves_the_read_but_a_stale_one_loses_no_write(bus: Bus) -> None:
    store = RecordStore(await bus.kv(BUCKET_PR), Counter)
    rev = await store.create("k", Counter(value=1))
    known = (Counter(value=1), rev)
    # Someone else writes after the caller learnt its revision.
    await store.update("k", Counter(value=10, writers=["other"]), rev)

    def bump(c: Counter | None) -> Counter:
        assert c is not None
        return Counter(value=c.value + 1, writers=[*c.writers, "me"])

    got, _ = await store.mutate("k", bump, known=known)
    assert got == Counter(value=11, writers=["other", "me"])  # re-applied to what KV held
    # A change that writes nothing from the known record is decided again from KV.
    seen: list[int] = []

    def only_from_ten(c: Counter | None) -> Counter | None:
        assert c is not None
        seen.append(c.value)
        return Counter(value=c.value + 100, writers=c.writers) if c.value >= 10 else None

    got, _ = await store.mutate("k", only_from_ten, known=known)
    assert seen == [1, 11] and got is not None and got.value == 111


async def test_leases_all_or_nothing_and_idempotent(bus: Bus) -> None:
    leases = HostLeases(await bus.kv(BUCKET_HOSTS))
    assert await leases.acquire("pr-a", ["h1", "h2"]) == ["h1", "h2"]
    assert await leases.acquire("pr-a", ["h1", "h2"]) == []  # replay: nothing new, no error
    with pytest.raises(LeaseConflict) as err:
        await leases.acquire("pr-b", ["h3", "h2", "h4"])
    assert err.value.host_id == "h2" and err.value.holder == "pr-a"
    assert await leases.held_by("pr-b") == []  # h3 taken before the conflict was rolled back
    assert await leases.release("pr-a") == ["h1", "h2"]
    assert await leases.acquire("pr-b", ["h2", "h3"]) == ["h2", "h3"]
    assert await leases.all() == {"h2": "pr-b", "h3": "pr-b"}
    # Release of hosts someone else holds does nothing.
    assert await leases.release("pr-a", ["h2"]) == []


@pytest.mark.parametrize("round_", range(10))
async def test_concurrent_overlapping_acquisitions_exactly_one_wins(bus: Bus, round_: int) -> None:
    leases = HostLeases(await bus.kv(BUCKET_HOSTS))
    sets = {"pr-x": ["h1", "h2", "h3", "h5"], "pr-y": ["h5", "h4", "h3", "h6"]}

    async def take(owner: str) -> bool:
        try:
            await leases.acquire(owner, sets[owner])
            return True
        except LeaseConflict:
            return False

    results = await asyncio.gather(take("pr-x"), take("pr-y"))
    assert sorted(results) == [False, True]
    winner = "pr-x" if results[0] else "pr-y"
    loser = "pr-y" if results[0] else "pr-x"
    assert await leases.held_by(loser) == []
    assert await leases.held_by(winner) == sorted(sets[winner])
