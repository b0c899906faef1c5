"""focom's Kubernetes face: FocomProvisioningRequest CRs in, FOCOM requests on the bus, status written back.

The watcher lists the CRs, then watches from the list's resourceVersion (re-listing on ``410 Gone``,
backing off on other errors). For each CR it keeps our finalizer on, publishes the spec as a FOCOM
request once per ``metadata.generation`` (message id from uid + generation, so replicas and restarts
publish duplicates the stream drops) and records ``status.observedGeneration``. A CR being deleted
becomes a delete request; the finalizer comes off once the FPR reports ``Deleted``. The status
writer consumes ``focom.status.*`` (FPR status, and ``message.failed`` for refused requests) and
server-side-applies the CR's ``/status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import ValidationError

from services.focom import crs
from services.focom.handlers import Focom
from services.focom.request import RequestError
from services.focom.settings import FocomSettings
from shared.bus import Bus, MessageContext
from shared.errors import PermanentError, ServiceError, TemporaryError, classify
from shared.kube import KubeClient, WatchExpired
from shared.messages import Envelope, derive_id
from shared.payloads import FocomRequest, FprStatus, MessageFailed
from shared.subjects import FOCOM_REQUESTS, last_token

log = structlog.get_logger(__name__)

_SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
_REQUEST_TYPE = str(FocomRequest.model_fields["type"].default)


@dataclass
class _Seen:
    namespace: str
    uid: str
    obj: dict[str, Any]
    #: When the status we last wrote was current (older reports are not written over it).
    written_at: datetime | None = None


def in_cluster_kubeconfig() -> dict[str, Any]:
    """A kubeconfig for the pod's service account (token and CA read by the client from their files)."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST", "kubernetes.default.svc")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    cluster = {"server": server, "certificate-authority": f"{_SA_DIR}/ca.crt"}
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "in-cluster",
        "clusters": [{"name": "in-cluster", "cluster": cluster}],
        "users": [{"name": "sa", "user": {"tokenFile": f"{_SA_DIR}/token"}}],
        "contexts": [{"name": "in-cluster", "context": {"cluster": "in-cluster", "user": "sa"}}],
    }  # fmt: skip


