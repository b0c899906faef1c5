"""The change detector is driven by KV watches: changes are notified with no scan to find them, and a change
made while no replica ran is notified when one starts.

Every API here checks its timer only every 300 s, longer than any test waits: what is notified was
found because a watch reported the change (or because a start compared everything).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from services.o2ims_api.catalogue import resource_id
from shared.bus import Bus
from shared.leases import HostLeases
from shared.subjects import BUCKET_HOSTS

from .receiver import Receiver
from .support import Harness, settings, start
from .test_notifications import ALARM_SUBS, PR_ID, SUBS, _put_pr, subscribe

NO_SCAN = {"scan_interval": 300.0}


def holder_of(host_id: str, notes: list[dict[str, Any]]) -> list[str | None]:
    """The lease holders notified for one host's resource, in order (its creation may come first)."""
    rid = resource_id(host_id)
    return [
        (n["postObjectState"] or {}).get("extensions", {}).get("leaseHolder")
        for n in notes
        if n["objectRef"].endswith(f"/resources/{rid}")
    ]


async def test_lease_and_pr_changes_are_notified_without_a_scan(
    tmp_path: Path, bus: Bus, nats_url: str, receiver: Receiver, receiver2: Receiver
) -> None:
    a, runner, base = await start(tmp_path, bus, settings(tmp_path, nats_url, **NO_SCAN), asyncio.Event())
    try:
        async with aiohttp.ClientSession() as session:
            harness = Harness(base, tmp_path / "keys", session, a)
            await subscribe(harness, SUBS, receiver.url)
            await subscribe(harness, ALARM_SUBS, receiver2.url)
        leases = HostLeases(await bus.kv(BUCKET_HOSTS))
        await leases.acquire(PR_ID, ["h01", "h02"])
        await receiver.wait(lambda got: holder_of("h02", got)[-1:] == [PR_ID])
        await leases.release(PR_ID, ["h01"])
        await receiver.wait(lambda got: holder_of("h01", got)[-2:] == [PR_ID, None])
        await _put_pr(bus, "failed", "HostKeyMismatch")
        (raised,) = await receiver2.wait(lambda got: got or None)
        assert raised["extensions"]["details"]["provisioningRequestId"] == PR_ID
        await _put_pr(bus, "fulfilled")
        await receiver2.wait(lambda got: [n["notificationEventType"] for n in got] == [0, 2])
        assert holder_of("h02", receiver.received)[-1] == PR_ID
    finally:
        await runner.cleanup()


async def test_a_change_made_while_no_replica_runs_is_notified_at_start(
    tmp_path: Path, bus: Bus, nats_url: str, receiver: Receiver
) -> None:
    s = settings(tmp_path, nats_url, **NO_SCAN)
    a, runner, base = await start(tmp_path, bus, s, asyncio.Event())
    try:
        async with aiohttp.ClientSession() as session:
            await subscribe(Harness(base, tmp_path / "keys", session, a), SUBS, receiver.url)
        leases = HostLeases(await bus.kv(BUCKET_HOSTS))
        await leases.acquire(PR_ID, ["h04"])
        # Notified: so the round that saw it had recorded every host as it was, h03 free.
        await receiver.wait(lambda got: holder_of("h04", got)[-1:] == [PR_ID])
    finally:
        await runner.cleanup()
    await leases.acquire(PR_ID, ["h03"])  # nobody is watching
    _, runner, _ = await start(tmp_path, bus, s, asyncio.Event())
    try:
        await receiver.wait(lambda got: holder_of("h03", got)[-1:] == [PR_ID])
        (modified,) = [n for n in receiver.received if n["objectRef"].endswith(resource_id("h03"))][-1:]
        assert modified["notificationEventType"] == 1
        assert modified["priorObjectState"]["extensions"]["leaseHolder"] is None
    finally:
        await runner.cleanup()
