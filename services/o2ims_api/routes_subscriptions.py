"""Subscription routes: inventory (``I/subscriptions``) and alarm (``M/alarmSubscriptions``) subscriptions,
and how each kind's notifications are rendered for a subscriber.

POST answers 201 with ``Location``; 400 for a body that is not a JSON object, a missing or
refused callback (not on the allow-list, or no HTTP answer to the GET probe), a bad filter, or a
callback already subscribed. DELETE answers 200 and removes the delivery consumer with it.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from services.o2ims_api import schemas
from services.o2ims_api.api import INVENTORY, MONITORING, VERSION, api, uuid_param
from services.o2ims_api.catalogue import oid
from shared.httpapi.auth import READ, requires
from shared.httpapi.delivery import Deliverer, Event
from shared.httpapi.problems import bad_request, json_body, not_found
from shared.httpapi.query import Term, collection_response, item_response, parse_filter
from shared.httpapi.subscriptions import DuplicateCallback, Subscription, SubscriptionStore, admit

SUBSCRIPTIONS_KEY = web.AppKey("subscriptions", SubscriptionStore)
#: No schema limits subscription filters: they apply to whichever object a notification carries.
ANY: dict[str, Any] = {}


@dataclass(frozen=True)
class Kind:
    name: str
    path: str
    id_field: str
    schema: dict[str, Any]


INVENTORY_KIND = Kind(
    "inventory", f"{INVENTORY}/{VERSION}/subscriptions", "subscriptionId", schemas.INVENTORY_SUBSCRIPTION
)
ALARM_KIND = Kind(
    "alarm", f"{MONITORING}/{VERSION}/alarmSubscriptions", "alarmSubscriptionId", schemas.ALARM_SUBSCRIPTION
)
DELIVERERS_KEY = web.AppKey("deliverers", dict)


def as_json(kind: Kind, sub: Subscription) -> dict[str, Any]:
    return {
        kind.id_field: sub.id,
        "consumerSubscriptionId": sub.consumer_subscription_id,
        "filter": sub.filter,
        "callback": sub.callback,
    }


def _terms(text: str | None) -> list[Term]:
    return parse_filter(text, ANY) if text else []


def _selected(sub: Subscription, obj: Mapping[str, Any] | None) -> bool:
    terms = _terms(sub.filter)
    return not terms or (obj is not None and all(t.holds(obj) for t in terms))


def render_inventory(sub: Subscription, ev: Event) -> dict[str, Any] | None:
    body = {
        "notificationId": oid("notification", sub.id, ev.id),
        "consumerSubscriptionId": sub.consumer_subscription_id,
        "notificationEventType": ev.event_type,
        "objectRef": ev.object_ref,
        "priorObjectState": ev.prior,
        "postObjectState": ev.post,
    }
    # A filter names the object's attributes (e.g. resourceTypeId) or the notification's (notificationEventType).
    obj = ev.post if ev.post is not None else ev.prior
    return body if _selected(sub, {**body, **(obj or {})}) else None


def alarm_renderer(global_cloud_id: Callable[[], str]) -> Callable[[Subscription, Event], dict[str, Any] | None]:
    def render(sub: Subscription, ev: Event) -> dict[str, Any] | None:
        if ev.post is None:
            return None
        body = {
            "notificationId": oid("notification", sub.id, ev.id),
            "globalCloudID": global_cloud_id(),
            "consumerSubscriptionId": sub.consumer_subscription_id,
            "notificationEventType": ev.event_type,
            "objectRef": ev.object_ref,
            **ev.post,
        }
        return body if _selected(sub, body) else None

    return render


def _store(request: web.Request) -> SubscriptionStore:
    return request.app[SUBSCRIPTIONS_KEY]


def _handlers(kind: Kind) -> dict[str, Callable[[web.Request], Awaitable[web.Response]]]:
    @requires(*READ)
    async def list_subs(request: web.Request) -> web.Response:
        subs = [as_json(kind, s) for s in await _store(request).all(kind.name)]
        return collection_response(
            request, subs, kind.schema, lambda o: str(o[kind.id_field]), identity=(kind.id_field,)
        )

    @requires(*READ)
    async def get_sub(request: web.Request) -> web.Response:
        sub_id = uuid_param(request, "id", "subscription")
        sub = await _store(request).get(sub_id)
        if sub is None or sub.kind != kind.name:
            raise not_found(f"no subscription {sub_id}")
        return item_response(request, as_json(kind, sub), kind.schema, identity=(kind.id_field,))

    @requires("subscriber")
    async def create_sub(request: web.Request) -> web.Response:
        a = api(request)
        body = await json_body(request)
        store = _store(request)
        callback, consumer_id, text = await admit(
            body,
            store=store,
            kind=kind.name,
            allow=a.settings.callback_allow,
            timeout=a.settings.callback_timeout,
            check_filter=_terms,
        )
        deliverer: Deliverer = request.app[DELIVERERS_KEY][kind.name]
        sub = Subscription(
            id=str(uuid.uuid4()),
            kind=kind.name,
            callback=callback,
            consumer_subscription_id=consumer_id,
            filter=text,
            created_at=datetime.now(UTC),
            start_seq=await deliverer.start_position(),
        )
        try:
            await store.create(sub)
        except DuplicateCallback:
            raise bad_request(f"callback: {callback} is already subscribed") from None
        await deliverer.ensure_consumer(sub)
        await deliverer.sync()
        location = f"{a.base_url(request)}{kind.path}/{sub.id}"
        return web.json_response(as_json(kind, sub), status=201, headers={"Location": location})

    @requires("subscriber")
    async def delete_sub(request: web.Request) -> web.Response:
        store = _store(request)
        sub_id = uuid_param(request, "id", "subscription")
        sub = await store.get(sub_id)
        if sub is None or sub.kind != kind.name:
            raise not_found(f"no subscription {sub_id}")
        await store.delete(sub)
        deliverer: Deliverer = request.app[DELIVERERS_KEY][kind.name]
        await deliverer.remove_consumer(sub.id)
        await deliverer.sync()
        return web.json_response(as_json(kind, sub), status=200)

    return {"list": list_subs, "get": get_sub, "create": create_sub, "delete": delete_sub}


def add_routes(app: web.Application) -> None:
    for kind in (INVENTORY_KIND, ALARM_KIND):
        h = _handlers(kind)
        app.router.add_get(kind.path, h["list"])
        app.router.add_post(kind.path, h["create"])
        app.router.add_get(f"{kind.path}/{{id}}", h["get"])
        app.router.add_delete(f"{kind.path}/{{id}}", h["delete"])
