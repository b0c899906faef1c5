"""Which hosts have a ByoHost: one shared list+watch per namespace, read by every waiting host.

The BYOH agent labels its ByoHost ``o2ims.oran.org/host-id=<id>``; hostprep watches ByoHosts
carrying that label itself (through ``shared.kube.KubeClient``) instead of waiting for
status_watcher's events, so a host completes as soon as its ByoHost exists, whoever else is
running. One watch per namespace serves all hosts of all jobs (a 410 re-lists, errors back off);
waits are bounded by the caller. Deletes are read from the API, never the cache, and guarded: only
unclaimed ByoHosts of the host id, each with uid/resourceVersion preconditions.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import structlog

from services.hostprep.domain import byohost_claimed, byohost_state
from shared.errors import PermanentError, classify
from shared.kube import KubeClient, WatchExpired
from shared.objects import HOST_ID_LABEL, deleting, labels_of, meta, name_of

log = structlog.get_logger(__name__)

INFRA_VERSION = "infrastructure.cluster.x-k8s.io/v1beta1"
KIND = "ByoHost"
Obj = dict[str, Any]
Predicate = Callable[[list[Obj]], bool]


def _host_id(obj: Obj) -> str | None:
    value = labels_of(obj).get(HOST_ID_LABEL)
    return str(value) if value else None


class _Namespace:
    """The ByoHosts of one namespace, by host id then name, and who waits on which host id."""

    def __init__(self) -> None:
        self.hosts: dict[str, dict[str, Obj]] = {}
        self.synced = asyncio.Event()
        #: One event per host id somebody waits on, set (and dropped) when that host id's ByoHosts change.
        #: Per host rather than one condition for the namespace: with a thousand hosts waiting, each event
        #: would otherwise wake all thousand waiters to re-test their predicates.
        self._waiting: dict[str, asyncio.Event] = {}
        self.task: asyncio.Task[None] | None = None

    def live(self, host_id: str) -> list[Obj]:
        return [o for o in self.hosts.get(host_id, {}).values() if not deleting(o)]

    def changed(self, host_id: str) -> asyncio.Event:
        """Set at the next change of the host id's ByoHosts (or a re-list)."""
        event = self._waiting.get(host_id)
        if event is None:
            event = self._waiting[host_id] = asyncio.Event()
        return event

    def _notify(self, host_id: str) -> None:
        event = self._waiting.pop(host_id, None)
        if event is not None:
            event.set()

    def replace(self, items: list[Obj]) -> None:
        self.hosts = {}
        for obj in items:
            self.put(obj)
        waiting, self._waiting = self._waiting, {}
        for event in waiting.values():
            event.set()

    def put(self, obj: Obj) -> None:
        host_id = _host_id(obj)
        if host_id is not None:
            self.hosts.setdefault(host_id, {})[name_of(obj)] = obj
            self._notify(host_id)

    def drop(self, obj: Obj) -> None:
        host_id = _host_id(obj)
        if host_id is not None:
            self.hosts.get(host_id, {}).pop(name_of(obj), None)
            self._notify(host_id)


class ByoHostIndex:
    def __init__(self, client: KubeClient, *, watch_seconds: int = 300) -> None:
        self._client = client
        self._watch_seconds = watch_seconds
        self._namespaces: dict[str, _Namespace] = {}

    def _ns(self, namespace: str) -> _Namespace:
        ns = self._namespaces.get(namespace)
        if ns is None:
            ns = self._namespaces[namespace] = _Namespace()
            ns.task = asyncio.create_task(self._follow(namespace, ns), name=f"byohost-watch:{namespace}")
        return ns

    async def wait(self, namespace: str, host_id: str, done: Predicate, timeout: float) -> list[Obj] | None:
        """The host's live ByoHosts once ``done`` holds for them, or None after ``timeout`` seconds."""
        ns = self._ns(namespace)
        try:
            async with asyncio.timeout(timeout):
                await ns.synced.wait()
                while not done(ns.live(host_id)):
                    await ns.changed(host_id).wait()
                return ns.live(host_id)
        except TimeoutError:
            return None

    async def present(self, namespace: str, host_id: str, timeout: float) -> list[Obj]:
        """The host's live ByoHosts as known now (waits at most ``timeout`` for the first list)."""
        ns = self._ns(namespace)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await ns.synced.wait()
        if not ns.synced.is_set():
            # The shared watch is not up (API trouble): ask directly.
            return await self.fetch(namespace, host_id)
        return ns.live(host_id)

    async def fetch(self, namespace: str, host_id: str) -> list[Obj]:
        """The host's live ByoHosts as the API has them now (not the cache, which may lag behind)."""
        items, _ = await self._client.list(INFRA_VERSION, KIND, namespace, label_selector=f"{HOST_ID_LABEL}={host_id}")
        return [o for o in items if not deleting(o)]

    async def delete_unclaimed(self, namespace: str, host_id: str, select: Callable[[Obj], bool]) -> list[str]:
        """Delete the host id's ByoHosts that ``select`` picks, as the API has them now (not the cache).

        A claimed one (``status.machineRef`` or the cluster label) is a live node: ``ByoHostClaimed``,
        nothing of it touched.
        Each delete carries the uid and resourceVersion just read, so one claimed (or replaced) since
        is refused by the server (409, retried from a fresh read).
        """
        items, _ = await self._client.list(INFRA_VERSION, KIND, namespace, label_selector=f"{HOST_ID_LABEL}={host_id}")
        chosen = [o for o in items if select(o) and not deleting(o)]
        for obj in chosen:
            if byohost_claimed(obj):
                state = byohost_state(obj)
                raise PermanentError(
                    f"{state.describe()}: a claimed ByoHost is a live node and is never deleted",
                    reason="ByoHostClaimed",
                )
        for obj in chosen:
            md = meta(obj)
            preconditions = {"uid": str(md.get("uid") or ""), "resourceVersion": str(md.get("resourceVersion") or "")}
            await self._client.delete(
                INFRA_VERSION,
                KIND,
                name_of(obj),
                namespace,
                preconditions={k: v for k, v in preconditions.items() if v},
            )
            log.info("byohost_deleted", namespace=namespace, host_id=host_id, name=name_of(obj))
        return [name_of(o) for o in chosen]

    async def close(self) -> None:
        tasks = [ns.task for ns in self._namespaces.values() if ns.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._namespaces.clear()

    async def _follow(self, namespace: str, ns: _Namespace) -> None:
        failures = 0
        while True:
            try:
                items, rv = await self._client.list(INFRA_VERSION, KIND, namespace, label_selector=HOST_ID_LABEL)
                ns.replace(items)
                ns.synced.set()
                failures = 0
                while True:
                    async for event in self._client.watch(
                        INFRA_VERSION,
                        KIND,
                        namespace,
                        resource_version=rv,
                        label_selector=HOST_ID_LABEL,
                        timeout_seconds=self._watch_seconds,
                    ):
                        rv = str(meta(event.object).get("resourceVersion") or rv)
                        if event.type == "BOOKMARK":
                            continue
                        if event.type == "DELETED":
                            ns.drop(event.object)
                        else:
                            ns.put(event.object)
            except WatchExpired:
                continue
            except Exception as exc:
                err = classify(exc)
                failures += 1
                log.warning("byohost_watch_failed", namespace=namespace, reason=err.reason, error=err.message)
                # Back off while the API is unhappy; the next round re-lists.
                await asyncio.sleep(min(0.5 * 2**failures, 30.0))
