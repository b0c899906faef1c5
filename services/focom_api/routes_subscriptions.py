"""Subscription routes: ``GET|POST /subscriptions``, ``GET|DELETE /subscriptions/{id}``.

POST takes ``{callback, consumerSubscriptionId, filter}`` and answers 201 with ``Location`` and,
once only, the subscription's ``signingSecret`` (the HMAC key of ``X-Focom-Signature``); 400 for a
body that is not a JSON object, a missing or refused callback (not on the allow-list, or no HTTP
answer to the GET probe), a bad filter, or a callback already subscribed. DELETE answers 200 and
removes the delivery consumer with it.
"""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from services.focom_api import schemas
from services.focom_api.api import BASE, api
from services.focom_api.notify import KIND, filter_terms
from shared.httpapi.auth import READ, requires
from shared.httpapi.delivery import Deliverer
from shared.httpapi.problems import bad_request, json_body, not_found
from shared.httpapi.query import collection_response, item_response
from shared.httpapi.subscriptions import DuplicateCallback, Subscription, SubscriptionStore, admit
from shared.safe_json import short

SUBS = f"{BASE}/subscriptions"
SUBSCRIPTIONS_KEY = web.AppKey("focom_subscriptions", SubscriptionStore)
DELIVERER_KEY = web.AppKey("focom_deliverer", Deliverer)
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def as_json(sub: Subscription) -> dict[str, Any]:
    return {
        "subscriptionId": sub.id,
        "consumerSubscriptionId": sub.consumer_subscription_id,
        "filter": sub.filter,
        "callback": sub.callback,
    }


async def _find(request: web.Request) -> Subscription:
    sub_id = request.match_info["id"]
    sub = await request.app[SUBSCRIPTIONS_KEY].get(sub_id) if _UUID.fullmatch(sub_id) else None
    if sub is None or sub.kind != KIND:
        raise not_found(f"no subscription {short(sub_id)}")
    return sub


@requires(*READ)
async def list_subs(request: web.Request) -> web.Response:
    subs = [as_json(s) for s in await request.app[SUBSCRIPTIONS_KEY].all(KIND)]
    return collection_response(
        request, subs, schemas.SUBSCRIPTION, lambda o: str(o["subscriptionId"]), identity=("subscriptionId",)
    )


@requires(*READ)
async def get_sub(request: web.Request) -> web.Response:
    return item_response(request, as_json(await _find(request)), schemas.SUBSCRIPTION, identity=("subscriptionId",))


@requires("subscriber")
async def create_sub(request: web.Request) -> web.Response:
    a = api(request)
    body = await json_body(request)
    unknown = sorted(set(body) - {"callback", "consumerSubscriptionId", "filter"})
    if unknown:
        raise bad_request(f"{unknown[0]}: not a field of a subscription")
    store = request.app[SUBSCRIPTIONS_KEY]
    callback, consumer_id, text = await admit(
        body,
        store=store,
        kind=KIND,
        allow=a.settings.callback_allow,
        timeout=a.settings.callback_timeout,
        check_filter=filter_terms,
        filter_example="(eq,name,my-request)",
    )
    deliverer = request.app[DELIVERER_KEY]
    key = secrets.token_bytes(32).hex()
    sub = Subscription(
        id=str(uuid.uuid4()),
        kind=KIND,
        callback=callback,
        consumer_subscription_id=consumer_id,
        filter=text,
        created_at=datetime.now(UTC),
        start_seq=await deliverer.start_position(),
        extra={"signing_key": key, "seq": 0},
    )
    try:
        await store.create(sub)
    except DuplicateCallback:
        raise bad_request(f"callback: {callback} is already subscribed") from None
    await deliverer.ensure_consumer(sub)
    await deliverer.sync()
    location = f"{a.base_url(request)}{SUBS}/{sub.id}"
    # The signing key is shown this once; it is kept only for signing.
    return web.json_response({**as_json(sub), "signingSecret": key}, status=201, headers={"Location": location})


@requires("subscriber")
async def delete_sub(request: web.Request) -> web.Response:
    sub = await _find(request)
    await request.app[SUBSCRIPTIONS_KEY].delete(sub)
    deliverer = request.app[DELIVERER_KEY]
    await deliverer.remove_consumer(sub.id)
    await deliverer.sync()
    return web.json_response(as_json(sub), status=200)


def add_routes(app: web.Application) -> None:
    app.router.add_get(SUBS, list_subs)
    app.router.add_post(SUBS, create_sub)
    app.router.add_get(SUBS + "/{id}", get_sub)
    app.router.add_delete(SUBS + "/{id}", delete_sub)
