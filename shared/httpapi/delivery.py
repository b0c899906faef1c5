"""Durable notification delivery: change events on a stream, one durable consumer per subscription.

A producer publishes each change once as an ``Event`` (its id is the ``Nats-Msg-Id``, derived from
what changed, so replicas and retries publish duplicates the stream drops). Each subscription has
its own durable consumer (``max_ack_pending=1``: strictly in stream order, hence in order per
object) starting at the stream position where it subscribed. ``Deliverer`` runs one worker per
subscription in every replica (they share the consumer): it renders the event for that
subscriber (or skips it: filter), POSTs it to the callback with a timeout, and acks on 2xx. A
failure is retried with exponential backoff (``nak(delay)``) for as long as the subscription
exists; after ``dead_after`` failures in a row the subscription is marked dead and ``on_health``
is told (an alarm), and the next success revives it. A dead callback only ever holds up its own
consumer. A crash mid-delivery leaves the message unacknowledged: it is delivered again after
``ack_wait`` (at least once; the notification id is stable so receivers can drop repeats).
Optional hooks: ``sign`` adds headers computed from the raw body (e.g. an HMAC signature), and
``stamp`` completes the body just before it is posted (e.g. a per-subscription sequence number,
which must come out the same when the same event is delivered again).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
import nats.errors
import nats.js.errors
import structlog
from nats.js import api as js_api
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.bus import Bus
from shared.httpapi.kvview import KvView, decoder
from shared.httpapi.subscriptions import Subscription, SubscriptionStore
from shared.subjects import StreamSpec

log = structlog.get_logger(__name__)

FETCH_WAIT = 1.0
MAX_BACKOFF = 60.0


class Event(BaseModel):
    """One change of one object, as stored on the notification stream."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    kind: str
    #: The API's own event type number (e.g. 0 create, 1 modify, 2 delete).
    event_type: int
    object_ref: str
    object_id: str
    prior: dict[str, Any] | None = None
    post: dict[str, Any] | None = None
    at: datetime


async def publish_event(bus: Bus, subject: str, event: Event) -> None:
    await bus.js.publish(subject, event.model_dump_json().encode(), headers={"Nats-Msg-Id": event.id}, timeout=5.0)


Render = Callable[[Subscription, Event], Mapping[str, Any] | None]
Sign = Callable[[Subscription, bytes], Mapping[str, str]]
Health = Callable[[Subscription], Awaitable[None]]
#: Completes a rendered body just before it is posted (e.g. a per-subscription sequence number); must give the
#: same result when the same event is delivered again.
Stamp = Callable[[Subscription, Event, Mapping[str, Any]], Awaitable[Mapping[str, Any]]]


def backoff(failures: int) -> float:
    return float(min(MAX_BACKOFF, 2 ** max(0, failures - 1)))


