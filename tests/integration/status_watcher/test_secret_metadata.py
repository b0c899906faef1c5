"""status_watcher never receives a Secret's data: CAPI's cluster Secrets are watched as metadata only."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from services.status_watcher.pipeline import StatusPipeline, StatusWatcher
from services.status_watcher.watch import Backoff
from shared.bus import Bus
from shared.errors import PermanentError
from shared.kube import KubeClient, WatchEvent

CLUSTER_LABEL = "cluster.x-k8s.io/cluster-name"


class RecordingClient(KubeClient):
    """The real client, remembering every Secret the watcher was handed (by list, watch or get)."""

    seen: list[dict[str, Any]]
    changed: asyncio.Event

    async def list(
        self, api_version: str, kind: str, namespace: str | None = None, **kwargs: Any
    ) -> tuple[list[dict[str, Any]], str]:
        items, rv = await super().list(api_version, kind, namespace, **kwargs)
        if kind == "Secret":
            self._record(items)
        return items, rv

    async def watch(
        self, api_version: str, kind: str, namespace: str | None = None, **kwargs: Any
    ) -> AsyncIterator[WatchEvent]:
        async for event in super().watch(api_version, kind, namespace, **kwargs):
            if kind == "Secret" and event.type != "BOOKMARK":
                self._record([event.object])
            yield event

    async def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        obj = await super().get(api_version, kind, name, namespace)
        if kind == "Secret" and obj is not None:
            self._record([obj])
        return obj

    def _record(self, objs: list[dict[str, Any]]) -> None:
        self.seen.extend(objs)
        self.changed.set()


def _secret(name: str, key: str, value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "cluster.x-k8s.io/secret",
        "metadata": {"name": name, "namespace": "default", "labels": {CLUSTER_LABEL: "c1"}},
        "data": {key: base64.b64encode(value.encode()).decode()},
    }


async def _until(client: RecordingClient, check: Any, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            client.changed.clear()
            await client.changed.wait()


async def test_cluster_secrets_reach_the_watcher_as_metadata_only(
    capi_client: KubeClient, bus: Bus, kubeconfig: Path
) -> None:
    # Present at the first list, and created and changed while watching: CA key, kubeconfig, etcd key.
    await capi_client.apply(_secret("c1-ca", "tls.key", "-----BEGIN CA KEY-----"), field_manager="capi")
    client = await RecordingClient.from_kubeconfig(kubeconfig)
    client.seen, client.changed = [], asyncio.Event()
    pipeline = StatusPipeline(bus, source="status_watcher", backoff=Backoff(initial=0.05, maximum=0.5))
    watcher = StatusWatcher(client, pipeline, backoff=(0.05, 0.5), watch_timeout=30)
    task = asyncio.create_task(watcher.run())
    try:
        await _until(client, lambda: any(o["metadata"]["name"] == "c1-ca" for o in client.seen))
        await capi_client.apply(
            _secret("c1-kubeconfig", "value", "apiVersion: v1\nusers: [token: t0p]"), field_manager="capi"
        )
        await capi_client.apply(_secret("c1-etcd", "tls.key", "-----BEGIN ETCD KEY-----"), field_manager="capi")
        await capi_client.apply(_secret("c1-ca", "tls.key", "-----BEGIN ROTATED CA KEY-----"), field_manager="capi")
        names = ("c1-kubeconfig", "c1-etcd")
        await _until(
            client,
            lambda: (
                all(any(o["metadata"]["name"] == n for o in client.seen) for n in names)
                and sum(o["metadata"]["name"] == "c1-ca" for o in client.seen) >= 2
            ),
        )
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.close()
    assert client.seen
    for obj in client.seen:
        assert obj["kind"] == "PartialObjectMetadata", obj["kind"]
        assert set(obj) <= {"apiVersion", "kind", "metadata"}, sorted(obj)
        assert "data" not in obj and "stringData" not in obj
        # Nor hidden in metadata (a client-side-apply annotation would carry the whole object).
        assert "BEGIN" not in str(obj["metadata"]) and "t0p" not in str(obj["metadata"])


async def test_a_server_that_sends_full_secrets_is_refused(kubeconfig: Path) -> None:
    """The metadata-only guarantee does not rest on the server: a full object is an error, not data we keep."""
    async with await KubeClient.from_kubeconfig(kubeconfig) as client:

        async def full(*_args: Any, **_kwargs: Any) -> dict[str, Any]:
            return {"kind": "SecretList", "metadata": {}, "items": [{"data": {"k": "c2VjcmV0"}}]}

        client._must = full  # type: ignore[method-assign]
        with pytest.raises(PermanentError) as info:
            await client.list("v1", "Secret", "default", metadata_only=True)
        assert info.value.reason == "NotMetadata"
