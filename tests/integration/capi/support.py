"""Helpers for the simulator tests: waiting on objects, recording transitions, reading hosts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from sandbox.capi.fakehosts import wait_for_object
from shared import objects
from shared.kube import KubeClient, WatchExpired

INFRA = "infrastructure.cluster.x-k8s.io/v1beta1"
Obj = dict[str, Any]


#: The tests read the conditions the controllers write in the object's own shape.
OWN = (("status", "conditions"),)


def condition(obj: Obj | None, ctype: str) -> Obj | None:
    found = objects.condition(obj, ctype, OWN)
    return dict(found) if found is not None else None


def is_true(obj: Obj | None, ctype: str) -> bool:
    return objects.condition_true(obj, ctype, OWN)


async def wait_for(
    client: KubeClient,
    api_version: str,
    kind: str,
    name: str,
    predicate: Callable[[Obj | None], bool],
    namespace: str = "default",
    timeout: float = 60.0,
) -> Obj | None:
    return await wait_for_object(client, api_version, kind, name, namespace, predicate, timeout=timeout)


async def wait_list(
    client: KubeClient,
    api_version: str,
    kind: str,
    predicate: Callable[[list[Obj]], bool],
    namespace: str = "default",
    label_selector: str | None = None,
    timeout: float = 60.0,
) -> list[Obj]:
    """Wait until the list of matching objects satisfies ``predicate`` (watching between checks)."""
    async with asyncio.timeout(timeout):
        while True:
            items, rv = await client.list(api_version, kind, namespace, label_selector=label_selector)
            if predicate(items):
                return items
            with contextlib.suppress(WatchExpired):
                async for event in client.watch(
                    api_version, kind, namespace, resource_version=rv, label_selector=label_selector, timeout_seconds=10
                ):
                    if event.type != "BOOKMARK":
                        break


class Recorder:
    """Records every state of some kinds from now on, ordered by resourceVersion (one global counter)."""

    def __init__(
        self, client: KubeClient, kinds: list[tuple[str, str]], namespace: str = "default", *, seed: bool = False
    ) -> None:
        """``seed``: the objects that exist at start are the first recorded states."""
        self._client = client
        self._kinds = kinds
        self._namespace = namespace
        self._seed = seed
        self._seeded = 0
        self.events: list[tuple[int, str, str, Obj | None]] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for api_version, kind in self._kinds:
            items, rv = await self._client.list(api_version, kind, self._namespace)
            if self._seed:
                for obj in items:
                    self.events.append((int(obj["metadata"]["resourceVersion"]), kind, obj["metadata"]["name"], obj))
                self._seeded += len(items)
            self._tasks.append(asyncio.create_task(self._run(api_version, kind, rv)))

    async def _run(self, api_version: str, kind: str, rv: str) -> None:
        while True:
            async for event in self._client.watch(
                api_version, kind, self._namespace, resource_version=rv, timeout_seconds=60
            ):
                rv = event.object["metadata"]["resourceVersion"]
                if event.type == "BOOKMARK":
                    continue
                obj = None if event.type == "DELETED" else event.object
                self.events.append((int(rv), kind, event.object["metadata"]["name"], obj))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def states(self) -> list[dict[tuple[str, str], Obj | None]]:
        """The successive snapshots of all recorded objects, one per event in resourceVersion order."""
        current: dict[tuple[str, str], Obj | None] = {}
        out = []
        for _, kind, name, obj in sorted(self.events, key=lambda e: e[0]):
            current[(kind, name)] = obj
            out.append(dict(current))
        # Seeded: the first snapshot is the world at start, not a part of it.
        return out[max(self._seeded - 1, 0) :]
