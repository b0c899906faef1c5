"""How o2ctl reaches a running system: the NATS URL and kubeconfig from the state dir (or flags),
reading FPR/PR records from KV, and the FOCOM request built from flags or a request file."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import nats.errors
import nats.js.errors
import yaml
from pydantic import ValidationError

from o2ctl.state import RunState
from shared import natsauth
from shared.bus import Bus
from shared.connect import redact_url
from shared.kvkeys import bucket_keys
from shared.payloads import FocomRequest
from shared.subjects import BUCKET_FPR, BUCKET_PR

CONNECT_TIMEOUT = 3.0


class Unreachable(Exception):
    """Nothing to talk to: no running system found, or NATS not reachable."""


class UsageError(Exception):
    """The command line or a file given on it is invalid."""


@dataclass
class Target:
    nats_url: str
    kubeconfig: Path | None
    namespace: str
    #: ``nats.connect`` credentials of the ``o2ctl`` role (from the state dir's 0600 credentials file).
    auth: dict[str, Any] = field(default_factory=dict, repr=False)


def target(state: Path, nats_url: str | None = None, kubeconfig: str | None = None) -> Target:
    run = RunState.load(state)
    url = nats_url or os.environ.get("O2_NATS_URL") or (run.nats_url if run else "")
    if not url:
        raise Unreachable(f"no running system found in {state} (start one with `o2ctl up`, or pass --nats-url)")
    kc = kubeconfig or (run.kubeconfig if run else None)
    creds = state / natsauth.CREDENTIALS_FILE
    auth: dict[str, Any] = {}
    if os.environ.get("O2_NATS_USER") or os.environ.get("O2_NATS_CREDS_FILE"):
        # A system o2ctl did not start (e.g. the chart's): the operator's o2ctl identity from the environment.
        auth = natsauth.env_client_options(os.environ)
    elif run and url == run.nats_url and creds.exists():
        # Our credentials go only to the system this state dir describes, never to another URL.
        auth = natsauth.client_options("o2ctl", natsauth.load_passwords(creds))
    return Target(url, Path(kc) if kc else None, run.namespace if run else "default", auth)


async def _quiet(_exc: Exception) -> None:
    """The client's default error callback prints tracebacks; o2ctl reports failures itself."""


async def open_bus(t: Target) -> Bus:
    try:
        # Bounded from outside too: the client can otherwise keep retrying a refused server.
        nc = await asyncio.wait_for(
            nats.connect(
                t.nats_url,
                connect_timeout=CONNECT_TIMEOUT,
                allow_reconnect=False,
                max_reconnect_attempts=0,
                error_cb=_quiet,
                **t.auth,
            ),
            CONNECT_TIMEOUT + 1.0,
        )
    except (OSError, nats.errors.Error, TimeoutError) as exc:
        raise Unreachable(f"NATS at {redact_url(t.nats_url)} is not reachable ({type(exc).__name__})") from None
    return Bus(nc, source="o2ctl")


async def records(bus: Bus, bucket: str) -> dict[str, dict[str, Any]]:
    try:
        kv = await bus.kv(bucket)
    except nats.js.errors.BucketNotFoundError:
        return {}
    keys = await bucket_keys(kv)
    out = {}
    for key in keys:
        try:
            entry = await kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            continue
        if entry.value:
            out[key] = json.loads(entry.value)
    return out


async def fpr_records(bus: Bus) -> dict[str, dict[str, Any]]:
    return await records(bus, BUCKET_FPR)


async def pr_records(bus: Bus) -> dict[str, dict[str, Any]]:
    return await records(bus, BUCKET_PR)


def request_from_file(path: Path) -> FocomRequest:
    """A request file: a FocomProvisioningRequest CR (``metadata.name`` + ``spec``) or a bare request."""
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    if not isinstance(doc, dict):
        raise UsageError(f"{path}: expected a mapping")
    if "spec" in doc:
        body = {**doc["spec"], "name": (doc.get("metadata") or {}).get("name", doc["spec"].get("name"))}
    else:
        body = doc
    try:
        return FocomRequest.model_validate({k: v for k, v in body.items() if v is not None})
    except ValueError as exc:
        raise UsageError(f"{path}: invalid request: {exc}") from None


def request_from_flags(
    *, name: str | None, all_clusters: bool, clusters: str | None, operation: str, file: Path | None
) -> FocomRequest:
    try:
        return _request_from_flags(
            name=name, all_clusters=all_clusters, clusters=clusters, operation=operation, file=file
        )
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "request"
        raise UsageError(f"invalid request: {where}: {first['msg']}") from None


def _request_from_flags(
    *, name: str | None, all_clusters: bool, clusters: str | None, operation: str, file: Path | None
) -> FocomRequest:
    if sum(bool(x) for x in (all_clusters, clusters, file)) != 1:
        raise UsageError("give exactly one of --all, --clusters a,b or -f request.yaml")
    if file is not None:
        req = request_from_file(file)
        updates: dict[str, Any] = {}
        if operation != "create":
            updates["operation"] = operation
        if name:
            updates["name"] = name
        return FocomRequest.model_validate({**req.model_dump(), **updates}) if updates else req
    if all_clusters:
        return FocomRequest(name=name or "all-clusters", operation=operation, allClusters=True)
    names = tuple(c.strip() for c in (clusters or "").split(",") if c.strip())
    if not names:
        raise UsageError("--clusters needs at least one cluster name")
    return FocomRequest(name=name or "-".join(names)[:60].rstrip("-"), operation=operation, clusterNames=names)
