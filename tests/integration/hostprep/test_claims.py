"""Host claims on a real NATS KV bucket: one holder at a time, renewal past the TTL, a dead holder's claim
expiring, and a holder that loses its claim (taken over, or the bus gone) stopping its work."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import nats.errors
import nats.js.errors
import pytest
from nats.js.kv import KeyValue

from services.hostprep.claims import ClaimTiming, HostClaim, HostClaimLost, HostClaims
from shared.bus import Bus
from shared.natsserver import EmbeddedNats

#: Short enough for a test to see entries expire; the service's own TTL is ``HOSTPREP_CLAIM_TTL``.
TTL = 2.0
HOST = "host-001"


@pytest.fixture
async def kv(bus: Bus) -> KeyValue:
    return await bus.js.create_key_value(bucket="test-claims", ttl=TTL)


def replica(kv: KeyValue, name: str) -> HostClaims:
    return HostClaims(kv, timing=ClaimTiming(ttl=TTL), owner=name)


async def take(claims: HostClaims, *, within: float = 30.0) -> HostClaim:
    claim = await claims.acquire(HOST, pr_id="pr-1", action="prepare", deadline=time.monotonic() + within)
    assert claim is not None
    return claim


async def test_one_replica_holds_a_host_the_other_waits_until_it_is_released(kv: KeyValue) -> None:
    a, b = replica(kv, "a"), replica(kv, "b")
    held = await take(a)
    waiting = asyncio.Event()
    holders: list[str] = []

    async def on_wait(holder: str) -> None:
        holders.append(holder)
        waiting.set()

    second = asyncio.create_task(
        b.acquire(HOST, pr_id="pr-1", action="prepare", deadline=time.monotonic() + 60, on_wait=on_wait)
    )
    await asyncio.wait_for(waiting.wait(), 30)
    assert not second.done(), "two replicas held one host"
    assert holders == ["a for prepare of PR pr-1"]
    await held.release()
    claim = await asyncio.wait_for(second, 30)
    assert claim is not None
    assert (await kv.get(HOST)).value == claim._value


async def test_a_renewed_claim_outlives_its_ttl_and_keeps_others_out(kv: KeyValue) -> None:
    a, b = replica(kv, "a"), replica(kv, "b")
    held = await take(a)
    first = (await kv.get(HOST)).revision or 0

    async def work() -> str:
        # Five renewals a quarter TTL apart: the claim has lived longer than its TTL since it was taken.
        while ((await kv.get(HOST)).revision or 0) < first + 5:
            await asyncio.sleep(0.1)  # polling the bucket's own revision, bounded by the wait_for below
        late = await b.acquire(HOST, pr_id="pr-2", action="teardown", deadline=time.monotonic())
        return "taken by b" if late is not None else "still ours"

    assert await asyncio.wait_for(held.guard(work()), 60) == "still ours"
    await held.release()
    with pytest.raises(nats.js.errors.NotFoundError):  # released: a delete marker
        await kv.get(HOST)


async def test_the_claim_of_a_replica_that_died_expires_and_is_taken(kv: KeyValue) -> None:
    await take(replica(kv, "dead"))  # never renewed nor released: its process is gone
    claim = await take(replica(kv, "b"))
    assert b'"owner": "b"' in ((await kv.get(HOST)).value or b"")
    await claim.release()


class LostReplies:
    """The bucket, but the answer to the first ``create`` is lost (the claim is stored all the same)."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv
        self.lost = 0

    async def create(self, key: str, value: bytes) -> int:
        revision = await self.kv.create(key, value)
        if not self.lost:
            self.lost += 1
            raise nats.errors.TimeoutError
        return revision

    def __getattr__(self, name: str) -> Any:
        return getattr(self.kv, name)


async def test_a_claim_stored_though_its_answer_was_lost_is_recognised_as_ours(kv: KeyValue) -> None:
    flaky = LostReplies(kv)
    claims = HostClaims(flaky, timing=ClaimTiming(ttl=TTL), owner="a")  # type: ignore[arg-type]
    claim = await take(claims)
    assert flaky.lost == 1
    assert (await kv.get(HOST)).value == claim._value
    await claim.release()
    with pytest.raises(nats.js.errors.NotFoundError):
        await kv.get(HOST)


async def test_a_holder_whose_claim_was_taken_over_stops_its_work(kv: KeyValue) -> None:
    held = await take(replica(kv, "a"))
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def work() -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # the host's recipe, which would run for a long time
        except asyncio.CancelledError:
            cancelled.set()
            raise

    guarded = asyncio.create_task(held.guard(work()))
    await started.wait()
    # Behind its back, the claim ends and another replica takes the host (what a long pause would allow).
    await kv.purge(HOST)
    other = await take(replica(kv, "b"))
    with pytest.raises(HostClaimLost, match="another replica holds it"):
        await asyncio.wait_for(guarded, 30)
    assert cancelled.is_set()
    await held.release()  # not ours any more: left alone
    assert b'"owner": "b"' in ((await kv.get(HOST)).value or b"")
    await other.release()


async def test_a_holder_cut_off_from_the_bus_stops_before_its_claim_could_expire(
    kv: KeyValue, nats_server: EmbeddedNats
) -> None:
    held = await take(replica(kv, "a"))
    cancelled = asyncio.Event()

    async def work() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    guarded = asyncio.create_task(held.guard(work()))
    await nats_server.stop()
    try:
        with pytest.raises(HostClaimLost, match="not renewed in time"):
            await asyncio.wait_for(guarded, 60)
        stopped_at = time.monotonic()
    finally:
        await nats_server.start()
    assert cancelled.is_set()
    # It gave up on its own clock once the claim could no longer be vouched for (a quarter TTL before the
    # server could drop it), not when the bus came back.
    assert held.held_until <= stopped_at


async def test_the_keeper_stops_when_the_work_ends_even_if_its_cancellation_is_lost(
    kv: KeyValue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python 3.11's ``wait_for`` (under every NATS request) returns the answer instead of raising when a
    cancellation arrives with it: a keeper cancelled mid-renewal went on renewing, and ``guard`` never returned
    (a job hung after its hosts were done)."""
    held = await take(replica(kv, "a"))
    renewing = asyncio.Event()

    async def renewal_answered_as_it_is_cancelled() -> str | None:
        renewing.set()
        try:
            await asyncio.sleep(30)  # the request in flight
        except asyncio.CancelledError:
            return None  # what wait_for does when the answer is already there: the cancellation is lost
        return None

    monkeypatch.setattr(held, "_renew", renewal_answered_as_it_is_cancelled)

    async def work() -> str:
        await renewing.wait()
        return "done"

    assert await asyncio.wait_for(held.guard(work()), 20) == "done"
    await held.release()
