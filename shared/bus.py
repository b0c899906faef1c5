"""The message bus: publish envelopes, run durable pull consumers, map handler outcomes to acks.

This is the only module that acks, naks or terminates a message (DESIGN §3):

============================================  =========================================
handler outcome                               JetStream action
============================================  =========================================
returns                                       ``ack``
``TemporaryError(delay)``, deliveries left    ``nak(delay)``
``PermanentError`` / ``InputError`` /          ``term`` + one ``message.failed`` event
deliveries exhausted / undecodable message
``UnexpectedError`` (or any exception no      ``nak`` with backoff, up to the consumer's
classifier recognises)                        ``unexpected_retries``; then ``term`` + one
                                              ``message.failed``. Every one is logged with
                                              its traceback at error level and counted in
                                              ``o2_unexpected_faults_total``
handler still running                         ``in_progress()`` heartbeats below ack_wait
============================================  =========================================

At this level a consumer's handler is ``async def handler(env: Envelope, ctx: MessageContext)``;
services never write one: they give typed functions of their payload to ``ServiceRuntime.consume``,
and ``shared.dispatch`` builds the handler that routes by payload type and refuses the rest. A
handler publishes what follows from the message with ``ctx.publish`` (deterministic ids make
re-runs harmless).
On stop, fetching ends, in-flight handlers get ``drain_timeout`` to finish, and whatever is
still running is nak'ed so another replica (or the next start) gets it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import nats.errors
import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.kv import KeyValue

from shared.errors import InputError, TemporaryError, UnexpectedError, classify, root_cause
from shared.messages import Envelope, decode, derive_id, utcnow
from shared.metrics import BusMetrics
from shared.outcomes import FaultCounts, log_outcome
from shared.payloads import MessageFailed, Payload
from shared.subjects import ConsumerSpec, last_token

log = structlog.get_logger(__name__)

Handler = Callable[[Envelope, "MessageContext"], Awaitable[None]]
PUBLISH_TIMEOUT = 5.0
FETCH_WAIT = 1.0
#: The longest delay between retries after unexpected faults.
MAX_UNEXPECTED_DELAY = 60.0


@dataclass
class MessageContext:
    """What a handler knows about the message it handles, and how it publishes follow-ups."""

    bus: Bus
    subject: str
    deliveries: int
    consumer: str
    envelope: Envelope
    published: list[tuple[str, Envelope]] = field(default_factory=list)
    #: When the bus received the message (the stream's timestamp, the same on every redelivery, never
    #: after this process's clock). Deadlines and ordering use this, not the sender's ``occurred_at``.
    received_at: datetime = field(default_factory=utcnow)

    async def publish(self, subject: str, payload: Payload, *, key: object = None) -> Envelope:
        """Publish ``payload`` caused by this message; ``key`` makes its id deterministic.

        With a key, the id is derived from (this message id, payload type, key), so a re-run
        of the handler publishes a message JetStream recognises as a duplicate.
        """
        msg_id = derive_id(self.envelope.id, payload.type, key) if key is not None else None
        env = Envelope.wrap(payload, source=self.bus.source, cause=self.envelope, id=msg_id)
        await self.bus.publish(subject, env)
        self.published.append((subject, env))
        return env


def received_at(msg: Msg) -> datetime:
    """The stream's timestamp of ``msg`` (set by the server when it stored it), capped at our own clock."""
    now = utcnow()
    with contextlib.suppress(Exception):
        stored = msg.metadata.timestamp
        if isinstance(stored, datetime) and stored.tzinfo is not None:
            return min(stored, now)
    return now


