"""Watch: replay from a resourceVersion, synthetic ADDED, selectors, timeouts, bookmarks and 410 Expired."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from kubernetes import watch as sync_watch
from kubernetes.aio import client, watch
from kubernetes.aio.client import ApiException
from kubernetes.aio.dynamic import DynamicClient
from kubernetes.client import ApiClient as SyncApiClient
from kubernetes.client import CustomObjectsApi as SyncCustomObjectsApi
from kubernetes.client.exceptions import ApiException as SyncApiException

from sandbox.kubeapi import KubeApiServer

from .conftest import BYOH, byomachine

Events = list[tuple[str, str, str]]


async def _collect(
    custom: client.CustomObjectsApi, count: int, *, namespaced: bool = True, timeout: int = 10, **kwargs: Any
) -> Events:
    """(type, name, resourceVersion) of the first ``count`` events (fewer if the server ends the stream)."""
    out: Events = []
    args = (BYOH, "v1beta1", "default", "byomachines") if namespaced else (BYOH, "v1beta1", "byomachines")
    fn = custom.list_namespaced_custom_object if namespaced else custom.list_cluster_custom_object
    async with watch.Watch() as w:
        async for event in w.stream(fn, *args, timeout_seconds=timeout, **kwargs):
            obj = event["raw_object"]
            out.append((event["type"], obj.get("metadata", {}).get("name", ""), obj["metadata"]["resourceVersion"]))
            if len(out) >= count:
                break
    return out


async def _create(custom: client.CustomObjectsApi, name: str, **labels: str) -> dict[str, Any]:
    created: dict[str, Any] = await custom.create_namespaced_custom_object(
        BYOH, "v1beta1", "default", "byomachines", byomachine(name, labels)
    )
    return created


async def _label(custom: client.CustomObjectsApi, name: str, **labels: str | None) -> dict[str, Any]:
    patched: dict[str, Any] = await custom.patch_namespaced_custom_object(
        BYOH, "v1beta1", "default", "byomachines", name, {"metadata": {"labels": labels}}
    )
    return patched


async def test_watch_without_version_starts_with_current_objects(custom: client.CustomObjectsApi) -> None:
    await _create(custom, "a")
    await _create(custom, "b")
    events = await _collect(custom, 2)
    assert [(t, n) for t, n, _ in events] == [("ADDED", "a"), ("ADDED", "b")]
    events = await _collect(custom, 2, resource_version="0")
    assert [(t, n) for t, n, _ in events] == [("ADDED", "a"), ("ADDED", "b")]


async def test_watch_from_resource_version_replays_only_later_events(custom: client.CustomObjectsApi) -> None:
    await _create(custom, "before")
    listed = await custom.list_namespaced_custom_object(BYOH, "v1beta1", "default", "byomachines")
    rv = listed["metadata"]["resourceVersion"]
    await _create(custom, "after")
    await _label(custom, "before", touched="yes")
    await custom.delete_namespaced_custom_object(BYOH, "v1beta1", "default", "byomachines", "after")
    events = await _collect(custom, 3, resource_version=rv)
    assert [(t, n) for t, n, _ in events] == [("ADDED", "after"), ("MODIFIED", "before"), ("DELETED", "after")]
    rvs = [int(v) for _, _, v in events]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)


async def test_live_events_reach_every_watcher(custom: client.CustomObjectsApi) -> None:
    await _create(custom, "seed")
    watchers = [asyncio.create_task(_collect(custom, 3)) for _ in range(3)]
    cluster_wide = asyncio.create_task(_collect(custom, 3, namespaced=False))
    listed = await custom.list_namespaced_custom_object(BYOH, "v1beta1", "default", "byomachines")
    rv = listed["metadata"]["resourceVersion"]
    # each stream sees "seed" first whenever it attaches; these two come afterwards or are replayed
    late = asyncio.create_task(_collect(custom, 2, resource_version=rv))
    await _create(custom, "x")
    await _create(custom, "y")
    for result in await asyncio.gather(*watchers, cluster_wide):
        assert [(t, n) for t, n, _ in result] == [("ADDED", "seed"), ("ADDED", "x"), ("ADDED", "y")]
    assert [(t, n) for t, n, _ in await late] == [("ADDED", "x"), ("ADDED", "y")]


async def test_label_selector_turns_transitions_into_added_and_deleted(custom: client.CustomObjectsApi) -> None:
    await _create(custom, "h")
    rv = (await custom.list_namespaced_custom_object(BYOH, "v1beta1", "default", "byomachines"))["metadata"][
        "resourceVersion"
    ]
    await _label(custom, "h", pool="free")
    await _label(custom, "h", other="1")
    await _label(custom, "h", pool=None)
    events = await _collect(custom, 3, resource_version=rv, label_selector="pool=free")
    assert [(t, n) for t, n, _ in events] == [("ADDED", "h"), ("MODIFIED", "h"), ("DELETED", "h")]


async def test_watch_single_object_with_field_selector(custom: client.CustomObjectsApi) -> None:
    rv = (await custom.list_namespaced_custom_object(BYOH, "v1beta1", "default", "byomachines"))["metadata"][
        "resourceVersion"
    ]
    await _create(custom, "one")
    await _create(custom, "two")
    await _label(custom, "two", x="1")
    events = await _collect(custom, 2, resource_version=rv, field_selector="metadata.name=two")
    assert [(t, n) for t, n, _ in events] == [("ADDED", "two"), ("MODIFIED", "two")]


async def test_live_single_object_watches_see_only_their_object(custom: client.CustomObjectsApi) -> None:
    rv = (await custom.list_namespaced_custom_object(BYOH, "v1beta1", "default", "byomachines"))["metadata"][
        "resourceVersion"
    ]
    # Streams from ``rv``: whether a stream attaches before the writes (live events) or after (replay), it
    # sees the same events.
    one = asyncio.create_task(_collect(custom, 3, resource_version=rv, field_selector="metadata.name=one"))
    two = asyncio.create_task(_collect(custom, 2, resource_version=rv, field_selector="metadata.name==two"))
    two_labelled = asyncio.create_task(
        _collect(custom, 1, resource_version=rv, field_selector="metadata.name=two", label_selector="x=1")
    )
    everything = asyncio.create_task(_collect(custom, 5, resource_version=rv))
    cluster_wide = asyncio.create_task(
        _collect(custom, 2, namespaced=False, resource_version=rv, field_selector="metadata.name=two")
    )
    await _create(custom, "one")
    await _create(custom, "two")
    await _label(custom, "one", x="1")
    await _label(custom, "two", x="1")
    await custom.delete_namespaced_custom_object(BYOH, "v1beta1", "default", "byomachines", "one")
    assert [(t, n) for t, n, _ in await one] == [("ADDED", "one"), ("MODIFIED", "one"), ("DELETED", "one")]
    assert [(t, n) for t, n, _ in await two] == [("ADDED", "two"), ("MODIFIED", "two")]
    assert [(t, n) for t, n, _ in await cluster_wide] == [("ADDED", "two"), ("MODIFIED", "two")]
    assert [(t, n) for t, n, _ in await two_labelled] == [("ADDED", "two")]
    assert [(t, n) for t, n, _ in await everything] == [
        ("ADDED", "one"),
        ("ADDED", "two"),
        ("MODIFIED", "one"),
        ("MODIFIED", "two"),
        ("DELETED", "one"),
    ]
    listed = await custom.list_namespaced_custom_object(
        BYOH, "v1beta1", "default", "byomachines", field_selector="metadata.name=two"
    )
    assert [o["metadata"]["name"] for o in listed["items"]] == ["two"]
    listed = await custom.list_namespaced_custom_object(
        BYOH, "v1beta1", "default", "byomachines", field_selector="metadata.name=two,metadata.name!=two"
    )
    assert listed["items"] == []


async def test_timeout_seconds_ends_the_stream(custom: client.CustomObjectsApi) -> None:
    await _create(custom, "only")
    events = await _collect(custom, 99, timeout=1)
    assert [(t, n) for t, n, _ in events] == [("ADDED", "only")]


@pytest.mark.kubeapi_options(bookmark_interval=0.2)
async def test_bookmarks(custom: client.CustomObjectsApi, kubeapi: KubeApiServer) -> None:
    created = await _create(custom, "b")
    events = await _collect(
        custom, 2, resource_version=created["metadata"]["resourceVersion"], allow_watch_bookmarks=True
    )
    assert [t for t, _, _ in events] == ["BOOKMARK", "BOOKMARK"]
    assert all(int(v) >= int(created["metadata"]["resourceVersion"]) for _, _, v in events)


async def test_bookmark_sent_before_timeout_close(custom: client.CustomObjectsApi) -> None:
    created = await _create(custom, "b")
    events = await _collect(custom, 99, timeout=1, allow_watch_bookmarks=True)
    assert [(t, n) for t, n, _ in events] == [("ADDED", "b"), ("BOOKMARK", "")]
    assert int(events[-1][2]) >= int(created["metadata"]["resourceVersion"])


async def test_expired_resource_version_is_410_then_relist_and_rewatch(
    custom: client.CustomObjectsApi, kubeapi: KubeApiServer
) -> None:
    old = await _create(custom, "old")
    await _label(custom, "old", x="1")
    kubeapi.compact_history()
    with pytest.raises(ApiException) as err:
        await _collect(custom, 1, resource_version=old["metadata"]["resourceVersion"])
    assert err.value.status == 410 and "Expired" in str(err.value.reason)
    listed = await custom.list_namespaced_custom_object(BYOH, "v1beta1", "default", "byomachines")
    await _create(custom, "new")
    events = await _collect(custom, 1, resource_version=listed["metadata"]["resourceVersion"])
    assert [(t, n) for t, n, _ in events] == [("ADDED", "new")]


@pytest.mark.kubeapi_options(history_size=3)
async def test_history_size_bounds_replay(custom: client.CustomObjectsApi) -> None:
    first = await _create(custom, "h0")
    for i in range(1, 5):
        await _create(custom, f"h{i}")
    with pytest.raises(ApiException) as err:
        await _collect(custom, 1, resource_version=first["metadata"]["resourceVersion"])
    assert err.value.status == 410


async def test_sync_client_watch_surfaces_410(
    custom: client.CustomObjectsApi, kubeapi: KubeApiServer, sync_api: SyncApiClient
) -> None:
    old = await _create(custom, "old")
    await _create(custom, "newer")
    kubeapi.compact_history()
    sync_custom = SyncCustomObjectsApi(sync_api)

    def stream() -> list[str]:
        w = sync_watch.Watch()
        return [
            e["type"]
            for e in w.stream(
                sync_custom.list_namespaced_custom_object,
                BYOH,
                "v1beta1",
                "default",
                "byomachines",
                resource_version=old["metadata"]["resourceVersion"],
                timeout_seconds=5,
            )
        ]

    with pytest.raises(SyncApiException) as err:
        await asyncio.to_thread(stream)
    assert err.value.status == 410


async def test_restart_keeps_objects_and_watch_resumes(custom: client.CustomObjectsApi, kubeapi: KubeApiServer) -> None:
    created = await _create(custom, "survivor")
    port = kubeapi.port
    seen: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue()

    async def record() -> None:
        async with watch.Watch() as w:
            async for event in w.stream(
                custom.list_namespaced_custom_object, BYOH, "v1beta1", "default", "byomachines", timeout_seconds=60
            ):
                await seen.put((event["type"], event["raw_object"]["metadata"]["resourceVersion"]))
        await seen.put(None)

    recorder = asyncio.create_task(record())
    assert (await seen.get() or ("", ""))[0] == "ADDED"
    await _label(custom, "survivor", step="1")
    modified = await seen.get()
    assert modified is not None and modified[0] == "MODIFIED"
    await kubeapi.stop()
    assert await seen.get() is None  # the stream ends when the server stops; the client must resume
    await recorder
    await kubeapi.start()
    assert kubeapi.port == port
    got = await custom.get_namespaced_custom_object(BYOH, "v1beta1", "default", "byomachines", "survivor")
    assert got["metadata"]["uid"] == created["metadata"]["uid"] and got["metadata"]["labels"] == {"step": "1"}
    await _label(custom, "survivor", step="2")
    resumed = await _collect(custom, 1, resource_version=modified[1])
    assert resumed[0][:2] == ("MODIFIED", "survivor") and int(resumed[0][2]) > int(modified[1])


async def test_dynamic_client_watch(api: client.ApiClient, custom: client.CustomObjectsApi, tmp_path: Path) -> None:
    dyn = await DynamicClient(api, cache_file=str(tmp_path / "cache.json"))
    hosts = await dyn.resources.get(api_version=f"{BYOH}/v1beta1", kind="ByoMachine")
    rv = (await custom.list_namespaced_custom_object(BYOH, "v1beta1", "default", "byomachines"))["metadata"][
        "resourceVersion"
    ]
    await _create(custom, "dyn")
    seen = []
    async with watch.Watch() as w:
        stream = dyn.watch(hosts, namespace="default", name="dyn", resource_version=rv, timeout=5, watcher=w)
        async for event in stream:
            seen.append((event["type"], event["object"].metadata.name))
            break
        await stream.aclose()
    assert seen == [("ADDED", "dyn")]