class KubeFace:
    def __init__(self, settings: FocomSettings, bus: Bus, focom: Focom, client: KubeClient) -> None:
        self.settings = settings
        self.bus = bus
        self.focom = focom
        self.client = client
        self._seen: dict[str, _Seen] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @classmethod
    async def create(cls, settings: FocomSettings, bus: Bus, focom: Focom) -> KubeFace:
        if settings.kubeconfig is not None:
            client = await KubeClient.from_kubeconfig(settings.kubeconfig, timeout=settings.kube_timeout)
        else:
            client = await KubeClient.from_kubeconfig_dict(in_cluster_kubeconfig(), timeout=settings.kube_timeout)
        return cls(settings, bus, focom, client)

    async def close(self) -> None:
        await self.client.close()

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    # ── watch ───────────────────────────────────────────────────────────────────────────

    async def run(self, stop: asyncio.Event) -> None:
        """List, reconcile, watch; forever (until ``stop``)."""
        delay = 0.5
        first = True
        while not stop.is_set():
            try:
                items, version = await self.client.list(crs.API_VERSION, crs.KIND, self.settings.cr_namespace)
                for obj in items:
                    await self._reconcile(obj, refresh=True)
                first, delay = False, 0.5
                await self._watch(version, stop)
            except WatchExpired:
                continue
            except ServiceError as exc:
                if first and exc.reason == "UnknownKind":
                    raise PermanentError(f"{crs.KIND} is not served: install deploy/crds first ({exc})") from None
                log.warning("cr_watch_retry", reason=exc.reason, error=exc.message, retry_in=delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)  # backoff, or stop
                delay = min(delay * 2, 30.0)

    async def _watch(self, version: str, stop: asyncio.Event) -> None:
        stream = self.client.watch(crs.API_VERSION, crs.KIND, self.settings.cr_namespace, resource_version=version,
                                   timeout_seconds=300)  # fmt: skip
        async for event in stream:
            if stop.is_set():
                return
            if event.type == "DELETED":
                self._forget(event.object)
            elif event.type in ("ADDED", "MODIFIED"):
                await self._reconcile(event.object, refresh=False)

    def _forget(self, obj: dict[str, Any]) -> None:
        seen = self._seen.get(crs.name_of(obj))
        if seen is not None and seen.uid == crs.meta(obj).get("uid"):
            del self._seen[crs.name_of(obj)]

    async def _reconcile(self, obj: dict[str, Any], *, refresh: bool) -> None:
        """Bring one CR in line; errors for one CR are logged and never stop the watch."""
        name = crs.name_of(obj)
        try:
            async with self._lock(name):
                await self._reconcile_one(obj, refresh)
        except ServiceError as exc:
            log.warning("cr_reconcile_failed", cr=name, reason=exc.reason, error=exc.message)
        except Exception as exc:
            err = classify(exc)
            log.error("cr_reconcile_failed", cr=name, reason=err.reason, error=err.message, exc_info=exc)

    async def _reconcile_one(self, obj: dict[str, Any], refresh: bool) -> None:
        m = crs.meta(obj)
        name, namespace, uid = crs.name_of(obj), str(m.get("namespace", "")), str(m.get("uid", ""))
        seen = self._seen.get(name)
        if seen is not None and seen.uid != uid and seen.namespace != namespace:
            await self._refuse(obj, "NameInUse", f"FOCOM request name {name!r} is already used by the CR in "
                               f"namespace {seen.namespace!r}; FPR names are global", "$.metadata.name")  # fmt: skip
            return
        if seen is None or seen.uid != uid:
            seen = self._seen[name] = _Seen(namespace=namespace, uid=uid, obj=obj)
        seen.obj = obj
        if crs.deleting(obj):
            await self._deleting(obj, uid)
            return
        patch = crs.finalizer_patch(obj, present=True)
        if patch is not None:
            seen.obj = await self.client.patch(crs.API_VERSION, crs.KIND, name, namespace, patch)
        if not crs.observed(obj):
            await self._submit(seen.obj, uid)
        elif refresh:
            status = await self.focom.current_status(name)
            if status is not None:
                await self._write(seen, crs.status_body(seen.obj, status), status.updated_at)

    async def _submit(self, obj: dict[str, Any], uid: str) -> None:
        generation = crs.meta(obj).get("generation", 0)
        try:
            request = crs.request_from_cr(obj)
        except RequestError as exc:
            await self._refuse(obj, exc.reason, exc.message, exc.path)
        else:
            env = Envelope.wrap(request, source=self.bus.source, correlation_id=request.name,
                                id=derive_id("focom.cr", uid, generation))  # fmt: skip
            await self.bus.publish(FOCOM_REQUESTS, env)
            log.info("cr_submitted", cr=request.name, generation=generation, operation=request.operation)
        await self.client.apply_status(crs.observed_body(obj), field_manager=crs.WATCH_MANAGER)

    async def _deleting(self, obj: dict[str, Any], uid: str) -> None:
        if crs.finalizer_patch(obj, present=False) is None:
            return  # not ours to hold
        if crs.phase_of(obj) == "Deleted":
            await self._release(obj)
            return
        try:
            request = crs.delete_request(crs.name_of(obj))
        except ValidationError:
            # A name no FOCOM request can have: it was refused, nothing was ever created for it.
            await self._release(obj)
            return
        env = Envelope.wrap(request, source=self.bus.source, correlation_id=request.name,
                            id=derive_id("focom.cr.delete", uid))  # fmt: skip
        await self.bus.publish(FOCOM_REQUESTS, env)

    async def _release(self, obj: dict[str, Any]) -> None:
        patch = crs.finalizer_patch(obj, present=False)
        if patch is None:
            return
        with contextlib.suppress(PermanentError):  # gone already (or changed: the next event retries)
            await self.client.patch(crs.API_VERSION, crs.KIND, crs.name_of(obj), crs.meta(obj).get("namespace"),
                                    patch)  # fmt: skip
        log.info("cr_released", cr=crs.name_of(obj))

    async def _refuse(self, obj: dict[str, Any], reason: str, message: str, path: str | None) -> None:
        seen = self._seen.get(crs.name_of(obj))
        body = crs.refusal_body(obj, reason=reason, message=message, path=path, at=datetime.now(UTC))
        if seen is not None and seen.uid == crs.meta(obj).get("uid"):
            await self._write(seen, body, datetime.now(UTC))
        else:
            await self.client.apply_status(body, field_manager=crs.STATUS_MANAGER)

    # ── status writer (a bus consumer) ──────────────────────────────────────────────────

    async def on_status(self, env: Envelope, ctx: MessageContext) -> None:
        payload = env.payload
        if isinstance(payload, FprStatus):
            name = payload.name
        elif isinstance(payload, MessageFailed) and payload.message_type == _REQUEST_TYPE:
            name = env.correlation_id or last_token(ctx.subject)
        else:
            return
        seen = self._seen.get(name)
        if seen is None:
            return  # not a CR we know (submitted on the bus, or its watch event is yet to come)
        async with self._lock(name):
            if isinstance(payload, FprStatus):
                await self._write(seen, crs.status_body(seen.obj, payload), payload.updated_at)
                if payload.phase == "Deleted" and crs.deleting(seen.obj):
                    await self._release(seen.obj)
            else:
                body = crs.refusal_body(seen.obj, reason=payload.reason, message=payload.error, path=payload.path,
                                        at=env.occurred_at)  # fmt: skip
                await self._write(seen, body, env.occurred_at)

    async def _write(self, seen: _Seen, body: dict[str, Any], at: datetime) -> None:
        if seen.written_at is not None and at < seen.written_at:
            return  # an older report delivered late
        try:
            seen.obj = await self.client.apply_status(body, field_manager=crs.STATUS_MANAGER)
        except TemporaryError:
            raise
        except PermanentError as exc:
            if exc.reason not in ("NotFound", "Gone"):
                raise
            return
        seen.written_at = at