class Bus:
    """A connected NATS client with JetStream, shared by all consumers of one process."""

    def __init__(self, nc: NatsClient, *, source: str, metrics: BusMetrics | None = None) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(timeout=PUBLISH_TIMEOUT)
        self.source = source
        self.metrics = metrics or BusMetrics()
        self._consumers: list[Consumer] = []

    async def publish(self, subject: str, env: Envelope, *, timeout: float = PUBLISH_TIMEOUT) -> js_api.PubAck:
        """Publish with ``Nats-Msg-Id`` = envelope id; a duplicate id is dropped by the stream."""
        return await self.js.publish(subject, env.encode(), timeout=timeout, headers={"Nats-Msg-Id": str(env.id)})

    async def publish_batch(self, items: list[tuple[str, Envelope]], *, timeout: float = 30.0) -> None:
        """Publish many envelopes pipelined (not one round trip each); waits for every ack."""
        futures = [
            await self.js.publish_async(subject, env.encode(), headers={"Nats-Msg-Id": str(env.id)})
            for subject, env in items
        ]
        if futures:
            await asyncio.wait_for(asyncio.gather(*futures), timeout)

    async def emit(
        self, subject: str, payload: Payload, *, correlation_id: str = "", id: uuid.UUID | None = None
    ) -> Envelope:
        """Publish a payload that no message caused (e.g. a watch observation or a CLI request)."""
        env = Envelope.wrap(payload, source=self.source, correlation_id=correlation_id, id=id)
        await self.publish(subject, env)
        return env

    async def kv(self, bucket: str) -> KeyValue:
        return await self.js.key_value(bucket)

    def consumer(self, spec: ConsumerSpec, handler: Handler) -> Consumer:
        c = Consumer(self, spec, handler)
        self._consumers.append(c)
        return c

    @property
    def consumers(self) -> list[Consumer]:
        return list(self._consumers)

    @property
    def connected(self) -> bool:
        return bool(self.nc.is_connected)

    async def stop_consumers(self, drain_timeout: float) -> None:
        await asyncio.gather(*(c.stop(drain_timeout) for c in self._consumers))

    async def close(self) -> None:
        """Drain the connection (flushes pending publishes); never raises."""
        with contextlib.suppress(Exception):
            if not self.nc.is_closed:
                await asyncio.wait_for(self.nc.drain(), 10.0)
        with contextlib.suppress(Exception):
            await self.nc.close()


class _Heartbeat:
    """``in_progress()`` every ``interval`` seconds while a message is handled: keeps it ours past ack_wait.

    A timer on the loop, not a task per message: most messages are handled long before the first
    beat is due, and then all this costs is scheduling and cancelling one timer.
    """

    def __init__(self, msg: Msg, interval: float) -> None:
        self._msg = msg
        self._interval = interval
        self._loop = asyncio.get_running_loop()
        self._beat: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = self._loop.call_later(interval, self._due)

    def _due(self) -> None:
        if self._beat is None or self._beat.done():  # never two at once on a slow connection
            self._beat = self._loop.create_task(self._send())
        self._timer = self._loop.call_later(self._interval, self._due)

    async def _send(self) -> None:
        with contextlib.suppress(Exception):
            await self._msg.in_progress()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._beat is not None:
            self._beat.cancel()


