"""The O2IMS API in-process on a real NATS: settings, tokens of every role, an inventory, a client.

``Harness.call`` sends one request and returns (status, headers, body); every JSON body can be
checked against the API's JSON Schemas with ``valid``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from jsonschema import Draft202012Validator, FormatChecker

from services.o2ims_api.api import Api
from services.o2ims_api.app import assemble, build_app
from services.o2ims_api.profile import ProfileReader
from services.o2ims_api.settings import O2imsApiSettings
from services.o2ims_api.state import State
from shared.bus import Bus
from shared.catalog import load_catalog
from shared.dispatch import dispatch
from shared.httpapi.auth import TokenVerifier, generate_signing_key, issue_token
from shared.payloads import MessageFailed
from shared.subjects import O2IMS_API_HOST_EVENTS_CONSUMER

I = "/o2ims-infrastructureInventory/v1"  # noqa: E741 - the prefix names of the O2IMS documents
M = "/o2ims-infrastructureMonitoring/v1"
P = "/o2ims-infrastructureProvisioning/v1"
ISSUER, AUDIENCE = "test-issuer", "o2ims"


def inventory(hosts: int = 6) -> dict[str, Any]:
    return {
        "namespace": "default",
        "k8s_version": "v1.31.4",
        "hosts": [
            {
                "host_id": f"h{i:02d}",
                "host_name": f"node-{i:02d}",
                "host_ip": f"10.10.0.{10 + i}",
                "ssh_key_file": "/etc/focom-o2ims/ssh/id_ed25519",
                "labels": {"o2ims.oran.org/resource-pool": "edge"} if i > 4 else {"rack": f"r{i % 2}"},
            }
            for i in range(1, hosts + 1)
        ],
        "clusters": [],
    }


def valid(schema: Mapping[str, Any], body: Any) -> Any:
    errors = sorted(Draft202012Validator(schema, format_checker=FormatChecker()).iter_errors(body), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]
    return body


@dataclass
class Harness:
    base: str
    keys: Path
    session: aiohttp.ClientSession
    api: Api
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, *roles: str, issuer: str = ISSUER, audience: str = AUDIENCE, ttl: float = 600.0) -> str:
        return issue_token((self.keys / "key.pem").read_bytes(), issuer=issuer, audience=audience, roles=roles, ttl=ttl)

    async def call(
        self,
        method: str,
        path: str,
        *,
        role: str | None = "admin",
        token: str | None = None,
        body: Any = None,
        raw: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, Mapping[str, str], Any]:
        hdrs = dict(headers or {})
        if token is None and role is not None:
            token = self.tokens.setdefault(role, self.token(role))
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            hdrs.setdefault("Content-Type", "application/json")
        url = self.base + path
        async with self.session.request(method, url, data=data, headers=hdrs, params=params) as resp:
            text = await resp.text()
            parsed = json.loads(text) if text and resp.content_type.endswith("json") else text
            return resp.status, resp.headers, parsed


def settings(tmp: Path, nats_url: str, **extra: Any) -> O2imsApiSettings:
    keys = tmp / "keys"
    if not (keys / "key.pem").exists():
        generate_signing_key(keys / "key.pem", keys / "key.pub.pem")
    inv = tmp / "input.json"
    if not inv.exists():
        inv.write_text(json.dumps(inventory()))
    fields: dict[str, Any] = {
        "nats_url": nats_url,
        "jwt_public_key_file": keys / "key.pub.pem",
        "jwt_issuer": ISSUER,
        "jwt_audience": AUDIENCE,
        "inventory_path": inv,
        "port": 0,
        "http_port": -1,
        "scan_interval": 0.5,
        "callback_allow": ("127.0.0.1",),
        "global_cloud_id": "0e2a1a52-5f07-4a39-8d2e-3a0a3c7d9b11",
    }
    return O2imsApiSettings(**{**fields, **extra})


async def start(tmp: Path, bus: Bus, s: O2imsApiSettings, stop: asyncio.Event) -> tuple[Api, web.AppRunner, str]:
    """The API as ``app.setup`` composes it: routes, the change detector, delivery, hostprep events."""
    state = State(bus, s)
    await state.start()
    a = Api(s, bus, state, load_catalog(s.templates_dir), ProfileReader(s.kubeconfig, s.kube_timeout))
    parts = await assemble(a)
    host_events = dispatch(parts.notifier.on_host_event, ignore=(MessageFailed,))
    await bus.consumer(O2IMS_API_HOST_EVENTS_CONSUMER, host_events).start()
    tasks = [
        asyncio.create_task(parts.notifier.run(stop)),
        *(asyncio.create_task(d.run(stop)) for d in parts.deliverers.values()),
    ]
    runner = web.AppRunner(build_app(a, TokenVerifier(s.auth()), parts), access_log=None, shutdown_timeout=1.0)

    async def finish(_app: web.Application) -> None:
        await _finish(stop, tasks)
        await parts.notifier.close()
        await state.stop()

    runner.app.on_cleanup.append(finish)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    a.listen_url = f"http://127.0.0.1:{port}"
    return a, runner, a.listen_url


async def _finish(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)


def now() -> datetime:
    return datetime.now(UTC)
