"""Starting an SMO-facing API's listener: the aiohttp runner, TLS (and mTLS), and its URL in the health report.

Both APIs start the same way inside their ``setup``: the listener serves ``app`` on the configured
address (port 0 picks a free one), stops with the service (in-flight requests get the same grace as
in-flight messages), and its URL is reported by the health endpoint and returned for the log line.
"""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web

from shared.httpapi.auth import server_ssl_context
from shared.httpapi.settings import HttpApiSettings
from shared.runtime import ServiceRuntime

S = TypeVar("S", bound=HttpApiSettings)


async def serve(runtime: ServiceRuntime[S], app: web.Application) -> str:
    """Listen with ``app`` until the service stops; returns the listener's base URL."""
    s = runtime.settings
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=s.drain_timeout)
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
    return url
