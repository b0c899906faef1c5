"""Alarms: what should be raised now (from the state), and how a stored alarm moves. Pure: no I/O.

Each alarm source has a key (``pr-failed.<pr>``, ``host-unreachable.<host>`` …) under which the
``o2ims-api-alarms`` bucket keeps its ``AlarmState``: the current (or last cleared) record and an
outbox of notification events not yet published. ``desired`` computes every alarm that the state
calls for; ``reconcile`` raises what is missing (a new ``alarmEventRecordId`` per occurrence),
updates what changed, and clears what recovered. An acknowledgement is recorded by ``acknowledge``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.o2ims_api.catalogue import (
    BYOHOST_FAILED,
    CALLBACK_DEAD,
    CLEARED,
    CLUSTER_TYPE_ID,
    HOST_KEY_CHANGED,
    HOST_QUARANTINED,
    HOST_UNREACHABLE,
    PR_FAILED,
    SUBSCRIPTION_TYPE_ID,
    AlarmDefinition,
    host_type_id,
    oid,
    resource_id,
)
from services.o2ims_api.objects import Snapshot, host_kind
from shared.httpapi.delivery import Event
from shared.leases import Lease

NEW, CHANGE, CLEAR, ACKNOWLEDGE = 0, 1, 2, 3
#: hostprep failure reasons that mean the host could not be reached over SSH.
UNREACHABLE_REASONS = frozenset(
    {"HostUnreachable", "ConnectTimeout", "ConnectionRefused", "ConnectionLost", "Disconnected"}
)
KEY_REASONS = frozenset({"HostKeyMismatch"})
#: Key prefixes of the alarms about hosts (they need the inventory to be computed).
HOST_SCOPED = tuple(f"{d.key}." for d in (HOST_UNREACHABLE, HOST_KEY_CHANGED, BYOHOST_FAILED, HOST_QUARANTINED))


class HostHealth(BaseModel):
    """The last SSH trouble hostprep reported for a host (kept until the host is reached again)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host_id: str
    reason: str
    message: str
    pr_id: str
    at: datetime


@dataclass(frozen=True)
class Wanted:
    key: str
    definition: AlarmDefinition
    resource_type_id: str
    resource_id: str
    details: dict[str, Any]


class AlarmState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    occurrence: int = 0
    active: bool = False
    record: dict[str, Any] = Field(default_factory=dict)
    outbox: tuple[Event, ...] = ()


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def desired(
    snap: Snapshot, health: dict[str, HostHealth], dead_subscriptions: list[str], quarantined: dict[str, Lease]
) -> dict[str, Wanted]:
    out: dict[str, Wanted] = {}
    for pr in snap.prs.values():
        if pr.state == "failed":
            rid = pr.node_cluster_id or oid("cluster", pr.pr_id)
            out[f"pr-failed.{pr.pr_id}"] = Wanted(
                f"pr-failed.{pr.pr_id}",
                PR_FAILED,
                CLUSTER_TYPE_ID,
                rid,
                {
                    "provisioningRequestId": pr.pr_id,
                    "cluster": pr.cluster,
                    "stage": pr.stage,
                    "reason": pr.reason,
                    "message": (pr.message or "")[:300],
                },
            )
    hosts = {h.host_id: h for h in snap.hosts}
    for host_id, host in hosts.items():
        type_id = host_type_id(*host_kind(host))
        base = {"hostId": host_id, "hostName": host.host_name}
        trouble = health.get(host_id)
        if trouble is not None and trouble.reason in UNREACHABLE_REASONS | KEY_REASONS:
            definition = HOST_KEY_CHANGED if trouble.reason in KEY_REASONS else HOST_UNREACHABLE
            key = f"{definition.key}.{host_id}"
            out[key] = Wanted(
                key,
                definition,
                type_id,
                resource_id(host_id),
                {
                    **base,
                    "reason": trouble.reason,
                    "message": trouble.message[:300],
                    "provisioningRequestId": trouble.pr_id,
                },
            )
        byo = snap.byohosts.get(host_id) or snap.byohosts.get(host.host_name)
        if byo is not None and byo.failure:
            key = f"{BYOHOST_FAILED.key}.{host_id}"
            out[key] = Wanted(
                key,
                BYOHOST_FAILED,
                type_id,
                resource_id(host_id),
                {**base, "byoHost": byo.name, "message": byo.failure[:300]},
            )
        marker = quarantined.get(host_id)
        if marker is not None:
            key = f"{HOST_QUARANTINED.key}.{host_id}"
            out[key] = Wanted(
                key,
                HOST_QUARANTINED,
                type_id,
                resource_id(host_id),
                {**base, "reason": (marker.reason or "")[:300], "provisioningRequestId": marker.previous_owner},
            )
    for sub_id in dead_subscriptions:
        key = f"{CALLBACK_DEAD.key}.{sub_id}"
        out[key] = Wanted(key, CALLBACK_DEAD, SUBSCRIPTION_TYPE_ID, sub_id, {"subscriptionId": sub_id})
    return out


