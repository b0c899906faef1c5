"""Turning state changes into notification events: the inventory view and the alarms.

Driven by changes, not by re-reading: the ``pr`` and ``hosts`` buckets (``State``), the host
health records, the subscriptions and the alarm states are held in memory by KV watches
(``KvView``), and every change they see, every ByoHost summary and every hostprep event wakes
the loop. A round then builds the inventory objects and the wanted alarms from memory and
compares them with what the API last notified, kept in KV: ``o2ims-api-views`` (one
``ViewRecord`` per object, their digests held in memory) and ``o2ims-api-alarms`` (one
``AlarmState`` per alarm source). Only a difference costs a request: it is written with a
revision check together with the event it causes (an outbox), then the event is published and
taken out of the outbox; a crash in between publishes it on the next round, with the same id.
Between changes the loop only checks, every ``interval`` seconds, whether the inventory file
changed and whether a cleared alarm's retention ran out: nothing is read from NATS while nothing
changes. A round is level-based (everything is compared, whatever woke it), so changes that
arrive together are handled together, and a start compares everything with what was notified
before: a change made while no replica ran is notified then. Every replica may run this loop:
revision checks let one write win, and ids derived from the change make the stream drop the
others' duplicates.

It also consumes hostprep's events to remember per-host SSH trouble (``health.<host>`` in the
views bucket) until the host is reached again: the source of the host alarms.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict

from services.o2ims_api import alarms, objects
from services.o2ims_api.api import INVENTORY, VERSION, Api
from services.o2ims_api.catalogue import oid
from shared.bus import MessageContext
from shared.errors import TemporaryError, classify
from shared.httpapi.delivery import Event, publish_event
from shared.httpapi.kvview import KvView, decoder
from shared.httpapi.subscriptions import Subscription, SubscriptionStore
from shared.payloads import HostFailure, HostprepDone, HostprepFailed, HostProgress
from shared.store import DELETE, RecordStore
from shared.subjects import (
    BUCKET_O2IMS_API_ALARMS,
    BUCKET_O2IMS_API_VIEWS,
    o2api_alarm,
    o2api_inventory,
)

log = structlog.get_logger(__name__)
I = f"{INVENTORY}/{VERSION}"  # noqa: E741 - the prefix's name in the O2IMS documents
CREATE, MODIFY, REMOVE = 0, 1, 2
#: While changes keep coming, rounds are at least this far apart (seconds): a burst is handled in one.
MIN_GAP = 0.5


class ViewRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    object_id: str
    object_ref: str
    #: The object as last notified; None once its removal was notified (record deleted after the flush).
    object: dict[str, Any] | None
    digest: str
    outbox: tuple[Event, ...] = ()


def digest(obj: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:32]


def inventory_objects(snap: objects.Snapshot) -> dict[str, tuple[str, str, str, dict[str, Any]]]:
    """Every notified object: key → (kind, id, objectRef, object)."""
    out: dict[str, tuple[str, str, str, dict[str, Any]]] = {}
    for full in objects.resource_types(snap):
        t = {k: v for k, v in full.items() if k != "alarmDictionary"}
        out[f"view.resourceType.{t['resourceTypeId']}"] = (
            "resourceType",
            t["resourceTypeId"],
            f"{I}/resourceTypes/{t['resourceTypeId']}",
            t,
        )
    for p in objects.pools(snap):
        out[f"view.resourcePool.{p['resourcePoolId']}"] = (
            "resourcePool",
            p["resourcePoolId"],
            f"{I}/resourcePools/{p['resourcePoolId']}",
            p,
        )
    for r in objects.resources(snap):
        ref = f"{I}/resourcePools/{r['resourcePoolId']}/resources/{r['resourceId']}"
        out[f"view.resource.{r['resourceId']}"] = ("resource", r["resourceId"], ref, r)
    for d in objects.deployment_managers(snap):
        ref = f"{I}/deploymentManagers/{d['deploymentManagerId']}"
        out[f"view.deploymentManager.{d['deploymentManagerId']}"] = (
            "deploymentManager",
            d["deploymentManagerId"],
            ref,
            d,
        )
    return out


class Notifier:
    def __init__(
        self,
        api: Api,
        subscriptions: SubscriptionStore,
        views: RecordStore[ViewRecord],
        health: RecordStore[alarms.HostHealth],
        states: RecordStore[alarms.AlarmState],
        interval: float,
    ) -> None:
        self.api = api
        self.subscriptions = subscriptions
        self.views = views
        self.health = health
        self.states = states
        self.interval = interval
        self.changed = asyncio.Event()
        self.rounds = 0
        self._digests: dict[str, str] | None = None
        self._retry = False
        self._inventory: object = None
        self.health_view: KvView[alarms.HostHealth] = KvView(health.kv, decoder(alarms.HostHealth), keys="health.>")
        self.subscription_view: KvView[Subscription] = KvView(subscriptions.kv, decoder(Subscription), keys="sub.>")
        self.state_view: KvView[alarms.AlarmState] = KvView(states.kv, decoder(alarms.AlarmState))

    @classmethod
    async def create(cls, api: Api, subscriptions: SubscriptionStore, interval: float) -> Notifier:
        views_kv = await api.bus.kv(BUCKET_O2IMS_API_VIEWS)
        notifier = cls(
            api,
            subscriptions,
            RecordStore(views_kv, ViewRecord),
            RecordStore(views_kv, alarms.HostHealth),
            RecordStore(await api.bus.kv(BUCKET_O2IMS_API_ALARMS), alarms.AlarmState),
            interval,
        )
        await notifier.start()
        return notifier

    async def start(self) -> None:
        for view in (self.health_view, self.subscription_view, self.state_view):
            await view.start()
        # Another replica's host events and a callback dying or recovering change the wanted alarms.
        self.health_view.listen(lambda _key: self.poke())
        self.subscription_view.listen(lambda _key: self.poke())

    async def close(self) -> None:
        for view in (self.health_view, self.subscription_view, self.state_view):
            await view.stop()

    def poke(self) -> None:
        self.changed.set()

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        last = -MIN_GAP
        while not stop.is_set():
            if self.changed.is_set() or self._retry or await self._due():
                # A burst of changes is taken in one round.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.0, last + MIN_GAP - loop.time()))
                self.changed.clear()
                self._retry = False
                last = loop.time()
                try:
                    await self.round()
                except Exception as exc:
                    err = classify(exc)
                    if not isinstance(err, TemporaryError):
                        log.error("notifier_round_failed", exc_info=exc)
                    else:
                        log.warning("notifier_round_retry", reason=err.reason, error=err.message)
                    self._digests = None  # re-read what was notified: a write may or may not have happened
                    self._retry = True  # on the next tick, changes or not
                continue
            waiter = asyncio.ensure_future(self.changed.wait())
            stopper = asyncio.ensure_future(stop.wait())
            # A change wakes the loop at once; the period only bounds the checks of the file and the clock.
            await asyncio.wait({waiter, stopper}, timeout=self.interval, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()

    async def _due(self) -> bool:
        """A round is due without a change: the inventory file changed, or a cleared alarm's retention ran out."""
        if await self.api.state.inventory() is not self._inventory:
            return True
        now, retention = datetime.now(UTC), self.api.settings.alarm_retention
        return any(alarms.expired(s, now, retention) for s in self.state_view.values.values())

    async def round(self) -> None:
        self.rounds += 1
        snap = await self.api.snapshot(fresh=False)
        self._inventory = snap.inventory
        await self._inventory_round(snap)
        await self._alarms(snap)

    # ── inventory ────────────────────────────────────────────────────────────────────────

    async def _load(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for key in await self.views.keys():
            if not key.startswith("view."):
                continue
            got = await self.views.get(key)
            if got is None:
                continue
            record = got[0]
            if record.outbox or record.object is None:
                await self._flush(key, record)
            if record.object is not None:
                found[key] = record.digest
        return found

    async def _inventory_round(self, snap: objects.Snapshot) -> None:
        if snap.inventory is None:
            return  # an unreadable inventory file is not the removal of every host
        if self._digests is None:
            self._digests = await self._load()
        known = self._digests
        now = datetime.now(UTC)
        current = inventory_objects(snap)
        for key, (kind, obj_id, ref, obj) in current.items():
            d = digest(obj)
            if known.get(key) != d:
                await self._change(key, kind, obj_id, ref, obj, d, now)
                known[key] = d
        for key in [k for k in known if k not in current]:
            await self._change(key, "", "", "", None, "", now)
            known.pop(key, None)

    async def _change(
        self, key: str, kind: str, obj_id: str, ref: str, obj: dict[str, Any] | None, d: str, now: datetime
    ) -> None:
        def change(cur: ViewRecord | None) -> ViewRecord | None:
            if obj is None:
                if cur is None or cur.object is None:
                    return None
                ev = Event(
                    id=oid("inventory-event", key, cur.digest, "removed"),
                    kind="inventory",
                    event_type=REMOVE,
                    object_ref=cur.object_ref,
                    object_id=cur.object_id,
                    prior=cur.object,
                    post=None,
                    at=now,
                )
                return cur.model_copy(update={"object": None, "digest": "", "outbox": (*cur.outbox, ev)})
            if cur is not None and cur.object is not None and cur.digest == d:
                return None
            prior = cur.object if cur is not None else None
            ev = Event(
                id=oid("inventory-event", key, cur.digest if cur else "", d),
                kind="inventory",
                event_type=CREATE if prior is None else MODIFY,
                object_ref=ref,
                object_id=obj_id,
                prior=prior,
                post=obj,
                at=now,
            )
            return ViewRecord(
                kind=kind,
                object_id=obj_id,
                object_ref=ref,
                object=obj,
                digest=d,
                outbox=(*(cur.outbox if cur else ()), ev),
            )

        record, _ = await self.views.mutate(key, change)
        if record is not None:
            await self._flush(key, record)

    async def _flush(self, key: str, record: ViewRecord) -> None:
        for ev in record.outbox:
            subject_kind = record.kind or (ev.object_ref.rsplit("/", 2)[-2] if ev.object_ref else "object")
            await publish_event(self.api.bus, o2api_inventory(subject_kind, record.object_id), ev)
        sent = {e.id for e in record.outbox}

        def done(cur: ViewRecord | None) -> ViewRecord | object | None:
            if cur is None:
                return None
            left = tuple(e for e in cur.outbox if e.id not in sent)
            if cur.object is None and not left:
                return DELETE
            return cur.model_copy(update={"outbox": left}) if left != cur.outbox else None

        await self.views.mutate(key, done)  # type: ignore[arg-type]

    # ── alarms ───────────────────────────────────────────────────────────────────────────

    async def _alarms(self, snap: objects.Snapshot) -> None:
        health = {h.host_id: h for h in self.health_view.values.values()}
        dead = [s.id for s in self.subscription_view.values.values() if s.dead]
        wanted = alarms.desired(snap, health, dead, await self.api.state.quarantined(fresh=False))
        now = datetime.now(UTC)
        retention = self.api.settings.alarm_retention
        keys = set(self.state_view) | set(wanted)
        if snap.inventory is None:
            # Without a readable inventory no host is known: that is no reason to clear the hosts' alarms.
            keys = {k for k in keys if not k.startswith(alarms.HOST_SCOPED)}
        for key in sorted(keys):
            want = wanted.get(key)

            def change(cur: alarms.AlarmState | None, want: alarms.Wanted | None = want) -> Any:
                if want is not None:
                    return alarms.raise_or_update(cur, want, now)
                if cur is not None and alarms.expired(cur, now, retention):
                    return DELETE
                return alarms.clear(cur, now) if cur is not None else None

            held = self.state_view.get(key)
            if (held is None or not held.outbox) and change(held) is None:
                continue  # nothing to write or send, as far as the view knows (a write re-reads the record)
            state, _ = await self.states.mutate(key, change)
            if state is not None and state.outbox:
                await self.flush_alarm(state)

    async def flush_alarm(self, state: alarms.AlarmState) -> None:
        for ev in state.outbox:
            await publish_event(self.api.bus, o2api_alarm(ev.object_id), ev)
        sent = {e.id for e in state.outbox}
        await self.states.mutate(
            state.key,
            lambda cur: (
                cur.model_copy(update={"outbox": tuple(e for e in cur.outbox if e.id not in sent)})
                if cur is not None
                else None
            ),
        )

    async def alarm_records(self) -> list[alarms.AlarmState]:
        """Every alarm record, including every change made before the call."""
        if not await self.state_view.fresh():
            log.warning("alarm_view_behind")
        return [s for s in self.state_view.values.values() if s.record]

    # ── host trouble from hostprep ───────────────────────────────────────────────────────

    async def on_host_event(self, event: HostprepFailed | HostProgress | HostprepDone, ctx: MessageContext) -> None:
        p, at = event, ctx.envelope.occurred_at
        match p:
            case HostprepFailed():
                failures = p.failures or (
                    (HostFailure(host_id=p.host_id, step=p.step, reason=p.reason, message=p.message),)
                    if p.host_id
                    else ()
                )
                for f in failures:
                    if f.reason in alarms.UNREACHABLE_REASONS | alarms.KEY_REASONS:
                        trouble = alarms.HostHealth(
                            host_id=f.host_id, reason=f.reason, message=f.message, pr_id=p.pr_id, at=at
                        )
                        await self.health.mutate(f"health.{f.host_id}", _newer(trouble))
            case HostProgress() if p.status != "failed":
                await self._reached(p.host_id, at)
            case HostprepDone():
                for host_id in p.hosts:
                    await self._reached(host_id, at)
            case _:
                return
        self.poke()

    async def _reached(self, host_id: str, at: datetime) -> None:
        with contextlib.suppress(ValueError):
            await self.health.mutate(
                f"health.{host_id}", lambda cur: DELETE if cur is not None and cur.at <= at else None
            )


def _newer(trouble: alarms.HostHealth) -> Callable[[alarms.HostHealth | None], alarms.HostHealth | None]:
    # Events may be handled late: an older report never overwrites a newer one.
    return lambda cur: trouble if cur is None or cur.at <= trouble.at else None
