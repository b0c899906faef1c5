"""A kind hostprep waits on (ByoHosts, BootstrapKubeconfigs), followed by one list+watch per namespace.

Objects are indexed by a key (a host id, an object name) and each waiter is woken only by a change of
its own key: with a thousand hosts waiting, one host's event must not wake all thousand to re-test their
predicates, and a watch per waiting host would exhaust the API client's connection pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog

from shared.errors import classify
from shared.kube import KubeClient, WatchExpired
from shared.objects import HOST_ID_LABEL, meta, name_of

log = structlog.get_logger(__name__)

Obj = dict[str, Any]
Key = Callable[[Obj], str | None]


class Namespace:
    """The followed objects of one namespace, by key then name, and who waits on which key."""

    def __init__(self, key: Key) -> None:
        self._key = key
        self.objects: dict[str, dict[str, Obj]] = {}
        self.synced = asyncio.Event()
        #: One event per key somebody waits on, set (and dropped) at that key's next change or a re-list.
        self._waiting: dict[str, asyncio.Event] = {}
        self.task: asyncio.Task[None] | None = None

    def of(self, key: str) -> list[Obj]:
        return list(self.objects.get(key, {}).values())

    def changed(self, key: str) -> asyncio.Event:
        """Set at the next change of the key's objects (or a re-list)."""
        event = self._waiting.get(key)
        if event is None:
            event = self._waiting[key] = asyncio.Event()
        return event

    def replace(self, items: list[Obj]) -> None:
        self.objects = {}
        for obj in items:
            self._store(obj, obj)
        waiting, self._waiting = self._waiting, {}
        for event in waiting.values():
            event.set()

    def put(self, obj: Obj) -> None:
        self._notify(self._store(obj, obj))

    def drop(self, obj: Obj) -> None:
        self._notify(self._store(obj, None))

    def _store(self, obj: Obj, value: Obj | None) -> str | None:
        key = self._key(obj)
        if key is not None:
            if value is None:
                self.objects.get(key, {}).pop(name_of(obj), None)
            else:
                self.objects.setdefault(key, {})[name_of(obj)] = value
        return key

    def _notify(self, key: str | None) -> None:
        event = self._waiting.pop(key, None) if key is not None else None
        if event is not None:
            event.set()


class Followed:
    """Objects of one kind carrying the host-id label, followed per namespace on first use until ``close``."""

    def __init__(self, client: KubeClient, api_version: str, kind: str, key: Key, *, watch_seconds: int) -> None:
        self._client = client
        self._api_version = api_version
        self._kind = kind
        self._key = key
        self._watch_seconds = watch_seconds
        self._namespaces: dict[str, Namespace] = {}

    def namespace(self, namespace: str) -> Namespace:
        ns = self._namespaces.get(namespace)
        if ns is None:
            ns = self._namespaces[namespace] = Namespace(self._key)
            ns.task = asyncio.create_task(self._follow(namespace, ns), name=f"{self._kind.lower()}-watch:{namespace}")
        return ns

    async def close(self) -> None:
        tasks = [ns.task for ns in self._namespaces.values() if ns.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._namespaces.clear()

    async def _follow(self, namespace: str, ns: Namespace) -> None:
        failures = 0
        while True:
            try:
                items, rv = await self._client.list(
                    self._api_version, self._kind, namespace, label_selector=HOST_ID_LABEL
                )
                ns.replace(items)
                ns.synced.set()
                failures = 0
                while True:
                    async for event in self._client.watch(
                        self._api_version,
                        self._kind,
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
                log.warning("watch_failed", kind=self._kind, namespace=namespace, reason=err.reason, error=err.message)
                # Back off while the API is unhappy; the next round re-lists (waits stay bounded by their deadline).
                await asyncio.sleep(min(0.5 * 2**failures, 30.0))
