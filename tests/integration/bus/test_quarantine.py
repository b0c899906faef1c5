"""Quarantine of hosts whose teardown failed: leased to no one, released by no PR, cleared only on purpose."""

from __future__ import annotations

import pytest

from shared.bus import Bus
from shared.leases import QUARANTINE, HostLeases, LeaseConflict
from shared.subjects import BUCKET_HOSTS


async def test_a_quarantined_host_is_leased_to_nobody_until_cleared(bus: Bus) -> None:
    leases = HostLeases(await bus.kv(BUCKET_HOSTS))
    await leases.acquire("pr-a", ["h1", "h2", "h3"])
    moved = await leases.quarantine("pr-a", ["h1", "h2"], "teardown failed: kubeadm reset exit 1")
    assert moved == ["h1", "h2"]
    # The PR's own release frees only the clean host; the others stay out of the pool.
    assert await leases.release("pr-a") == ["h3"]
    assert await leases.all() == {"h1": QUARANTINE, "h2": QUARANTINE}
    with pytest.raises(LeaseConflict) as refused:
        await leases.acquire("pr-b", ["h1", "h3"])
    assert refused.value.holder == QUARANTINE
    assert await leases.owner_of("h3") is None  # the refused batch took nothing
    marked = await leases.quarantined()
    assert list(marked) == ["h1", "h2"]
    assert marked["h1"].previous_owner == "pr-a" and "kubeadm reset" in (marked["h1"].reason or "")
    # Quarantining again (a redelivered command) changes nothing; another PR's host is not taken.
    await leases.acquire("pr-c", ["h4"])
    assert await leases.quarantine("pr-a", ["h1", "h4"], "again") == ["h1"]
    assert await leases.owner_of("h4") == "pr-c"
    # An operator clears one: it can be leased again.
    assert await leases.clear_quarantine("h1") is True
    assert await leases.clear_quarantine("h1") is False
    assert await leases.clear_quarantine("h4") is False  # a normal lease is not a quarantine
    assert await leases.acquire("pr-b", ["h1"]) == ["h1"]
    assert await leases.owner_of("h2") == QUARANTINE
