"""Subscriptions, inventory and alarm notifications to a local receiver, alarm acknowledgement, dead callbacks."""

from __future__ import annotations

import json
import os
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from services.o2ims.record import PrRecord
from services.o2ims_api import schemas
from services.o2ims_api.catalogue import resource_id
from shared.bus import Bus
from shared.httpapi import delivery
from shared.models import ClusterSpec, HostRef
from shared.payloads import HostFailure, HostprepFailed, HostProgress
from shared.subjects import BUCKET_PR, hostprep_event

from .conftest import MakeHarness
from .receiver import Receiver
from .support import Harness, I, M, inventory, now, valid
from .test_inventory import problem

SUBS, ALARM_SUBS = f"{I}/subscriptions", f"{M}/alarmSubscriptions"
PR_ID = "33333333-3333-4333-8333-333333333333"


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_inventory(target: Harness | Path, data: dict[str, Any]) -> None:
    path: Path = target if isinstance(target, Path) else target.api.settings.inventory_path
    tmp = path.with_name("input.json.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)  # a new inode: the reader sees the change whatever the clock's resolution


async def subscribe(harness: Harness, path: str, callback: str, **extra: Any) -> dict[str, Any]:
    status, headers, body = await harness.call("POST", path, role="subscriber", body={"callback": callback, **extra})
    assert status == 201, body
    key = "subscriptionId" if path == SUBS else "alarmSubscriptionId"
    assert headers["Location"] == f"{harness.base}{path}/{body[key]}"
    return body  # type: ignore[no-any-return]


@pytest.mark.parametrize("path", [SUBS, ALARM_SUBS])
async def test_subscription_rules(harness: Harness, receiver: Receiver, path: str) -> None:
    schema = schemas.INVENTORY_SUBSCRIPTION if path == SUBS else schemas.ALARM_SUBSCRIPTION
    key = "subscriptionId" if path == SUBS else "alarmSubscriptionId"
    bad: list[dict[str, Any]] = [
        {"raw": b"{nope"},
        {"raw": b'["a"]'},
        {"body": {"consumerSubscriptionId": "x"}},
        {"body": {"callback": "http://169.254.169.254/latest"}},
        {"body": {"callback": "ftp://127.0.0.1/x"}},
        {"body": {"callback": f"http://127.0.0.1:{closed_port()}/notify"}},
        {"body": {"callback": receiver.url, "filter": "(eq,a"}},
    ]
    for case in bad:
        status, headers, body = await harness.call("POST", path, role="subscriber", **case)
        problem(status, headers, body, 400)
    status, headers, body = await harness.call("POST", path, role="reader", body={"callback": receiver.url})
    problem(status, headers, body, 403)
    created = valid(schema, await subscribe(harness, path, receiver.url, consumerSubscriptionId="smo-1"))
    assert receiver.probes >= 1 and created["consumerSubscriptionId"] == "smo-1"
    status, headers, body = await harness.call("POST", path, role="subscriber", body={"callback": receiver.url})
    assert "already subscribed" in problem(status, headers, body, 400)["detail"]  # type: ignore[operator]
    status, _, listed = await harness.call("GET", path, role="reader")
    assert status == 200 and listed == [created]
    status, _, one = await harness.call("GET", f"{path}/{created[key]}")
    assert status == 200 and one == created
    status, headers, body = await harness.call("PATCH", path, body={})
    problem(status, headers, body, 405)
    status, _, deleted = await harness.call("DELETE", f"{path}/{created[key]}", role="subscriber")
    assert status == 200 and deleted == created
    for method in ("GET", "DELETE"):
        status, headers, body = await harness.call(method, f"{path}/{created[key]}")
        problem(status, headers, body, 404)


async def test_inventory_notifications_in_order_with_filters(
    harness: Harness, receiver: Receiver, receiver2: Receiver
) -> None:
    everything = await subscribe(harness, SUBS, receiver.url, consumerSubscriptionId="all")
    await subscribe(harness, SUBS, receiver2.url, filter="(eq,extensions/hostId,h07)")
    data = inventory(7)
    write_inventory(harness, data)
    h07 = resource_id("h07")
    await receiver.wait(
        lambda got: any(n["postObjectState"] and n["postObjectState"].get("resourceId") == h07 for n in got)
    )
    for generation in range(1, 4):
        data["hosts"][6]["labels"] = {"o2ims.oran.org/resource-pool": "edge", "gen": str(generation)}
        write_inventory(harness, data)
        await receiver.wait(
            lambda got, g=generation: any(
                (n["postObjectState"] or {}).get("extensions", {}).get("labels", {}).get("gen") == str(g) for n in got
            )
        )
    write_inventory(harness, inventory(6))
    await receiver.wait(lambda got: any(n["notificationEventType"] == 2 for n in got))
    mine = [n for n in receiver.received if n["objectRef"].endswith(h07)]
    for n in receiver.received:
        valid(schemas.INVENTORY_NOTIFICATION, n)
        assert n["consumerSubscriptionId"] == everything["consumerSubscriptionId"]
    assert [n["notificationEventType"] for n in mine] == [0, 1, 1, 1, 2]
    assert [((n["postObjectState"] or {}).get("extensions", {}).get("labels", {}).get("gen")) for n in mine] == [
        None,
        "1",
        "2",
        "3",
        None,
    ]
    assert mine[1]["priorObjectState"] == mine[0]["postObjectState"]
    assert mine[-1]["priorObjectState"]["extensions"]["labels"]["gen"] == "3"
    filtered = await receiver2.wait(lambda got: got if len(got) == 5 else None)
    assert [n["notificationId"] for n in filtered] != [n["notificationId"] for n in mine]
    assert [n["notificationEventType"] for n in filtered] == [0, 1, 1, 1, 2]
    assert {n["objectRef"] for n in filtered} == {mine[0]["objectRef"]}


async def _put_pr(bus: Bus, state: str, reason: str | None = None) -> None:
    hosts = (HostRef(host_id="h01", host_name="node-01", host_ip="10.10.0.11"),)
    spec = ClusterSpec(name="edge9", k8s_version="v1.31.4", control_plane=hosts, vip="10.10.0.200")
    t = now()
    rec = PrRecord(
        pr_id=PR_ID,
        fpr="test",
        spec=spec,
        state=state,
        stage="hostprep" if reason else None,  # type: ignore[arg-type]
        reason=reason,
        message="it broke" if reason else None,
        stage_entered_at=t,
        request_at=t,
        created_at=t,
        updated_at=t + timedelta(seconds=1),
    )
    await (await bus.kv(BUCKET_PR)).put(PR_ID, rec.model_dump_json().encode())


async def _alarms(harness: Harness) -> list[dict[str, Any]]:
    status, _, body = await harness.call("GET", f"{M}/alarms", role="reader")
    assert status == 200
    return [valid(schemas.ALARM, a) for a in body]


async def test_failed_pr_alarm_ack_and_clear(
    harness: Harness, bus: Bus, receiver: Receiver, receiver2: Receiver
) -> None:
    await subscribe(harness, ALARM_SUBS, receiver.url, consumerSubscriptionId="alarms")
    # A filter may name the notification's own attributes: raised and cleared only, no acknowledgements.
    await subscribe(harness, ALARM_SUBS, receiver2.url, filter="(in,notificationEventType,0,2)")
    await _put_pr(bus, "failed", "HostKeyMismatch")
    (new,) = await receiver.wait(lambda got: got if got else None)
    valid(schemas.ALARM_NOTIFICATION, new)
    assert new["notificationEventType"] == 0 and new["extensions"]["details"]["stage"] == "hostprep"
    assert new["globalCloudID"] == harness.api.state.global_cloud_id
    # Only this PR's alarm counts (a slow machine may add a callback alarm of its own).
    (alarm,) = [a for a in await _alarms(harness) if a["extensions"]["source"] == f"pr-failed.{PR_ID}"]
    rid = alarm["alarmEventRecordId"]
    assert alarm["alarmAcknowledged"] is False and alarm["perceivedSeverity"] == 1
    status, _, one = await harness.call("GET", f"{M}/alarms/{rid}")
    assert status == 200 and one == alarm
    status, _, listed = await harness.call("GET", f"{M}/alarms", params={"filter": f"(eq,alarmEventRecordId,{rid})"})
    assert status == 200 and listed == [alarm]

    merge = {"Content-Type": "application/merge-patch+json"}
    for role, body, expected in (
        ("reader", {"alarmAcknowledged": True}, 403),
        ("maintainer", {"alarmAcknowledged": False}, 400),
        ("maintainer", {"perceivedSeverity": 5}, 400),
    ):
        status, headers, got = await harness.call("PATCH", f"{M}/alarms/{rid}", role=role, body=body, headers=merge)
        problem(status, headers, got, expected)
    status, headers, got = await harness.call(
        "PATCH",
        f"{M}/alarms/{'0' * 8}-0000-4000-8000-{'0' * 12}",
        role="maintainer",
        body={"alarmAcknowledged": True},
        headers=merge,
    )
    problem(status, headers, got, 404)
    status, _, acked = await harness.call(
        "PATCH", f"{M}/alarms/{rid}", role="maintainer", body={"alarmAcknowledged": True}, headers=merge
    )
    assert status == 200 and acked["alarmAcknowledged"] is True and acked["alarmAcknowledgeTime"]
    status, _, again = await harness.call("GET", f"{M}/alarms/{rid}")
    assert again["alarmAcknowledged"] is True

    await _put_pr(bus, "fulfilled")
    got = await receiver.wait(lambda got: got if len(got) == 3 else None)
    assert [n["notificationEventType"] for n in got] == [0, 3, 2]
    filtered = await receiver2.wait(lambda got: got if len(got) == 2 else None)
    assert [n["notificationEventType"] for n in filtered] == [0, 2]
    (cleared,) = [a for a in await _alarms(harness) if a["extensions"]["source"] == f"pr-failed.{PR_ID}"]
    assert cleared["perceivedSeverity"] == 5 and cleared["alarmClearedTime"] and cleared["alarmEventRecordId"] == rid


async def test_host_key_alarm_from_hostprep_and_recovery(harness: Harness, bus: Bus) -> None:
    failed = HostprepFailed(
        pr_id=PR_ID,
        action="prepare",
        host_id="h02",
        reason="HostKeyMismatch",
        message="h02: the host key does not match the trusted key",
        failures=(HostFailure(host_id="h02", reason="HostKeyMismatch", message="key changed"),),
    )
    await bus.emit(hostprep_event(PR_ID), failed)

    async def active() -> list[dict[str, Any]]:
        return [a for a in await _alarms(harness) if a["perceivedSeverity"] != 5]

    async def wait_for(check: Any) -> Any:
        import asyncio

        async with asyncio.timeout(30):
            while not (found := await check()):
                await asyncio.sleep(0.2)  # polling the HTTP API, bounded by the timeout
            return found

    (alarm,) = await wait_for(active)
    assert alarm["resourceID"] == resource_id("h02") and alarm["extensions"]["alarmName"] == "HostKeyChanged"
    # An unreadable inventory names no host: it must not clear the host's alarm.
    from services.o2ims_api.notifier import Notifier
    from shared.httpapi.subscriptions import SubscriptionStore
    from shared.subjects import BUCKET_O2IMS_API_SUBSCRIPTIONS

    good = harness.api.settings.inventory_path.read_text()
    write_inventory(harness, {"hosts": "not a list"})
    notifier = await Notifier.create(harness.api, SubscriptionStore(await bus.kv(BUCKET_O2IMS_API_SUBSCRIPTIONS)), 1.0)
    try:
        await notifier.round()
    finally:
        await notifier.close()
    assert [a["alarmEventRecordId"] for a in await active()] == [alarm["alarmEventRecordId"]]
    write_inventory(harness, json.loads(good))
    await bus.emit(hostprep_event(PR_ID), HostProgress(pr_id=PR_ID, host_id="h02", step="preflight", status="done"))

    async def cleared() -> bool:
        return not await active() and bool(await _alarms(harness))

    await wait_for(cleared)


async def test_a_dead_callback_is_alarmed_without_blocking_others(
    make_harness: MakeHarness, receiver: Receiver, receiver2: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every event for the broken callback fails until it recovers; on a busy machine the failures pile up
    # before the alarm arrives, and the production cap (a minute between tries) would outlast the test.
    monkeypatch.setattr(delivery, "MAX_BACKOFF", 2.0)
    harness = await make_harness(callback_dead_after=2)
    receiver.status = 500  # the GET probe still passes: the callback breaks later
    broken = await subscribe(harness, SUBS, receiver.url)
    await subscribe(harness, ALARM_SUBS, receiver2.url)
    write_inventory(harness, inventory(7))
    raised = await receiver2.wait(lambda got: [n for n in got if n["notificationEventType"] == 0] or None)
    assert raised[0]["resourceID"] == broken["subscriptionId"]
    assert raised[0]["extensions"]["alarmName"] == "NotificationCallbackUnreachable"
    assert receiver.refused >= 2 and not receiver.received
    receiver.status = 204
    await receiver.wait(lambda got: got or None)
    await receiver2.wait(lambda got: [n for n in got if n["notificationEventType"] == 2] or None)


async def test_quarantine_alarm_until_cleared(harness: Harness, bus: Bus) -> None:
    from shared.leases import HostLeases
    from shared.subjects import BUCKET_HOSTS

    leases = HostLeases(await bus.kv(BUCKET_HOSTS))
    await leases.acquire(PR_ID, ["h03"])
    assert await leases.quarantine(PR_ID, ["h03"], "teardown failed: kubeadm reset exited 1") == ["h03"]

    async def raised() -> dict[str, Any] | None:
        found = [a for a in await _alarms(harness) if a["perceivedSeverity"] != 5]
        return found[0] if found else None

    async def poll(check: Any) -> Any:
        import asyncio

        async with asyncio.timeout(30):
            while not (found := await check()):
                await asyncio.sleep(0.2)  # polling the HTTP API, bounded by the timeout
            return found

    alarm = await poll(raised)
    assert alarm["extensions"]["alarmName"] == "HostQuarantined" and alarm["resourceID"] == resource_id("h03")
    assert alarm["extensions"]["details"]["provisioningRequestId"] == PR_ID
    assert await leases.clear_quarantine("h03")

    async def cleared() -> bool:
        return await raised() is None

    await poll(cleared)
