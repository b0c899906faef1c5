"""Connecting to NATS and declaring the JetStream topology (streams, KV buckets) idempotently.

The first connection is retried with backoff until ``nats_startup_timeout`` (a service started
before its broker waits for it instead of crash-looping); after that the client reconnects on
its own. Declaring streams and buckets is safe to repeat from every replica at every start.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import nats
import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js import api as js_api

from shared.errors import TemporaryError
from shared.natsroles import inbox_prefix
from shared.settings import ServiceSettings
from shared.subjects import ALL_BUCKETS, ALL_STREAMS, BUCKET_TTLS, StreamSpec

log = structlog.get_logger(__name__)


def _tls(settings: ServiceSettings) -> ssl.SSLContext | None:
    if not (settings.nats_tls_ca or settings.nats_tls_cert):
        return None
    ctx = ssl.create_default_context(cafile=str(settings.nats_tls_ca) if settings.nats_tls_ca else None)
    if settings.nats_tls_cert and settings.nats_tls_key:
        ctx.load_cert_chain(str(settings.nats_tls_cert), str(settings.nats_tls_key))
    return ctx


def redact_url(urls: str) -> str:
    """The NATS URL(s) without any credentials embedded in them (``nats://user:pw@host`` → ``nats://***@host``)."""
    out = []
    for raw in urls.split(","):
        try:
            parts = urlsplit(raw.strip())
        except ValueError:
            out.append("<unparsable url>")
            continue
        if "@" in parts.netloc:
            parts = parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1])
        out.append(urlunsplit(parts))
    return ",".join(out)


def connect_options(settings: ServiceSettings, *, name: str) -> dict[str, Any]:
    """Keyword arguments for ``nats.connect`` (credentials unwrapped here and nowhere else).

    Replies come to ``_INBOX.<name>``: a service's permissions allow subscribing only there.
    """
    opts: dict[str, Any] = {
        "servers": [s.strip() for s in settings.nats_url.split(",") if s.strip()],
        "name": name,
        "inbox_prefix": inbox_prefix(name),
        "connect_timeout": settings.nats_connect_timeout,
        "allow_reconnect": True,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 1.0,
    }
    if settings.nats_user:
        opts["user"] = settings.nats_user
    if settings.nats_password:
        opts["password"] = settings.nats_password.get_secret_value()
    if settings.nats_token:
        opts["token"] = settings.nats_token.get_secret_value()
    if settings.nats_creds_file:
        opts["user_credentials"] = str(settings.nats_creds_file)
    tls = _tls(settings)
    if tls is not None:
        opts["tls"] = tls
    return opts


async def connect(settings: ServiceSettings, *, name: str) -> NatsClient:
    """Connect, retrying with capped exponential backoff until the startup timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.nats_startup_timeout if settings.nats_startup_timeout else None
    delay = 0.2
    opts = connect_options(settings, name=name)

    async def _on_error(exc: Exception) -> None:
        log.warning("nats_error", error=f"{type(exc).__name__}: {exc}")

    async def _on_disconnect() -> None:
        log.warning("nats_disconnected")

    async def _on_reconnect() -> None:
        log.info("nats_reconnected")

    while True:
        try:
            # The client itself would retry an unreachable server forever when reconnects are
            # unlimited, so bound each attempt and do the backoff here, visibly.
            return await asyncio.wait_for(
                nats.connect(**opts, error_cb=_on_error, disconnected_cb=_on_disconnect, reconnected_cb=_on_reconnect),
                settings.nats_connect_timeout + 1.0,
            )
        except (OSError, nats.errors.Error, TimeoutError) as exc:
            url = redact_url(settings.nats_url)
            log.warning("nats_connect_retry", url=url, error=type(exc).__name__, retry_in=delay)
            if deadline is not None and loop.time() + delay > deadline:
                raise TemporaryError(
                    f"NATS at {url} not reachable after {settings.nats_startup_timeout:.0f}s: {type(exc).__name__}",
                    reason="BusUnavailable",
                ) from None
            await asyncio.sleep(delay)  # backoff between connection attempts
            delay = min(delay * 2, 5.0)


def stream_config(spec: StreamSpec, *, replicas: int = 1) -> js_api.StreamConfig:
    return js_api.StreamConfig(
        name=spec.name,
        subjects=list(spec.subjects),
        retention=js_api.RetentionPolicy.LIMITS,
        storage=js_api.StorageType.FILE,
        duplicate_window=spec.duplicate_window,
        max_age=spec.max_age,
        num_replicas=replicas,
    )


async def ensure_streams(
    js: JetStreamContext, streams: Iterable[StreamSpec] = ALL_STREAMS, *, replicas: int = 1
) -> None:
    for spec in streams:
        config = stream_config(spec, replicas=replicas)
        try:
            info = await js.stream_info(spec.name)
        except nats.js.errors.NotFoundError:
            try:
                await js.add_stream(config)
                continue
            except nats.js.errors.BadRequestError:
                # Another replica created it between our lookup and our create.
                info = await js.stream_info(spec.name)
        if sorted(info.config.subjects or []) != sorted(spec.subjects):
            await js.update_stream(config)


async def ensure_buckets(
    js: JetStreamContext, buckets: Iterable[str] = ALL_BUCKETS, *, replicas: int = 1, history: int = 5
) -> None:
    for bucket in buckets:
        try:
            await js.key_value(bucket)
        except (nats.js.errors.BucketNotFoundError, nats.js.errors.NotFoundError):
            try:
                await js.create_key_value(
                    bucket=bucket, history=history, replicas=replicas, ttl=BUCKET_TTLS.get(bucket)
                )
            except nats.js.errors.BadRequestError:
                await js.key_value(bucket)  # created concurrently by another replica
