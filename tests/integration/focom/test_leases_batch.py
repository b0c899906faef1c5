"""``HostLeases.acquire_batch``: a batch of hosts for many owners, taken all or nothing, one winner under contention."""

from __future__ import annotations

import asyncio

import pytest

from shared.bus import Bus
from shared.leases import HostLeases, LeaseConflict
from shared.subjects import BUCKET_HOSTS


async def test_batch_all_or_nothing_and_idempotent(bus: Bus) -> None:
    leases = HostLeases(await bus.kv(BUCKET_HOSTS))
    batch = {"h1": "pr-a", "h2": "pr-a", "h3": "pr-b"}
    assert sorted(await leases.acquire_batch(batch)) == ["h1", "h2", "h3"]
    assert await leases.acquire_batch(batch) == []  # a replay takes nothing new and does not fail
    await leases.acquire("pr-x", ["h9"])
    with pytest.raises(LeaseConflict) as err:
        await leases.acquire_batch({"h4": "pr-c", "h9": "pr-c", "h5": "pr-d"})
    assert err.value.host_id == "h9" and err.value.holder == "pr-x"
    assert await leases.all() == {"h1": "pr-a", "h2": "pr-a", "h3": "pr-b", "h9": "pr-x"}


@pytest.mark.parametrize("round_", range(8))
async def test_overlapping_batches_exactly_one_wins(bus: Bus, round_: int) -> None:
    # Opposite orders of contended hosts: a naive parallel take could make both lose.
    leases = HostLeases(await bus.kv(BUCKET_HOSTS))
    left = {f"h{i:02d}": f"left-{i % 3}" for i in range(0, 40)}
    right = {f"h{i:02d}": f"right-{i % 2}" for i in range(20, 60)}

    async def take(batch: dict[str, str]) -> bool:
        try:
            await leases.acquire_batch(batch, concurrency=8, settle=0.02)
            return True
        except LeaseConflict:
            return False

    results = await asyncio.gather(take(left), take(right))
    assert sorted(results) == [False, True]
    winner = left if results[0] else right
    assert await leases.all() == winner


async def test_batch_of_thousands(bus: Bus) -> None:
    leases = HostLeases(await bus.kv(BUCKET_HOSTS))
    batch = {f"host-{i:05d}": f"pr-{i // 3}" for i in range(3000)}
    assert len(await leases.acquire_batch(batch)) == 3000
    assert len(await leases.all()) == 3000
