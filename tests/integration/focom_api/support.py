"""FOCOM's northbound API in-process on a real NATS, beside an in-process focom: tokens, a client, schemas.

``Client.call`` sends one request and returns (status, headers, body); ``valid`` checks a body
against one of the API's JSON Schemas (or the ProblemDetails schema).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from jsonschema import Draft202012Validator, FormatChecker

from services.focom_api.api import Api
from services.focom_api.app import build_app, deliverer
from services.focom_api.notify import Translator
from services.focom_api.settings import FocomApiSettings
from services.focom_api.state import State
from shared.bus import Bus
from shared.catalog import load_catalog
from shared.dispatch import dispatch
from shared.httpapi.auth import TokenVerifier, generate_signing_key, issue_token
from shared.payloads import MessageFailed
from shared.subjects import FOCOM_API_FPR_STATUS_CONSUMER, FOCOM_API_PR_STATUS_CONSUMER

BASE = "/focom/v1"
ISSUER, AUDIENCE = "test-issuer", "o2ims"
PROBLEM_DETAILS = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "instance"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "problems": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["path", "rule", "message"],
                "additionalProperties": False,
                "properties": {"path": {"type": "string"}, "rule": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}


def valid(schema: Mapping[str, Any], body: Any) -> Any:
    errors = sorted(Draft202012Validator(schema, format_checker=FormatChecker()).iter_errors(body), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]
    return body


def problem(body: Any, status: int) -> Any:
    valid(PROBLEM_DETAILS, body)
    assert body["status"] == status
    return body


@dataclass
class Client:
    base: str
    keys: Path
    session: aiohttp.ClientSession
    api: Api
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, *roles: str) -> str:
        return issue_token(
            (self.keys / "key.pem").read_bytes(),
            issuer=ISSUER,
            audience=AUDIENCE,
            roles=roles,
            ttl=600.0,
            subject="tester",
        )

    async def call(
        self,
        method: str,
        path: str,
        *,
        role: str | None = "admin",
        token: str | None = None,
        body: Any = None,
        raw: bytes | None = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, Mapping[str, str], Any]:
        hdrs: dict[str, str] = {}
        if token is None and role is not None:
            token = self.tokens.setdefault(role, self.token(role))
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        async with self.session.request(
            method, self.base + BASE + path, data=data, headers=hdrs, params=params
        ) as resp:
            text = await resp.text()
            parsed = json.loads(text) if text and resp.content_type.endswith("json") else text
            return resp.status, resp.headers, parsed


def settings(tmp: Path, nats_url: str, inventory: Path) -> FocomApiSettings:
    keys = tmp / "keys"
    if not (keys / "key.pem").exists():
        generate_signing_key(keys / "key.pem", keys / "key.pub.pem")
    return FocomApiSettings(
        nats_url=nats_url,
        jwt_public_key_file=keys / "key.pub.pem",
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        inventory_path=inventory,
        port=0,
        http_port=-1,
        callback_allow=("127.0.0.1",),
    )


async def start(bus: Bus, s: FocomApiSettings, stop: asyncio.Event) -> tuple[Api, web.AppRunner, str]:
    """The API as ``app.setup`` composes it: routes, the status translators, delivery."""
    state = State(bus, s)
    await state.start()
    a = Api(s, bus, state, load_catalog(s.templates_dir))
    store, d = await deliverer(bus, s)
    t = Translator(bus)
    await bus.consumer(FOCOM_API_FPR_STATUS_CONSUMER, dispatch(t.on_fpr_status, ignore=(MessageFailed,))).start()
    await bus.consumer(FOCOM_API_PR_STATUS_CONSUMER, dispatch(t.on_pr_status, ignore=(MessageFailed,))).start()
    task = asyncio.create_task(d.run(stop, interval=0.5))
    runner = web.AppRunner(build_app(a, TokenVerifier(s.auth()), store, d), access_log=None, shutdown_timeout=1.0)

    async def finish(_app: web.Application) -> None:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        await state.stop()

    runner.app.on_cleanup.append(finish)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return a, runner, f"http://127.0.0.1:{runner.addresses[0][1]}"
