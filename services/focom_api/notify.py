"""Notifications: FPR phase changes and child PR transitions, as events, delivered signed and numbered.

Two durable consumers (one per source stream, one message at a time: in order per object) turn
``focom.status`` into an ``fpr`` event when the phase changed (the last notified phase per FPR is
kept in the views bucket) and every ``o2ims.status`` into a ``pr`` event. An event's id derives from
the source message id, so a redelivery publishes a duplicate the stream drops. The shared
``Deliverer`` then delivers them, one durable consumer per subscription; here each delivery gets
its body (filter applied), its gap-free per-subscription ``sequence`` (kept in the subscription
record, the same number again if the same event is delivered again), and its
``X-Focom-Signature: sha256=<hex>`` (HMAC-SHA256 of the raw body with the subscription's key).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import nats.js.errors
import structlog

from services.focom_api.schemas import NOTIFICATION_FILTER
from shared.bus import Bus, MessageContext
from shared.httpapi.delivery import Event, publish_event
from shared.httpapi.query import Term, parse_filter
from shared.httpapi.subscriptions import Subscription, SubscriptionStore
from shared.messages import derive_id
from shared.payloads import FprStatus, PrStatus
from shared.store import RecordConflict
from shared.subjects import BUCKET_FOCOM_API_VIEWS, focomapi_event

log = structlog.get_logger(__name__)

KIND = "focom"
FPR_KIND = "FocomProvisioningRequest"
PR_KIND = "ProvisioningRequest"
SIGNATURE_HEADER = "X-Focom-Signature"


class Translator:
    """Status messages in, notification events out (idempotent: replays publish duplicates the stream drops)."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def on_fpr_status(self, status: FprStatus, ctx: MessageContext) -> None:
        views = await self.bus.kv(BUCKET_FOCOM_API_VIEWS)
        key = f"phase.{status.name}"
        last: bytes | None = None
        with contextlib.suppress(nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
            last = (await views.get(key)).value
        if last == status.phase.encode():
            return
        post = {
            "kind": FPR_KIND,
            "name": status.name,
            "cluster": None,
            "phase": status.phase,
            "stage": None,
            "reason": None,
            "message": status.message,
        }
        event = Event(
            id=str(derive_id("focomapi.fpr", ctx.envelope.id)),
            kind="fpr",
            event_type=1,
            object_ref=status.name,
            object_id=status.name,
            post=post,
            at=status.updated_at,
        )
        await publish_event(self.bus, focomapi_event("fpr", status.name), event)
        await views.put(key, status.phase.encode())

    async def on_pr_status(self, status: PrStatus, ctx: MessageContext) -> None:
        post = {
            "kind": PR_KIND,
            "name": status.fpr,
            "cluster": status.cluster,
            "provisioningPhase": status.state,
            "stage": status.stage,
            "reason": status.reason,
            "message": status.message,
            "provisioningRequestId": status.pr_id,
        }
        event = Event(
            id=str(derive_id("focomapi.pr", ctx.envelope.id)),
            kind="pr",
            event_type=1,
            object_ref=status.pr_id,
            object_id=status.pr_id,
            post=post,
            at=status.at,
        )
        await publish_event(self.bus, focomapi_event("pr", status.pr_id), event)


def filter_terms(text: str | None) -> list[Term]:
    """A subscription filter: ``(eq,name,x)``, ``(eq,cluster,y)``, ``(eq,kind,ProvisioningRequest)`` … (400 if bad)."""
    return parse_filter(text, NOTIFICATION_FILTER) if text else []


def render(sub: Subscription, ev: Event) -> dict[str, Any] | None:
    post = ev.post or {}
    selector = {"name": post.get("name"), "cluster": post.get("cluster"), "kind": post.get("kind")}
    if not all(t.holds(selector) for t in filter_terms(sub.filter)):
        return None
    body: dict[str, Any] = {
        "notificationId": str(derive_id("focomapi.notification", sub.id, ev.id)),
        "subscriptionId": sub.id,
        "consumerSubscriptionId": sub.consumer_subscription_id,
        "kind": post.get("kind"),
        "name": post.get("name"),
        "cluster": post.get("cluster"),
        "stage": post.get("stage"),
        "reason": post.get("reason"),
        "message": post.get("message"),
        "occurredAt": ev.at.isoformat(),
    }
    if post.get("kind") == FPR_KIND:
        body["phase"] = post.get("phase")
    else:
        body["provisioningPhase"] = post.get("provisioningPhase")
    return body


#: How many of a subscription's latest numbers are remembered per event, so that a repeat gets its number again.
NUMBERED = 32


def numbered(extra: Mapping[str, Any]) -> dict[str, int]:
    """Event id → the ``sequence`` it was given, for the subscription's latest notifications."""
    recent = extra.get("numbered")
    if isinstance(recent, dict):
        return {str(k): int(v) for k, v in recent.items()}
    last = extra.get("last_event")  # records numbered before ``numbered`` was kept
    return {str(last): int(extra.get("seq", 0))} if last else {}


def numberer(store: SubscriptionStore) -> Any:
    """The delivery hook giving each notification its subscription's next ``sequence``.

    A repeat of an event numbered recently gets the same number again: the redelivery of the event in
    flight when a replica died, and also an event published twice (a replica killed between publishing it
    and acknowledging its source, and down for longer than the stream's duplicate window).
    """

    async def stamp(sub: Subscription, ev: Event, body: Mapping[str, Any]) -> Mapping[str, Any]:
        for _ in range(32):
            got = await store.records.get(f"sub.{sub.id}")
            if got is None:
                return body
            cur, revision = got
            seq = int(cur.extra.get("seq", 0))
            recent = numbered(cur.extra)
            if ev.id in recent:
                return {**body, "sequence": recent[ev.id]}
            recent[ev.id] = seq + 1
            kept = dict(list(recent.items())[-NUMBERED:])
            extra = {k: v for k, v in cur.extra.items() if k != "last_event"}
            new = cur.model_copy(update={"extra": {**extra, "seq": seq + 1, "numbered": kept}})
            try:
                await store.records.update(f"sub.{sub.id}", new, revision)
            except RecordConflict:
                continue
            return {**body, "sequence": seq + 1}
        raise RuntimeError(f"subscription {sub.id} kept changing while numbering a notification")

    return stamp


def signature(key_hex: str, raw: bytes) -> str:
    return "sha256=" + hmac.new(bytes.fromhex(key_hex), raw, hashlib.sha256).hexdigest()


def sign(sub: Subscription, raw: bytes) -> Mapping[str, str]:
    key = sub.extra.get("signing_key")
    return {SIGNATURE_HEADER: signature(key, raw)} if isinstance(key, str) else {}
