"""focom's Kubernetes face: FocomProvisioningRequest CRs in, FOCOM requests on the bus, status written back.

The watcher lists the CRs, then watches from the list's resourceVersion (re-listing on ``410 Gone``,
backing off on other errors). FPR names are global and CRs namespaced: each name is bound durably to
the first CR that claims it (``owners.py``); a CR of the same name in another namespace is refused
(``NameInUse``, with ``observedGeneration`` recorded) before, during and after any restart, and never
publishes anything. For each CR it owns it keeps our finalizer on, publishes the spec as a FOCOM
request once per ``metadata.generation`` (message id from uid + generation, so replicas and restarts
publish duplicates the stream drops) and records ``status.observedGeneration``. A CR being deleted
becomes a delete request; the finalizer comes off once the FPR reports ``Deleted``. The status
writer consumes ``focom.status.*`` (FPR status, and ``message.failed`` for refused requests) and
server-side-applies the CR's ``/status``.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import ValidationError

from services.focom import crs
from services.focom.handlers import Focom
from services.focom.owners import Claim, CrOwner, CrOwners
from services.focom.request import RequestError
from services.focom.settings import FocomSettings
from shared.bus import Bus, MessageContext
from shared.errors import PermanentError, ServiceError, TemporaryError, classify
from shared.kube import KubeClient, WatchExpired
from shared.kube_config import connect
from shared.messages import Envelope, derive_id
from shared.objects import meta, name_of
from shared.payloads import FocomDecision, FocomRequest, FprStatus, MessageFailed
from shared.store import RecordStore
from shared.subjects import FOCOM_REQUESTS, last_token

log = structlog.get_logger(__name__)

_REQUEST_TYPE = str(FocomRequest.model_fields["type"].default)


@dataclass
class _Seen:
    namespace: str
    uid: str
    obj: dict[str, Any]
    #: When the status we last wrote was current (older reports are not written over it).
    written_at: datetime | None = None


class KubeFace:
    def __init__(self, settings: FocomSettings, bus: Bus, focom: Focom, client: KubeClient) -> None:
        self.settings = settings
        self.bus = bus
        self.focom = focom
        self.client = client
        #: The CRs that own their FPR name, by name (never a refused CR).
        self._seen: dict[str, _Seen] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.owners = CrOwners(RecordStore(focom.records.kv, CrOwner), focom.records, self._alive)

    @classmethod
    async def create(cls, settings: FocomSettings, bus: Bus, focom: Focom) -> KubeFace:
        client = await connect(settings.kubeconfig, setting="O2_FOCOM_KUBECONFIG", timeout=settings.kube_timeout)
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
        stream = self.client.watch(
            crs.API_VERSION, crs.KIND, self.settings.cr_namespace, resource_version=version, timeout_seconds=300
        )
        async for event in stream:
            if stop.is_set():
                return
            if event.type == "DELETED":
                self._forget(event.object)
            elif event.type in ("ADDED", "MODIFIED"):
                await self._reconcile(event.object, refresh=False)

    def _forget(self, obj: dict[str, Any]) -> None:
        seen = self._seen.get(name_of(obj))
        if seen is not None and seen.uid == meta(obj).get("uid"):
            del self._seen[name_of(obj)]

    async def _reconcile(self, obj: dict[str, Any], *, refresh: bool) -> None:
        """Bring one CR in line; errors for one CR are logged and never stop the watch."""
        name = name_of(obj)
        try:
            async with self._lock(name):
                await self._reconcile_one(obj, refresh)
        except ServiceError as exc:
            log.warning("cr_reconcile_failed", cr=name, reason=exc.reason, error=exc.message)
        except Exception as exc:
            err = classify(exc)
            log.error("cr_reconcile_failed", cr=name, reason=err.reason, error=err.message, exc_info=exc)

    async def _alive(self, namespace: str, name: str, uid: str) -> bool:
        obj = await self.client.get(crs.API_VERSION, crs.KIND, name, namespace)
        return obj is not None and meta(obj).get("uid") == uid

    async def _reconcile_one(self, obj: dict[str, Any], refresh: bool) -> None:
        m = meta(obj)
        name, namespace, uid = name_of(obj), str(m.get("namespace", "")), str(m.get("uid", ""))
        claim = await self.owners.claim(name, namespace, uid)
        if not claim.ours:
            await self._not_owner(obj, claim)
            return
        seen = self._seen.get(name)
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
        decision = crs.decision_of(obj)
        if decision is not None:
            await self._decide(name, uid, decision)
        if crs.observed(obj) and refresh:
            status = await self.focom.current_status(name)
            if status is not None:
                await self._write(seen, crs.status_body(seen.obj, status), status.updated_at)

    async def _submit(self, obj: dict[str, Any], uid: str) -> None:
        generation = meta(obj).get("generation", 0)
        try:
            request = crs.request_from_cr(obj)
        except RequestError as exc:
            await self._refuse(obj, exc.reason, exc.message, exc.path)
        else:
            env = Envelope.wrap(
                request, source=self.bus.source, correlation_id=request.name, id=derive_id("focom.cr", uid, generation)
            )
            await self.bus.publish(FOCOM_REQUESTS, env)
            log.info("cr_submitted", cr=request.name, generation=generation, operation=request.operation)
        await self.client.apply_status(crs.observed_body(obj), field_manager=crs.WATCH_MANAGER)

    async def _decide(self, name: str, uid: str, decision: str) -> None:
        """The CR's decision annotation, once per waiting request and value.

        Only a request in ``PendingApproval`` is decided here: after a failed approval (hosts taken meanwhile)
        the annotation is not retried on every status write; approve again through the API or ``o2ctl``.
        """
        status = await self.focom.current_status(name)
        if status is None or status.phase != "PendingApproval":
            return
        payload = FocomDecision(
            name=name,
            decision="approve" if decision == "approve" else "reject",
            by="FocomProvisioningRequest annotation",
        )
        msg_id = derive_id("focom.cr.decision", uid, decision, status.updated_at.isoformat())
        env = Envelope.wrap(payload, source=self.bus.source, correlation_id=name, id=msg_id)
        await self.bus.publish(FOCOM_REQUESTS, env)
        log.info("cr_decision_submitted", cr=name, decision=decision)

    async def _not_owner(self, obj: dict[str, Any], claim: Claim) -> None:
        """A CR whose name another CR (or a bus request) owns: refused once per generation, never acted on."""
        name = name_of(obj)
        if crs.deleting(obj):
            # Its deletion must not delete the owner's clusters: only let it go (if we ever held it).
            await self._release(obj)
            return
        if crs.observed(obj) and crs.phase_of(obj) == "Failed":
            return  # refused already for this generation
        holder = f"the CR in namespace {claim.holder!r}" if claim.holder else "a request submitted on the bus"
        await self._refuse(
            obj,
            "NameInUse",
            f"FOCOM request name {name!r} is already used by {holder}; FPR names are global",
            "$.metadata.name",
        )
        await self.client.apply_status(crs.observed_body(obj), field_manager=crs.WATCH_MANAGER)
        log.warning("cr_refused_name_in_use", cr=name, namespace=meta(obj).get("namespace"), holder=claim.holder)

    async def _deleting(self, obj: dict[str, Any], uid: str) -> None:
        if crs.finalizer_patch(obj, present=False) is None:
            return  # not ours to hold
        if crs.phase_of(obj) == "Deleted":
            await self._release(obj)
            await self.owners.release(name_of(obj), uid)
            return
        try:
            request = crs.delete_request(name_of(obj))
        except ValidationError:
            # A name no FOCOM request can have: it was refused, nothing was ever created for it.
            await self._release(obj)
            await self.owners.release(name_of(obj), uid)
            return
        env = Envelope.wrap(
            request, source=self.bus.source, correlation_id=request.name, id=derive_id("focom.cr.delete", uid)
        )
        await self.bus.publish(FOCOM_REQUESTS, env)

    async def _release(self, obj: dict[str, Any]) -> None:
        patch = crs.finalizer_patch(obj, present=False)
        if patch is None:
            return
        with contextlib.suppress(PermanentError):  # gone already (or changed: the next event retries)
            await self.client.patch(crs.API_VERSION, crs.KIND, name_of(obj), meta(obj).get("namespace"), patch)
        log.info("cr_released", cr=name_of(obj))

    async def _refuse(self, obj: dict[str, Any], reason: str, message: str, path: str | None) -> None:
        seen = self._seen.get(name_of(obj))
        body = crs.refusal_body(obj, reason=reason, message=message, path=path, at=datetime.now(UTC))
        if seen is not None and seen.uid == meta(obj).get("uid"):
            await self._write(seen, body, datetime.now(UTC))
        else:
            await self.client.apply_status(body, field_manager=crs.STATUS_MANAGER)

    # ── status writer (a bus consumer) ──────────────────────────────────────────────────

    async def on_status(self, status: FprStatus, ctx: MessageContext) -> None:
        await self._write_back(status.name, status, ctx.envelope)

    async def on_refusal(self, failed: MessageFailed, ctx: MessageContext) -> None:
        """focom refused a request: the CR says why (other failures are not about a request)."""
        if failed.message_type == _REQUEST_TYPE:
            await self._write_back(ctx.envelope.correlation_id or last_token(ctx.subject), failed, ctx.envelope)

    async def _write_back(self, name: str, payload: FprStatus | MessageFailed, env: Envelope) -> None:
        seen = self._seen.get(name)
        if seen is None:
            return  # not a CR we know (submitted on the bus, or its watch event is yet to come)
        async with self._lock(name):
            if isinstance(payload, FprStatus):
                await self._write(seen, crs.status_body(seen.obj, payload), payload.updated_at)
                if payload.phase == "Deleted" and crs.deleting(seen.obj):
                    await self._release(seen.obj)
                    await self.owners.release(name, seen.uid)
            else:
                body = crs.refusal_body(
                    seen.obj, reason=payload.reason, message=payload.error, path=payload.path, at=env.occurred_at
                )
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
