"""Composition root of the O2IMS API: settings, state reader, HTTP app (auth, errors, routes), listener.

The API is stateless: every replica reads the same KV records and streams and acts only by
publishing request messages (and writing its own buckets), so any number can run side by side.
"""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import structlog
from aiohttp import web

from shared.catalog import load_catalog
from shared.httpapi.auth import TokenVerifier, auth_middleware, server_ssl_context
from shared.httpapi.problems import problem_middleware
from shared.runtime import ServiceRuntime, run_service

from . import objects, routes_inventory
from .api import API_KEY, Api
from .profile import ProfileReader
from .settings import O2imsApiSettings
from .state import State

log = structlog.get_logger(__name__)


def build_app(a: Api, verifier: TokenVerifier) -> web.Application:
    app = web.Application(middlewares=[problem_middleware, auth_middleware(verifier)], client_max_size=1 << 20)
    app[API_KEY] = a
    routes_inventory.add_routes(app)
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
    runner = web.AppRunner(build_app(a, verifier), access_log=None)
    await runner.setup()
    tls = server_ssl_context(s.tls_cert_file, s.tls_key_file, s.tls_client_ca_file) if s.tls_cert_file and \
        s.tls_key_file else None  # fmt: skip
    site = web.TCPSite(runner, s.host, s.port, ssl_context=tls)
    await site.start()
    runtime.on_close(runner.cleanup)
    port = int(runner.addresses[0][1]) if runner.addresses else s.port
    host = "127.0.0.1" if s.host in ("0.0.0.0", "::", "") else s.host  # noqa: S104 - naming, not binding
    a.listen_url = f"{'https' if tls else 'http'}://{host}:{port}"
    runtime.health.add_check("api", lambda: (True, a.listen_url))
    log.info("o2ims_api_listening", url=a.listen_url, global_cloud_id=state.global_cloud_id)
    if s.smo_registration_url:
        runtime.background(_register(a, runtime.stop), "smo-registration")


def main() -> int:
    return run_service("o2ims_api", O2imsApiSettings, setup)
