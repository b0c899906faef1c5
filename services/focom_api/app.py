"""Composition root of FOCOM's northbound API: settings, state reader, notifications, HTTP app, listener.

The API is stateless: every replica reads the same KV records and streams and acts only by
publishing FOCOM request messages (and writing its own buckets), so any number can run side by side.
"""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web

from services.focom_api import routes_inventory, routes_requests, routes_subscriptions
from services.focom_api.api import API_KEY, Api
from services.focom_api.notify import KIND, Translator, numberer, render, sign
from services.focom_api.routes_subscriptions import DELIVERER_KEY, SUBSCRIPTIONS_KEY
from services.focom_api.settings import FocomApiSettings
from services.focom_api.state import State
from shared.bus import Bus
from shared.catalog import load_catalog
from shared.httpapi.auth import TokenVerifier, auth_middleware
from shared.httpapi.delivery import Deliverer
from shared.httpapi.problems import problem_middleware
from shared.httpapi.serve import serve
from shared.httpapi.subscriptions import SubscriptionStore
from shared.payloads import MessageFailed
from shared.runtime import ServiceRuntime, run_service
from shared.subjects import (
    ALL_FOCOMAPI_EVENTS,
    BUCKET_FOCOM_API_SUBSCRIPTIONS,
    FOCOM_API,
    FOCOM_API_FPR_STATUS_CONSUMER,
    FOCOM_API_PR_STATUS_CONSUMER,
    FOCOMAPI_DELIVERY_ACK_WAIT,
    focomapi_delivery_durable,
)

log = structlog.get_logger(__name__)


async def deliverer(bus: Bus, settings: FocomApiSettings) -> tuple[SubscriptionStore, Deliverer]:
    store = SubscriptionStore(await bus.kv(BUCKET_FOCOM_API_SUBSCRIPTIONS))
    d = Deliverer(
        bus,
        store,
        kind=KIND,
        stream=FOCOM_API,
        subjects=(ALL_FOCOMAPI_EVENTS,),
        render=render,
        durable=focomapi_delivery_durable,
        timeout=settings.callback_timeout,
        dead_after=settings.callback_dead_after,
        ack_wait=FOCOMAPI_DELIVERY_ACK_WAIT,
        sign=sign,
        stamp=numberer(store),
    )
    return store, d


def build_app(a: Api, verifier: TokenVerifier, store: SubscriptionStore, d: Deliverer) -> web.Application:
    app = web.Application(middlewares=[problem_middleware, auth_middleware(verifier)], client_max_size=1 << 20)
    app[API_KEY] = a
    app[SUBSCRIPTIONS_KEY] = store
    app[DELIVERER_KEY] = d
    routes_requests.add_routes(app)
    routes_inventory.add_routes(app)
    routes_subscriptions.add_routes(app)
    return app


async def setup(runtime: ServiceRuntime[FocomApiSettings]) -> None:
    s, bus = runtime.settings, runtime.bus
    verifier = TokenVerifier(s.auth())
    catalog = await asyncio.to_thread(load_catalog, s.templates_dir)
    state = State(bus, s)
    await state.start()
    runtime.on_close(state.stop)
    a = Api(s, bus, state, catalog)
    store, d = await deliverer(bus, s)
    translator = Translator(bus)
    # focom's own refusals travel on focom.status too: they are not phase changes.
    runtime.consume(FOCOM_API_FPR_STATUS_CONSUMER, translator.on_fpr_status, ignore=(MessageFailed,))
    runtime.consume(FOCOM_API_PR_STATUS_CONSUMER, translator.on_pr_status, ignore=(MessageFailed,))
    runtime.background(d.run(runtime.stop), "deliver")
    url = await serve(runtime, build_app(a, verifier, store, d))
    log.info("focom_api_listening", url=url)


def main() -> int:
    return run_service("focom_api", FocomApiSettings, setup)
