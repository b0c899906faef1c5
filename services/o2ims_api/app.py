"""Composition root of the O2IMS API: settings, state reader, HTTP app (auth, errors, routes), listener.

The API is stateless: every replica reads the same KV records and streams and acts only by
publishing request messages (and writing its own buckets), so any number can run side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import aiohttp
import structlog
from aiohttp import web

from services.o2ims_api import objects, routes_inventory, routes_monitoring, routes_provisioning, routes_subscriptions
from services.o2ims_api.api import API_KEY, Api
from services.o2ims_api.notifier import Notifier
from services.o2ims_api.profile import ProfileReader
from services.o2ims_api.routes_monitoring import NOTIFIER_KEY
from services.o2ims_api.routes_subscriptions import (
    ALARM_KIND,
    DELIVERERS_KEY,
    INVENTORY_KIND,
    SUBSCRIPTIONS_KEY,
    alarm_renderer,
    render_inventory,
)
from services.o2ims_api.settings import O2imsApiSettings
from services.o2ims_api.state import State
from shared.catalog import load_catalog
from shared.httpapi.auth import TokenVerifier, auth_middleware
from shared.httpapi.delivery import Deliverer, Render
from shared.httpapi.problems import problem_middleware
from shared.httpapi.serve import serve
from shared.httpapi.subscriptions import Subscription, SubscriptionStore
from shared.payloads import MessageFailed
from shared.runtime import ServiceRuntime, run_service
from shared.subjects import (
    ALL_O2API_ALARMS,
    ALL_O2API_INVENTORY,
    BUCKET_O2IMS_API_SUBSCRIPTIONS,
    O2API_DELIVERY_ACK_WAIT,
    O2IMS_API,
    O2IMS_API_HOST_EVENTS_CONSUMER,
    o2api_delivery_durable,
)

log = structlog.get_logger(__name__)


@dataclass
class Parts:
    """The notification machinery: subscriptions, one deliverer per kind, and the change detector."""

    subscriptions: SubscriptionStore
    deliverers: dict[str, Deliverer]
    notifier: Notifier


async def assemble(a: Api) -> Parts:
    s = a.settings
    store = SubscriptionStore(await a.bus.kv(BUCKET_O2IMS_API_SUBSCRIPTIONS))
    notifier = await Notifier.create(a, store, s.scan_interval)

    async def health(_sub: Subscription) -> None:
        notifier.poke()  # a callback died or recovered: its alarm follows on the next round

    def deliverer(kind: str, subject: str, render: Render) -> Deliverer:
        return Deliverer(
            a.bus,
            store,
            kind=kind,
            stream=O2IMS_API,
            subjects=(subject,),
            render=render,
            durable=o2api_delivery_durable,
            timeout=s.callback_timeout,
            dead_after=s.callback_dead_after,
            ack_wait=O2API_DELIVERY_ACK_WAIT,
            on_health=health,
        )

    deliverers = {
        INVENTORY_KIND.name: deliverer(INVENTORY_KIND.name, ALL_O2API_INVENTORY, render_inventory),
        ALARM_KIND.name: deliverer(ALARM_KIND.name, ALL_O2API_ALARMS, alarm_renderer(lambda: a.state.global_cloud_id)),
    }

    a.state.on_change = notifier.poke
    return Parts(store, deliverers, notifier)


def build_app(a: Api, verifier: TokenVerifier, parts: Parts) -> web.Application:
    app = web.Application(middlewares=[problem_middleware, auth_middleware(verifier)], client_max_size=1 << 20)
    app[API_KEY] = a
    app[SUBSCRIPTIONS_KEY] = parts.subscriptions
    app[DELIVERERS_KEY] = parts.deliverers
    app[NOTIFIER_KEY] = parts.notifier
    routes_inventory.add_routes(app)
    routes_provisioning.add_routes(app)
    routes_subscriptions.add_routes(app)
    routes_monitoring.add_routes(app)
    return app


async def _register(a: Api, stop: asyncio.Event) -> None:
    """Tell the SMO where this O-Cloud is (retried with backoff until it answers 2xx or we stop)."""
    url = a.settings.smo_registration_url
    assert url is not None
    delay = 2.0
    while not stop.is_set():
        body = objects.o_cloud(await a.snapshot(), a.base_url())
        try:
            timeout = aiohttp.ClientTimeout(total=a.settings.callback_timeout)
            async with aiohttp.ClientSession(timeout=timeout) as s, s.post(url, json=body) as resp:
                if 200 <= resp.status < 300:
                    log.info("smo_registered", status=resp.status)
                    return
                log.warning("smo_registration_refused", status=resp.status, retry_in=delay)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("smo_registration_failed", error=type(exc).__name__, retry_in=delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)  # backoff between attempts, not a sync
        delay = min(delay * 2, 300.0)


async def setup(runtime: ServiceRuntime[O2imsApiSettings]) -> None:
    s, bus = runtime.settings, runtime.bus
    verifier = TokenVerifier(s.auth())
    catalog = await asyncio.to_thread(load_catalog, s.templates_dir)
    state = State(bus, s)
    await state.start()
    runtime.on_close(state.stop)
    profiles = ProfileReader(s.kubeconfig, s.kube_timeout)
    runtime.on_close(profiles.close)
    a = Api(s, bus, state, catalog, profiles)
    parts = await assemble(a)
    # hostprep's events stream also carries the bus's reports of its refused jobs: not host trouble.
    runtime.consume(O2IMS_API_HOST_EVENTS_CONSUMER, parts.notifier.on_host_event, ignore=(MessageFailed,))
    runtime.on_close(parts.notifier.close)
    runtime.background(parts.notifier.run(runtime.stop), "notifier")
    for kind, d in parts.deliverers.items():
        runtime.background(d.run(runtime.stop), f"deliver-{kind}")
    a.listen_url = await serve(runtime, build_app(a, verifier, parts))
    log.info("o2ims_api_listening", url=a.listen_url, global_cloud_id=state.global_cloud_id)
    if s.smo_registration_url:
        runtime.background(_register(a, runtime.stop), "smo-registration")


def main() -> int:
    return run_service("o2ims_api", O2imsApiSettings, setup)
