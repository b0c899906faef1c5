"""The VIP pool against a real nats-server: pool order and exclusions, replays, release, and no VIP given twice."""

from __future__ import annotations

import asyncio
import ipaddress

import nats
import pytest

from shared.bus import Bus
from shared.natsserver import EmbeddedNats
from shared.subjects import BUCKET_VIPS
from shared.vips import VipLeases, VipPoolExhausted, parse_pool


async def test_allocation_order_exclusions_replay_and_release(bus: Bus) -> None:
    # A /29 hands out .1-.6 (never .0, the network, nor .7, the broadcast), then the range.
    vips = VipLeases(await bus.kv(BUCKET_VIPS), parse_pool(["10.9.0.0/29", "10.9.1.5-10.9.1.6"]))
    exclude = {"10.9.0.1", "10.9.0.3"}  # hosts' addresses and VIPs the inventory names
    avoid = [ipaddress.ip_network("10.9.0.4/31")]  # the cluster's own pod network, say
    got = [await vips.allocate(f"pr-{i}", exclude=exclude, avoid=avoid) for i in range(4)]
    assert got == [("10.9.0.2", True), ("10.9.0.6", True), ("10.9.1.5", True), ("10.9.1.6", True)]
    # A PR asking again (a replayed request) keeps the VIP it holds and takes nothing new.
    assert await vips.allocate("pr-1", exclude=exclude, avoid=avoid) == ("10.9.0.6", False)
    with pytest.raises(VipPoolExhausted) as err:
        await vips.allocate("pr-late", exclude=exclude, avoid=avoid, path="inventory $.clusters[3]")
    assert err.value.path == "inventory $.clusters[3]" and "vip-pool-exhausted" in str(err.value)
    # Released VIPs return to the pool; another owner's VIP is never touched.
    assert await vips.release("pr-1") == ["10.9.0.6"]
    assert await vips.release("pr-1") == []
    assert await vips.release("pr-2", keep="10.9.1.5") == []
    assert await vips.allocate("pr-late", exclude=exclude, avoid=avoid) == ("10.9.0.6", True)
    assert await vips.all() == {"10.9.0.2": "pr-0", "10.9.0.6": "pr-late", "10.9.1.5": "pr-2", "10.9.1.6": "pr-3"}


async def test_ipv6_pool_keys_and_canonical_addresses(bus: Bus) -> None:
    vips = VipLeases(await bus.kv(BUCKET_VIPS), parse_pool(["FD00:0:0:0::10-fd00::11"]))
    assert await vips.allocate("pr-a", exclude={"fd00::10"}) == ("fd00::11", True)
    assert await vips.held_by("pr-a") == ["fd00::11"]
    assert await vips.release("pr-a", ["FD00::0011"]) == ["fd00::11"]


@pytest.mark.parametrize(
    "entry",
    [
        "fe80::1%eth0-fe80::9",
        "10.0.0.0/24%x",
        "10.0.0.9-10.0.0.1",
        "10.0.0.1-fd00::1",
        "10.0.0.1/24",
        "\u0661\u0660.0.0.1-10.0.0.9",
        "10.0.0.1\n-10.0.0.2",
    ],
)
def test_a_malformed_pool_entry_is_refused(entry: str) -> None:
    with pytest.raises(ValueError):
        parse_pool([entry])


async def test_concurrent_allocations_never_share_a_vip(bus: Bus, nats_server: EmbeddedNats) -> None:
    # Two focom replicas (separate connections) and 40 requests at once for a pool of 30 addresses:
    # 30 distinct VIPs, 10 clean refusals, and the bucket agrees with what each caller was told.
    pool = parse_pool(["10.20.0.0/28", "10.20.1.1-10.20.1.16"])  # 14 + 16 addresses
    other = await nats.connect(nats_server.url, connect_timeout=5)
    try:
        replicas = [
            VipLeases(await bus.kv(BUCKET_VIPS), pool),
            VipLeases(await Bus(other, source="replica-2").kv(BUCKET_VIPS), pool),
        ]

        async def one(i: int) -> str | None:
            try:
                vip, new = await replicas[i % 2].allocate(f"pr-{i:02d}")
            except VipPoolExhausted:
                return None
            assert new
            return vip

        results = await asyncio.gather(*(one(i) for i in range(40)))
        given = [v for v in results if v is not None]
        assert len(given) == 30 and len(set(given)) == 30, sorted(given)
        held = await replicas[0].all()
        assert held == {v: f"pr-{i:02d}" for i, v in enumerate(results) if v is not None}
        # Every pool address went to exactly one owner; the /28's network and broadcast to nobody.
        assert "10.20.0.0" not in held and "10.20.0.15" not in held
        # Half release at once while the other half re-asks (replays): no VIP changes hands twice.
        owners = sorted(held.values())
        released, again = await asyncio.gather(
            asyncio.gather(*(replicas[0].release(o) for o in owners[::2])),
            asyncio.gather(*(replicas[1].allocate(o) for o in owners[1::2])),
        )
        assert all(len(r) == 1 for r in released)
        assert all(not new for _, new in again)
        assert len(await replicas[1].all()) == 15
    finally:
        await other.close()
