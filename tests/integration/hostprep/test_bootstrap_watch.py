"""Many hosts waiting for their BootstrapKubeconfig share one watch, so a small connection pool is not exhausted.

A client whose pool is full queues every other request behind the open watches; with one watch per waiting
host, hosts that had not created their object yet could not do so while the others waited for the
controller, which fills only what exists.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from services.hostprep.bootstrap import INFRA_VERSION, KIND, BootstrapKubeconfigs
from services.hostprep.domain import bootstrap_kubeconfig_name
from shared.kube import KubeClient, WatchEvent
from shared.objects import HOST_ID_LABEL, name_of

HOSTS = [f"host-{i:03d}" for i in range(1, 21)]
#: The pool of the client under test: far fewer connections than hosts waiting at once.
CONNECTIONS = 4


class PooledClient(KubeClient):
    """A client allowing ``CONNECTIONS`` requests at a time, a watch holding its connection while open
    (as the real client's connection pool does). It tells when it is quiet: only watches in flight."""

    def __init__(self, inner: KubeClient) -> None:
        super().__init__(inner._api)
        self._pool = asyncio.Semaphore(CONNECTIONS)
        self.changed = asyncio.Condition()
        self.queued = 0
        self.in_flight = 0
        self.watching = 0
        self.peak_watches = 0
        self.created = 0

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[None]:
        self.queued += 1
        try:
            await self._pool.acquire()
        finally:
            self.queued -= 1
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
            self._pool.release()
            async with self.changed:
                self.changed.notify_all()

    async def quiet(self, created: int) -> None:
        """Until ``created`` objects were created and every connection in use is an open watch."""
        async with self.changed:
            await self.changed.wait_for(
                lambda: self.created >= created and self.queued == 0 and 0 < self.in_flight == self.watching
            )

    async def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        async with self._connection():
            return await super().get(api_version, kind, name, namespace)

    async def list(self, *args: Any, **kwargs: Any) -> Any:
        async with self._connection():
            return await super().list(*args, **kwargs)

    async def create(self, obj: Any) -> dict[str, Any]:
        async with self._connection():
            created = await super().create(obj)
            self.created += 1
            return created

    async def delete(self, *args: Any, **kwargs: Any) -> Any:
        async with self._connection():
            return await super().delete(*args, **kwargs)

    async def watch(self, *args: Any, **kwargs: Any) -> AsyncIterator[WatchEvent]:
        async with self._connection():
            self.watching += 1
            self.peak_watches = max(self.peak_watches, self.watching)
            async with self.changed:
                self.changed.notify_all()
            try:
                async for event in super().watch(*args, **kwargs):
                    yield event
            finally:
                self.watching -= 1


async def fill_once_all_exist(client: KubeClient, names: set[str]) -> None:
    """The controller's part, held back until every host has created its object: then each is filled."""
    items, rv = await client.list(INFRA_VERSION, KIND, "default", label_selector=HOST_ID_LABEL)
    seen = {name_of(o) for o in items}
    while not names <= seen:
        async for event in client.watch(INFRA_VERSION, KIND, "default", resource_version=rv, timeout_seconds=60):
            rv = str(event.object.get("metadata", {}).get("resourceVersion") or rv)
            if event.type == "ADDED":
                seen.add(name_of(event.object))
            if names <= seen:
                break
    for name in sorted(names):
        data = base64.b64encode(f"kubeconfig of {name}".encode()).decode()
        await client.patch(
            INFRA_VERSION, KIND, name, "default", {"status": {"bootstrapKubeconfigData": data}}, subresource="status"
        )


async def test_hosts_waiting_for_their_kubeconfig_hold_one_connection_between_them(kubeconfig: Path) -> None:
    plain = await KubeClient.from_kubeconfig(kubeconfig)
    pooled = PooledClient(plain)
    bootstrap = BootstrapKubeconfigs(
        pooled, api_url="https://mgmt.example:6443", ca_data="", wait_timeout=60, max_age=1800
    )
    try:
        # The first hosts create their objects and wait; only then do the others arrive.
        issuing = [asyncio.create_task(bootstrap.issue("default", h)) for h in HOSTS[:CONNECTIONS]]
        await pooled.quiet(created=CONNECTIONS)
        issuing += [asyncio.create_task(bootstrap.issue("default", h)) for h in HOSTS[CONNECTIONS:]]
        names = [bootstrap_kubeconfig_name(h) for h in HOSTS]
        await fill_once_all_exist(plain, set(names))
        issued = await asyncio.gather(*issuing)
        assert [i.name for i in issued] == names
        assert [i.data.get_secret_value() for i in issued] == [
            base64.b64encode(f"kubeconfig of {n}".encode()) for n in names
        ]
        # One watch served every waiting host (it held one connection of the pool, not one per host).
        assert pooled.peak_watches == 1
    finally:
        await bootstrap.close()
        await plain.close()