class Deliverer:
    """Delivers one kind of notification to every subscription of that kind."""

    def __init__(
        self,
        bus: Bus,
        store: SubscriptionStore,
        *,
        kind: str,
        stream: StreamSpec,
        subjects: tuple[str, ...],
        render: Render,
        durable: Callable[[str], str],
        timeout: float,
        dead_after: int,
        ack_wait: float,
        on_health: Health | None = None,
        sign: Sign | None = None,
        stamp: Stamp | None = None,
    ) -> None:
        self.bus = bus
        self.store = store
        self.kind = kind
        self.stream = stream
        self.subjects = subjects
        self.render = render
        #: The durable consumer name of a subscription id (each API names its own).
        self.durable = durable
        self.timeout = timeout
        self.dead_after = dead_after
        self.ack_wait = ack_wait
        self.on_health = on_health
        self.sign = sign
        self.stamp = stamp
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._view: KvView[Subscription] | None = None

    async def start_position(self) -> int:
        """Where a subscription made now starts: just after the last event already on the stream."""
        info = await self.bus.js.stream_info(self.stream.name)
        return int(info.state.last_seq) + 1

    async def ensure_consumer(self, sub: Subscription) -> None:
        filters: dict[str, Any] = (
            {"filter_subject": self.subjects[0]}
            if len(self.subjects) == 1
            else {"filter_subjects": list(self.subjects)}
        )
        config = js_api.ConsumerConfig(
            durable_name=self.durable(sub.id),
            ack_policy=js_api.AckPolicy.EXPLICIT,
            deliver_policy=js_api.DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=sub.start_seq,
            ack_wait=self.ack_wait,
            max_deliver=-1,
            max_ack_pending=1,
            **filters,
        )
        try:
            await self.bus.js.consumer_info(self.stream.name, config.durable_name or "")
        except nats.js.errors.NotFoundError:
            await self.bus.js.add_consumer(self.stream.name, config)

    async def remove_consumer(self, sub_id: str) -> None:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await self.bus.js.delete_consumer(self.stream.name, self.durable(sub_id))

    # ── running ──────────────────────────────────────────────────────────────────────────

    async def run(self, stop: asyncio.Event, interval: float = 2.0) -> None:
        """Keep one worker per subscription of our kind (subscriptions made by any replica).

        The subscriptions are followed by a KV watch: a subscription made or deleted anywhere starts or
        stops its worker at once, and nothing is re-read while none changes; every ``interval`` seconds
        a worker that stopped (a fault, the connection closed) is started again.
        """
        self._session = aiohttp.ClientSession()
        changed = asyncio.Event()
        view: KvView[Subscription] = KvView(
            self.store.kv, decoder(Subscription), keys="sub.>", name=f"subscriptions:{self.kind}"
        )
        view.listen(lambda _key: changed.set())
        try:
            while not stop.is_set() and self._view is None:
                try:
                    await view.start()
                    self._view = view
                except (nats.errors.Error, TimeoutError) as exc:
                    log.warning("subscriptions_not_loaded", kind=self.kind, error=type(exc).__name__)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), interval)  # retry period while NATS is away
            while not stop.is_set():
                changed.clear()
                self._sync([s.id for s in view.values.values() if s.kind == self.kind])
                waiter = asyncio.ensure_future(changed.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, stopper}, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
        finally:
            self._view = None
            await view.stop()
            # Cancel until every worker ended: Python 3.11's wait_for (under nats-py's fetch) can swallow a
            # cancellation that meets its timeout, and the worker would then fetch on for ever.
            ending = list(self._workers.values())
            workers = set(ending)
            while workers:
                for task in workers:
                    task.cancel()
                _done, workers = await asyncio.wait(workers, timeout=1.0)
            for task in ending:
                if not task.cancelled():
                    task.exception()  # retrieved: a worker's failure at stop is not worth a loop warning
            await self._session.close()

    async def sync(self) -> None:
        """Start and stop workers now (after this replica made or deleted a subscription)."""
        view = self._view
        if view is not None and await view.usable(fresh=True):
            self._sync([s.id for s in view.values.values() if s.kind == self.kind])
        else:
            self._sync([s.id for s in await self.store.all(self.kind)])

    def _sync(self, subscriptions: list[str]) -> None:
        wanted = set(subscriptions)
        for sub_id in wanted - set(self._workers):
            self._workers[sub_id] = asyncio.create_task(self._worker(sub_id), name=f"deliver:{sub_id}")
        for sub_id in set(self._workers) - wanted:
            self._workers.pop(sub_id).cancel()
        for sub_id, task in list(self._workers.items()):
            if task.done():
                self._workers.pop(sub_id)
                if not task.cancelled() and task.exception() is not None:
                    # Restarted on the next round; the cause is worth seeing.
                    log.warning("delivery_worker_stopped", subscription=sub_id, exc_info=task.exception())

    async def _worker(self, sub_id: str) -> None:
        sub = await self.store.get(sub_id)
        if sub is None:
            return
        await self.ensure_consumer(sub)
        psub = await self.bus.js.pull_subscribe_bind(durable=self.durable(sub_id), stream=self.stream.name)
        try:
            while True:
                try:
                    msgs = await psub.fetch(batch=1, timeout=FETCH_WAIT)
                except nats.errors.TimeoutError:
                    continue
                except nats.js.errors.NotFoundError:
                    return  # the subscription was deleted
                except (nats.errors.ConnectionClosedError, nats.errors.DrainTimeoutError):
                    return
                for msg in msgs:
                    await self._deliver(sub_id, msg)
        finally:
            with contextlib.suppress(Exception):
                await psub.unsubscribe()

    async def _deliver(self, sub_id: str, msg: Any) -> None:
        sub = await self.store.get(sub_id)
        if sub is None:
            await msg.ack()
            return
        try:
            event = Event.model_validate_json(msg.data)
        except ValidationError:
            log.warning("notification_event_unreadable", subscription=sub_id)
            await msg.term()
            return
        body = self.render(sub, event)
        if body is None:
            await msg.ack()  # not for this subscriber (its filter)
            return
        if self.stamp is not None:
            body = await self.stamp(sub, event, body)
        error = await self._post(sub, body)
        now = datetime.now(UTC)
        if error is None:
            await msg.ack()
            if sub.failures or sub.dead:
                updated = await self.store.note(sub_id, ok=True, error=None, at=now, dead_after=self.dead_after)
                log.info("callback_recovered", subscription=sub_id)
                if updated is not None and self.on_health is not None:
                    await self.on_health(updated)
            return
        updated = await self.store.note(sub_id, ok=False, error=error, at=now, dead_after=self.dead_after)
        failures = updated.failures if updated else sub.failures + 1
        delay = backoff(failures)
        log.warning(
            "notification_not_delivered",
            subscription=sub_id,
            event_id=event.id,
            error=error,
            failures=failures,
            retry_in=delay,
        )
        await msg.nak(delay=delay)
        if updated is not None and updated.dead != sub.dead and self.on_health is not None:
            await self.on_health(updated)

    async def _post(self, sub: Subscription, body: Mapping[str, Any]) -> str | None:
        assert self._session is not None
        raw = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **(self.sign(sub, raw) if self.sign else {})}
        try:
            async with self._session.post(
                sub.callback,
                data=raw,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as resp:
                if 200 <= resp.status < 300:
                    return None
                return f"callback answered {resp.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            return f"callback unreachable ({type(exc).__name__})"
