"""Notification subscriptions of the SMO-facing APIs: the record, its KV store, and callback admission.

A subscription is kept in a KV bucket under ``sub.<id>``; a second key ``cb.<kind>.<digest>``
makes a callback unique per kind (a second subscription of the same callback is refused), taken
with an atomic create before the subscription itself. Callbacks are admitted only when their host
is on the configured allow-list (the guard against using us to reach internal addresses) and
when they answer a GET probe over HTTP.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import nats.js.errors
from nats.js.kv import KeyValue
from pydantic import BaseModel, ConfigDict, Field

from shared.httpapi.problems import bad_request
from shared.models import IpAddr, parse_ip
from shared.store import RecordExists, RecordStore


class Subscription(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    #: Which notifications it receives (``inventory``, ``alarm`` …): one delivery stream filter per kind.
    kind: str
    callback: str
    consumer_subscription_id: str | None = None
    filter: str | None = None
    created_at: datetime
    #: The first stream sequence it is delivered (events before it subscribed are not its business).
    start_seq: int = Field(1, ge=1)
    #: Delivery health: failures in a row, and whether the callback counts as dead.
    failures: int = 0
    dead: bool = False
    last_error: str | None = None
    last_delivered_at: datetime | None = None
    #: Kind-specific data (e.g. a signing key digest); never shown as-is.
    extra: dict[str, Any] = Field(default_factory=dict)


class DuplicateCallback(Exception):
    """The callback already has a subscription of this kind."""


def _index_key(kind: str, callback: str) -> str:
    return f"cb.{kind}.{hashlib.sha256(callback.encode()).hexdigest()[:40]}"


class SubscriptionStore:
    def __init__(self, kv: KeyValue) -> None:
        self.records = RecordStore(kv, Subscription)
        self.kv = kv

    async def create(self, sub: Subscription) -> None:
        index = _index_key(sub.kind, sub.callback)
        try:
            await self.kv.create(index, sub.id.encode())
        except nats.js.errors.KeyWrongLastSequenceError:
            holder = await self.kv.get(index)
            if holder.value and (await self.get(holder.value.decode())) is not None:
                raise DuplicateCallback(sub.callback) from None
            # A crash between the index and the record left an orphan: take the index over.
            await self.kv.update(index, sub.id.encode(), last=holder.revision)
        try:
            await self.records.create(f"sub.{sub.id}", sub)
        except RecordExists:
            await self.kv.delete(index)
            raise

    async def get(self, sub_id: str) -> Subscription | None:
        got = await self.records.get(f"sub.{sub_id}")
        return got[0] if got else None

    async def all(self, kind: str | None = None) -> list[Subscription]:
        out = []
        for key in await self.records.keys():
            if key.startswith("sub."):
                sub = await self.get(key.removeprefix("sub."))
                if sub is not None and (kind is None or sub.kind == kind):
                    out.append(sub)
        return sorted(out, key=lambda s: s.id)

    async def delete(self, sub: Subscription) -> None:
        await self.records.delete(f"sub.{sub.id}")
        index = _index_key(sub.kind, sub.callback)
        try:
            holder = await self.kv.get(index)
        except nats.js.errors.KeyNotFoundError:
            return
        if holder.value == sub.id.encode():
            await self.kv.delete(index, last=holder.revision)

    async def note(
        self, sub_id: str, *, ok: bool, error: str | None, at: datetime, dead_after: int
    ) -> Subscription | None:
        """Record one delivery outcome; returns the updated subscription (None when it is gone)."""

        def change(cur: Subscription | None) -> Subscription | None:
            if cur is None:
                return None
            if ok:
                return cur.model_copy(
                    update={"failures": 0, "dead": False, "last_error": None, "last_delivered_at": at}
                )
            failures = cur.failures + 1
            return cur.model_copy(
                update={"failures": failures, "dead": failures >= dead_after, "last_error": (error or "")[:300]}
            )

        new, _ = await self.records.mutate(f"sub.{sub_id}", change)
        return new


# ── admission of callbacks ─────────────────────────────────────────────────────────────────


async def admit(
    body: Mapping[str, Any],
    *,
    store: SubscriptionStore,
    kind: str,
    allow: tuple[str, ...],
    timeout: float,
    check_filter: Callable[[str | None], object],
    filter_example: str = "",
) -> tuple[str, str | None, str | None]:
    """The ``(callback, consumerSubscriptionId, filter)`` of a new subscription, or a 400 saying what is wrong.

    The callback must be on ``allow``, not yet subscribed to ``kind`` and answer the GET probe;
    ``check_filter`` refuses a bad filter now rather than at the first notification.
    """
    if "callback" not in body:
        raise bad_request("callback: required")
    callback = check_callback(body["callback"], allow)
    consumer_id, text = body.get("consumerSubscriptionId"), body.get("filter")
    if consumer_id is not None and (not isinstance(consumer_id, str) or len(consumer_id) > 256):
        raise bad_request("consumerSubscriptionId: a string of at most 256 characters")
    if text is not None and not isinstance(text, str):
        raise bad_request(f"filter: a filter expression string{', e.g. ' + filter_example if filter_example else ''}")
    check_filter(text)
    if any(s.callback == callback for s in await store.all(kind)):
        raise bad_request(f"callback: {callback} is already subscribed")
    async with aiohttp.ClientSession() as session:
        await probe(session, callback, timeout)
    return callback, consumer_id, text


def check_callback(value: Any, allow: tuple[str, ...]) -> str:
    """A callback URL whose host is on ``allow``; anything else is a 400 saying why."""
    if not isinstance(value, str) or not value:
        raise bad_request("callback: a URL is required")
    if len(value) > 2048:
        raise bad_request("callback: longer than 2048 characters")
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises for a port that is not a number
    except ValueError:
        raise bad_request("callback: not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad_request("callback: an http(s) URL with a host is required")
    if parts.username or parts.password:
        raise bad_request("callback: credentials in the URL are not accepted")
    if not host_allowed(parts.hostname, allow):
        raise bad_request(f"callback: host {parts.hostname!r} is not on the callback allow-list")
    return value


def host_allowed(host: str, allow: tuple[str, ...]) -> bool:
    """Exact names or addresses, ``*.domain`` suffixes, or CIDR blocks (for address hosts)."""
    host = host.lower().rstrip(".")
    if "%" in host:
        return False  # an IPv6 zone id names an interface of this machine, never a callback host
    try:
        address: IpAddr | None = parse_ip(host)
    except ValueError:
        address = None
    for raw in allow:
        entry = raw.lower()
        if entry == host:
            return True
        if entry.startswith("*.") and address is None and host.endswith(entry[1:]):
            return True
        if "/" in entry and address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


async def probe(session: aiohttp.ClientSession, callback: str, timeout: float) -> int:
    """GET the callback once: it must answer over HTTP, or the subscription is refused (400).

    Any HTTP answer proves the endpoint is there (receivers often serve only POST, answering a GET
    with 404 or 405); no answer at all (refused, unresolvable, timed out, not HTTP) is a mistake to
    report now rather than a dead subscription later. Returns the status for the log.
    """
    try:
        async with session.get(callback, timeout=aiohttp.ClientTimeout(total=timeout), allow_redirects=False) as resp:
            return resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise bad_request(f"callback: the GET probe got no HTTP answer ({type(exc).__name__})") from None