def _event(state: AlarmState, kind: int, record: dict[str, Any], prior: dict[str, Any] | None, at: datetime) -> Event:
    rid = record["alarmEventRecordId"]
    return Event(
        id=oid("alarm-event", rid, str(kind), _iso(at)),
        kind="alarm",
        event_type=kind,
        object_ref=f"/o2ims-infrastructureMonitoring/v1/alarms/{rid}",
        object_id=rid,
        prior=prior,
        post=record,
        at=at,
    )


def raise_or_update(state: AlarmState | None, want: Wanted, now: datetime) -> AlarmState | None:
    """The state with ``want`` raised (or its details updated); None when nothing changes."""
    cur = state or AlarmState(key=want.key)
    d = want.definition
    if cur.active:
        if cur.record.get("extensions", {}).get("details") == want.details:
            return None
        record = {
            **cur.record,
            "alarmChangedTime": _iso(now),
            "extensions": {**cur.record["extensions"], "details": want.details},
        }
        changed = _event(cur, CHANGE, record, cur.record, now)
        return cur.model_copy(update={"record": record, "outbox": (*cur.outbox, changed)})
    occurrence = cur.occurrence + 1
    record = {
        "alarmEventRecordId": oid("alarm", want.key, str(occurrence)),
        "resourceTypeID": want.resource_type_id,
        "resourceID": want.resource_id,
        "alarmDefinitionID": d.id,
        "probableCauseID": d.probable_cause_id,
        "alarmRaisedTime": _iso(now),
        "alarmChangedTime": None,
        "alarmClearedTime": None,
        "alarmAcknowledgeTime": None,
        "alarmAcknowledged": False,
        "perceivedSeverity": d.severity,
        "extensions": {"alarmName": d.name, "source": want.key, "details": want.details},
    }
    return cur.model_copy(
        update={
            "occurrence": occurrence,
            "active": True,
            "record": record,
            "outbox": (*cur.outbox, _event(cur, NEW, record, None, now)),
        }
    )


def clear(state: AlarmState, now: datetime) -> AlarmState | None:
    if not state.active:
        return None
    record = {
        **state.record,
        "perceivedSeverity": CLEARED,
        "alarmClearedTime": _iso(now),
        "alarmChangedTime": _iso(now),
    }
    return state.model_copy(
        update={
            "active": False,
            "record": record,
            "outbox": (*state.outbox, _event(state, CLEAR, record, state.record, now)),
        }
    )


def acknowledge(state: AlarmState, now: datetime) -> AlarmState | None:
    if state.record.get("alarmAcknowledged"):
        return None
    record = {**state.record, "alarmAcknowledged": True, "alarmAcknowledgeTime": _iso(now)}
    return state.model_copy(
        update={"record": record, "outbox": (*state.outbox, _event(state, ACKNOWLEDGE, record, state.record, now))}
    )


def expired(state: AlarmState, now: datetime, retention: float) -> bool:
    """A cleared alarm whose notifications are out and that was cleared more than ``retention`` s ago."""
    cleared = state.record.get("alarmClearedTime")
    if state.active or state.outbox or not isinstance(cleared, str):
        return False
    return (now - datetime.fromisoformat(cleared.replace("Z", "+00:00"))).total_seconds() > retention