class Consumer:
    """One durable pull consumer bound to a handler, with bounded concurrency."""

    def __init__(self, bus: Bus, spec: ConsumerSpec, handler: Handler) -> None:
        self.bus = bus
        self.spec = spec
        self.handler = handler
        self.bound = False
        self._stopping = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._sub: JetStreamContext.PullSubscription | None = None
        self._slots = asyncio.Semaphore(spec.concurrency)
        self._faults = FaultCounts()

    def config(self) -> js_api.ConsumerConfig:
        s = self.spec
        filters: dict[str, Any] = (
            {"filter_subject": s.filter_subjects[0]}
            if len(s.filter_subjects) == 1
            else {"filter_subjects": list(s.filter_subjects)}
        )
        return js_api.ConsumerConfig(
            durable_name=s.durable,
            ack_policy=js_api.AckPolicy.EXPLICIT,
            deliver_policy=js_api.DeliverPolicy.ALL,
            ack_wait=s.ack_wait,
            max_deliver=s.max_deliver,
            max_ack_pending=s.max_ack_pending,
            **filters,
        )

    async def start(self) -> None:
        """Create or update the durable consumer, bind, and start fetching in the background."""
        await self.bus.js.add_consumer(self.spec.stream.name, self.config())
        sub = await self.bus.js.pull_subscribe_bind(durable=self.spec.durable, stream=self.spec.stream.name)
        self._sub = sub
        self.bound = True
        self._task = asyncio.create_task(self._fetch_loop(sub), name=f"consumer:{self.spec.durable}")

    async def _fetch_loop(self, sub: JetStreamContext.PullSubscription) -> None:
        while not self._stopping.is_set():
            free = self._free_slots()
            if free == 0:
                await self._wait_for_slot()
                continue
            try:
                msgs = await sub.fetch(batch=free, timeout=FETCH_WAIT)
            except (nats.errors.TimeoutError, TimeoutError):  # nothing arrived within FETCH_WAIT: fetch again
                continue
            except (nats.errors.ConnectionClosedError, nats.errors.DrainTimeoutError):
                break
            except Exception as exc:  # the connection is reconnecting: wait, then fetch again
                log.warning("fetch_failed", consumer=self.spec.durable, error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(0.5)  # backoff while the client reconnects
                continue
            for msg in msgs:
                await self._slots.acquire()
                task = asyncio.create_task(self._process(msg))
                self._inflight.add(task)
                task.add_done_callback(self._done)

    def _free_slots(self) -> int:
        return self.spec.concurrency - len(self._inflight)

    async def _wait_for_slot(self) -> None:
        await self._slots.acquire()
        self._slots.release()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._slots.release()

    async def _process(self, msg: Msg) -> None:
        spec = self.spec
        deliveries = int(msg.metadata.num_delivered or 1)
        started = time.perf_counter()
        env: Envelope | None = None
        outcome = "ack"
        try:
            env = decode(msg.data)
        except InputError as exc:
            await self._terminate(msg, None, exc, deliveries)
            log_outcome(self.bus.metrics, spec.durable, msg.subject, None, "term", deliveries, started, exc)
            return
        structlog.contextvars.bind_contextvars(
            message_id=str(env.id), correlation_id=env.correlation_id, subject=msg.subject, type=env.type
        )
        heartbeat = _Heartbeat(msg, max(spec.ack_wait / 3.0, 0.1))
        error: BaseException | None = None
        seq = msg.metadata.sequence.stream if msg.metadata.sequence else 0
        try:
            ctx = MessageContext(self.bus, msg.subject, deliveries, spec.durable, env, received_at=received_at(msg))
            await self.handler(env, ctx)
            await msg.ack()
            self._faults.forget(seq)
        except asyncio.CancelledError:
            outcome = "cancelled"
            # Hand it back now rather than after ack_wait: we are stopping.
            with contextlib.suppress(Exception):
                await asyncio.shield(msg.nak())
            raise
        except Exception as exc:
            error = exc
            err = classify(exc)
            exhausted = spec.max_deliver > 0 and deliveries >= spec.max_deliver
            delay = exc.delay if isinstance(exc, TemporaryError) else spec.retry_delay
            if isinstance(err, UnexpectedError):
                faults = self._faults.add(seq)
                self.bus.metrics.unexpected_fault(spec.durable, root_cause(exc))
                exhausted = exhausted or faults > spec.unexpected_retries
                delay = min(spec.retry_delay * 2 ** (faults - 1), MAX_UNEXPECTED_DELAY)
            if isinstance(err, TemporaryError) and not exhausted:
                outcome = "nak"
                await msg.nak(delay=delay)
            else:
                outcome = "term"
                self._faults.forget(seq)
                await self._terminate(msg, env, err, deliveries)
        finally:
            heartbeat.cancel()
            log_outcome(self.bus.metrics, spec.durable, msg.subject, env, outcome, deliveries, started, error)
            structlog.contextvars.unbind_contextvars("message_id", "correlation_id", "subject", "type")

    async def _terminate(self, msg: Msg, env: Envelope | None, err: BaseException, deliveries: int) -> None:
        """Publish exactly one ``message.failed`` (deduplicated by id), then ``term``."""
        spec = self.spec
        serr = classify(err)
        key = self._failure_key(msg, env)
        try:
            failure_subject = spec.failure_subject(msg.subject, key)
        except ValueError:
            failure_subject = spec.failure_subject(msg.subject, "_unknown")
        failed = MessageFailed.about(
            consumer=spec.durable,
            subject=msg.subject,
            message_id=str(env.id) if env else None,
            message_type=env.type if env else None,
            reason=serr.reason,
            error=serr.message,
            path=serr.path if isinstance(serr, InputError) and serr.path else None,
            deliveries=deliveries,
        )
        seq = msg.metadata.sequence.stream if msg.metadata.sequence else None
        fid = derive_id("failed", spec.durable, spec.stream.name, seq, env.id if env else msg.subject)
        out = Envelope.wrap(failed, source=self.bus.source, cause=env, id=fid)
        try:
            await self.bus.publish(failure_subject, out)
        except Exception as exc:
            # Without the failure event nobody would learn of the loss: retry the message instead.
            log.error("failed_event_not_published", error=f"{type(exc).__name__}: {exc}")
            await msg.nak(delay=spec.retry_delay)
            return
        await msg.term()

    def _failure_key(self, msg: Msg, env: Envelope | None) -> str:
        """The PR or FPR a terminated message belongs to (its failure subject's last token)."""
        how = self.spec.failure_key
        if how == "subject" and msg.subject.count(".") >= 2:
            return last_token(msg.subject)
        if how == "pr_id" and env is not None:
            pr_id = getattr(env.payload, "pr_id", None)
            return str(pr_id) if pr_id else "_unknown"
        return env.correlation_id if env is not None and env.correlation_id else "_unknown"

    async def stop(self, drain_timeout: float) -> None:
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(self._task), FETCH_WAIT + 2.0)
            if not self._task.done():
                self._task.cancel()
        if self._inflight:
            _done, pending = await asyncio.wait(set(self._inflight), timeout=drain_timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        if self._sub is not None:
            # An idle pull subscription would otherwise hold the connection's drain open.
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        self.bound = False
