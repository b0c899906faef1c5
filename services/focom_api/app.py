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
from shared.httpapi.auth import TokenVerifier, auth_middleware, server_ssl_context
from shared.httpapi.delivery import Deliverer
from shared.httpapi.problems import problem_middleware
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
    a = Api(s, bus, State(bus, s), catalog)
    store, d = await deliverer(bus, s)
    translator = Translator(bus)
    # focom's own refusals travel on focom.status too: they are not phase changes.
    runtime.consume(FOCOM_API_FPR_STATUS_CONSUMER, translator.on_fpr_status, ignore=(MessageFailed,))
    runtime.consume(FOCOM_API_PR_STATUS_CONSUMER, translator.on_pr_status, ignore=(MessageFailed,))
    runtime.background(d.run(runtime.stop), "deliver")
    runner = web.AppRunner(build_app(a, verifier, store, d), access_log=None, shutdown_timeout=s.drain_timeout)
    await runner.setup()
    tls = (
        server_ssl_context(s.tls_cert_file, s.tls_key_file, s.tls_client_ca_file)
        if s.tls_cert_file and s.tls_key_file
        else None
    )
    site = web.TCPSite(runner, s.host, s.port, ssl_context=tls, reuse_port=s.reuse_port or None)
    await site.start()
    runtime.on_close(runner.cleanup)
    port = int(runner.addresses[0][1]) if runner.addresses else s.port
    host = "127.0.0.1" if s.host in ("0.0.0.0", "::", "") else s.host  # noqa: S104 - naming, not binding
    url = f"{'https' if tls else 'http'}://{host}:{port}"
    runtime.health.add_check("api", lambda: (True, url))
    log.info("focom_api_listening", url=url)


def main() -> int:
    return run_service("focom_api", FocomApiSettings, setup)
