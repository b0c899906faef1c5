"""A tiny controller runtime: informers (list + watch into a cache) and level-based work queues.

Like controller-runtime: each kind is listed and watched once (resuming from the
last resourceVersion, re-listing after 410), controllers start once every kind
has been listed, events enqueue object keys, and each controller reconciles one
key at a time from the cache, recomputing what should be. Writes go through
:class:`SimContext`, which feeds results back into the cache so the next
reconcile does not act on its own stale view.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import structlog

from sandbox.capi.options import SimOptions
from sandbox.capi.shapes import Obj, resource_version
from shared.errors import ServiceError, TemporaryError, classify
from shared.kube import KubeClient, WatchExpired
from shared.objects import deleting, meta, name_of, namespace_of

log = structlog.get_logger(__name__)

Key = tuple[str, str]
Handler = Callable[[str, Obj], None]


class Informer:
    """Keeps every object of one kind (in the given namespaces) in memory and reports changes."""

    def __init__(self, client: KubeClient, api_version: str, kind: str, options: SimOptions) -> None:
        self.client = client
        self.api_version = api_version
        self.kind = kind
        self._options = options
        self._objects: dict[Key, Obj] = {}
        self._gone: set[str] = set()
        self._handlers: list[Handler] = []
        self._scopes: list[str | None] = list(options.namespaces) if options.namespaces else [None]
        self._synced_scopes = 0
        self.synced = asyncio.Event()

    def on_change(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def get(self, namespace: str, name: str) -> Obj | None:
        obj = self._objects.get((namespace, name))
        return None if obj is None or meta(obj).get("uid") in self._gone else obj

    def items(self, namespace: str | None = None) -> list[Obj]:
        return [
            o
            for (ns, _), o in self._objects.items()
            if (namespace is None or ns == namespace) and meta(o).get("uid") not in self._gone
        ]

    def observe(self, obj: Obj) -> None:
        """Record an object a controller just wrote (newer wins)."""
        key = (namespace_of(obj), name_of(obj))
        old = self._objects.get(key)
        if old is not None and resource_version(old) > resource_version(obj):
            return
        self._objects[key] = obj
        self._notify("MODIFIED" if old else "ADDED", obj)

    def forget(self, obj: Mapping[str, Any]) -> None:
        """A controller deleted this object: hide it now rather than when the DELETED event comes."""
        uid = meta(obj).get("uid")
        if uid:
            self._gone.add(str(uid))

    def _notify(self, event: str, obj: Obj) -> None:
        for handler in self._handlers:
            handler(event, obj)

    def _relist(self, scope: str | None, items: list[Obj]) -> None:
        fresh = {(namespace_of(o), name_of(o)): o for o in items}
        for key in [k for k in self._objects if scope is None or k[0] == scope]:
            if key not in fresh:
                self._notify("DELETED", self._objects.pop(key))
        for key, obj in fresh.items():
            old = self._objects.get(key)
            self._objects[key] = obj
            if old is None or resource_version(old) != resource_version(obj):
                self._notify("MODIFIED" if old else "ADDED", obj)

    def _event(self, kind: str, obj: Obj) -> None:
        key = (namespace_of(obj), name_of(obj))
        if kind == "DELETED":
            self._objects.pop(key, None)
            self._gone.discard(str(meta(obj).get("uid")))
        else:
            old = self._objects.get(key)
            same = old is not None and meta(old).get("uid") == meta(obj).get("uid")
            if same and old is not None and resource_version(old) > resource_version(obj):
                return
            self._objects[key] = obj
        self._notify(kind, obj)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for scope in self._scopes:
                group.create_task(self._run_scope(scope))

    async def _run_scope(self, scope: str | None) -> None:
        first = True
        failures = 0
        while True:
            try:
                items, rv = await self.client.list(self.api_version, self.kind, scope)
                self._relist(scope, items)
                if first:
                    first = False
                    self._synced_scopes += 1
                    if self._synced_scopes == len(self._scopes):
                        self.synced.set()
                failures = 0
                while True:
                    async for ev in self.client.watch(
                        self.api_version,
                        self.kind,
                        scope,
                        resource_version=rv,
                        timeout_seconds=self._options.watch_timeout,
                    ):
                        rv = str(meta(ev.object).get("resourceVersion") or rv)
                        if ev.type != "BOOKMARK":
                            self._event(ev.type, ev.object)
            except WatchExpired:
                log.debug("informer_relist", kind=self.kind, namespace=scope)
            except Exception as exc:
                err = classify(exc)
                failures += 1
                log.warning(
                    "informer_error",
                    kind=self.kind,
                    namespace=scope,
                    reason=err.reason,
                    error=err.message,
                    exc_info=not isinstance(exc, ServiceError),
                )
                await asyncio.sleep(min(0.2 * 2**failures, 5.0))


class Controller:
    """Reconciles keys of one kind, one at a time; subclasses implement :meth:`reconcile`."""

    kind = ""
    #: Whose credentials the controller writes with (``""``: the main client; ``"byoh"``: BYOH's manager).
    identity = ""

    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx.as_identity(self.identity) if self.identity else ctx
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._queued: set[Key] = set()
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._failures: dict[Key, int] = {}
        ctx.informer(self.kind).on_change(lambda _e, obj: self.enqueue(namespace_of(obj), name_of(obj)))
        self.setup()

    def setup(self) -> None:
        """Subscribe to other kinds (override)."""

    def watch(self, kind: str, mapper: Callable[[Obj], Iterable[Key]]) -> None:
        def handler(_event: str, obj: Obj) -> None:
            for key in mapper(obj):
                self.enqueue(*key)

        self.ctx.informer(kind).on_change(handler)

    def enqueue(self, namespace: str, name: str, after: float = 0.0) -> None:
        key = (namespace, name)
        if after > 0:
            timer = self._timers.get(key)
            if timer is not None and timer.when() <= asyncio.get_running_loop().time() + after:
                return
            if timer is not None:
                timer.cancel()
            self._timers[key] = asyncio.get_running_loop().call_later(after, self._fire, key)
            return
        if key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self.enqueue(*key)

    async def reconcile(self, namespace: str, name: str) -> float | None:
        """Make the world match the object; return seconds until the next look, or None."""
        raise NotImplementedError

    async def run(self) -> None:
        # Like controller-runtime's WaitForCacheSync: no reconcile before every kind has been listed. A KCP
        # reconciled before its Machines were (on a restart, with both in the store) would create a first
        # Machine again.
        for informer in self.ctx.informers:
            await informer.synced.wait()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._resync())
                while True:
                    key = await self._queue.get()
                    self._queued.discard(key)
                    await self._process(key)
        finally:
            for timer in self._timers.values():
                timer.cancel()

    async def _process(self, key: Key) -> None:
        try:
            again = await self.reconcile(*key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            err = classify(exc)
            count = self._failures.get(key, 0) + 1
            self._failures[key] = count
            delay = err.delay if isinstance(err, TemporaryError) and err.delay else min(0.1 * 2**count, 10.0)
            # Conflicts and objects deleted under a stale cache are routine in level-based controllers.
            routine = err.reason in {"Conflict", "NotFound"} and isinstance(exc, ServiceError)
            level = log.debug if routine else log.warning
            level(
                "reconcile_failed",
                controller=type(self).__name__,
                key="/".join(key),
                reason=err.reason,
                error=err.message,
                exc_info=not isinstance(exc, ServiceError),
            )
            self.enqueue(*key, after=delay)
            return
        self._failures.pop(key, None)
        if again is not None:
            self.enqueue(*key, after=max(again, 0.01))

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.ctx.options.resync_period)
            for obj in self.ctx.informer(self.kind).items():
                self.enqueue(namespace_of(obj), name_of(obj))


class SimContext:
    """What every controller shares: the client, the options, the informers and write helpers.

    Controllers write as their provider's identity: ``as_identity("byoh")`` is a view sharing the
    informers whose writes go through the client registered for that identity (``set_client``),
    or through the main client until one is.
    """

    def __init__(
        self,
        client: KubeClient,
        options: SimOptions,
        *,
        identity: str = "",
        shared: SimContext | None = None,
    ) -> None:
        self.options = options
        self.identity = identity
        if shared is None:
            self._clients: dict[str, KubeClient] = {"": client}
            self._informers: dict[str, Informer] = {}
            self._first_seen: dict[tuple[str, str, str], float] = {}
        else:
            self._clients, self._informers, self._first_seen = shared._clients, shared._informers, shared._first_seen

    @property
    def client(self) -> KubeClient:
        return self._clients.get(self.identity) or self._clients[""]

    def as_identity(self, identity: str) -> SimContext:
        """A view of this context whose writes use ``identity``'s client."""
        return SimContext(self._clients[""], self.options, identity=identity, shared=self)

    def set_client(self, identity: str, client: KubeClient) -> None:
        self._clients[identity] = client

    def add_informer(self, api_version: str, kind: str) -> Informer:
        informer = Informer(self.client, api_version, kind, self.options)
        self._informers[kind] = informer
        return informer

    def informer(self, kind: str) -> Informer:
        return self._informers[kind]

    @property
    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    def get(self, kind: str, namespace: str, name: str | None) -> Obj | None:
        return self.informer(kind).get(namespace, name) if name else None

    def wait_step(self, step: str, obj: Mapping[str, Any], delay: float) -> float | None:
        """Seconds still to wait before ``step`` may happen for ``obj`` (None: go ahead)."""
        if delay <= 0:
            return None
        key = (step, namespace_of(obj), str(meta(obj).get("uid") or name_of(obj)))
        start = self._first_seen.setdefault(key, time.monotonic())
        left = start + delay - time.monotonic()
        return left if left > 0 else None

    def _observe(self, obj: Obj) -> Obj:
        informer = self._informers.get(str(obj.get("kind")))
        if informer is not None and obj.get("metadata"):
            informer.observe(obj)
        return obj

    async def create(self, obj: Obj) -> Obj:
        try:
            return self._observe(await self.client.create(obj))
        except TemporaryError as exc:
            if exc.reason != "AlreadyExists":
                raise
        found = await self.client.get(obj["apiVersion"], obj["kind"], name_of(obj), namespace_of(obj) or None)
        if found is None:
            raise TemporaryError(f"{obj['kind']} {name_of(obj)} vanished after AlreadyExists", reason="Conflict")
        return self._observe(found)

    async def patch(self, obj: Obj, patch: Obj | list[Obj], *, status: bool = False) -> Obj:
        """A merge patch, or a JSON patch when ``patch`` is a list of operations."""
        result = await self.client.patch(
            str(obj["apiVersion"]),
            str(obj["kind"]),
            name_of(obj),
            namespace_of(obj) or None,
            patch,
            patch_type="json" if isinstance(patch, list) else "merge",
            subresource="status" if status else None,
        )
        return self._observe(result)

    async def patch_status(self, obj: Obj, status: Obj) -> Obj:
        return await self.patch(obj, {"status": status}, status=True)

    async def delete(self, obj: Obj) -> None:
        if deleting(obj):
            return
        api_version, kind = str(obj["apiVersion"]), str(obj["kind"])
        name, namespace = name_of(obj), namespace_of(obj) or None
        await self.client.delete(api_version, kind, name, namespace)
        # Finalizers may keep it around: learn now whether it is gone or merely deleting.
        found = await self.client.get(api_version, kind, name, namespace)
        informer = self._informers.get(kind)
        if informer is None:
            return
        if found is not None and meta(found).get("uid") == meta(obj).get("uid"):
            informer.observe(found)
        else:
            informer.forget(obj)

    async def set_finalizers(self, obj: Obj, finalizers: list[str]) -> Obj:
        patch = {"metadata": {"finalizers": finalizers or None, "resourceVersion": meta(obj).get("resourceVersion")}}
        return await self.patch(obj, patch)
