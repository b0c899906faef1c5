"""shared.kube.KubeClient against the API emulator: every method, watch expiry, SSA no-op, error classes."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.errors import PermanentError, TemporaryError
from shared.kube import KubeClient, WatchEvent, WatchExpired

INFRA = "infrastructure.cluster.x-k8s.io/v1beta1"


def _configmap(name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "adapter-test"}},
        "data": data,
    }


def _byomachine(name: str, **labels: str) -> dict[str, Any]:
    # Not a ByoHost: BYOH's webhook lets only its controller and the host's agent update those.
    return {**_byohost(name, **labels), "kind": "ByoMachine"}


def _byohost(name: str, **labels: str) -> dict[str, Any]:
    meta = {"name": name, "namespace": "default", "labels": labels}
    return {"apiVersion": INFRA, "kind": "ByoHost", "metadata": meta}


@pytest.fixture
async def client(kubeconfig: Path) -> Any:
    async with await KubeClient.from_kubeconfig(kubeconfig) as c:
        yield c


async def test_server_version_and_crds(client: KubeClient) -> None:
    version = await client.server_version()
    assert "gitVersion" in version
    names = {crd["metadata"]["name"] for crd in await client.list_crds()}
    assert "clusters.cluster.x-k8s.io" in names
    assert "byohosts.infrastructure.cluster.x-k8s.io" in names


async def test_crud_on_a_builtin_kind(client: KubeClient) -> None:
    created = await client.create(_configmap("cm1", a="1"))
    assert created["metadata"]["resourceVersion"]
    got = await client.get("v1", "ConfigMap", "cm1", "default")
    assert got is not None and got["data"] == {"a": "1"}

    items, list_rv = await client.list("v1", "ConfigMap", "default", label_selector="app=adapter-test")
    assert [i["metadata"]["name"] for i in items] == ["cm1"]
    assert items[0]["kind"] == "ConfigMap" and items[0]["apiVersion"] == "v1"
    assert list_rv
    assert (await client.list("v1", "ConfigMap", "default", label_selector="app=other"))[0] == []
    by_name, _ = await client.list("v1", "ConfigMap", None, field_selector="metadata.name=cm1")
    assert len(by_name) == 1

    got["data"]["b"] = "2"
    replaced = await client.replace(got)
    assert replaced["data"] == {"a": "1", "b": "2"}
    merged = await client.patch("v1", "ConfigMap", "cm1", "default", {"data": {"c": "3"}})
    assert merged["data"]["c"] == "3"
    patched = await client.patch(
        "v1", "ConfigMap", "cm1", "default", [{"op": "remove", "path": "/data/a"}], patch_type="json"
    )
    assert "a" not in patched["data"]

    # A write with the old resourceVersion is a conflict: temporary, re-read and retry.
    with pytest.raises(TemporaryError) as stale:
        await client.replace(got)
    assert stale.value.reason == "Conflict"
    with pytest.raises(TemporaryError) as exists:
        await client.create(_configmap("cm1"))
    assert exists.value.reason == "AlreadyExists"

    assert await client.delete("v1", "ConfigMap", "cm1", "default") is True
    assert await client.get("v1", "ConfigMap", "cm1", "default") is None
    assert await client.delete("v1", "ConfigMap", "cm1", "default") is False


async def test_server_side_apply_and_status(client: KubeClient) -> None:
    first = await client.apply(_byomachine("host-a", role="x"), field_manager="adapter-test")
    again = await client.apply(_byomachine("host-a", role="x"), field_manager="adapter-test")
    # An unchanged apply is a no-op: the resourceVersion stays.
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    changed = await client.apply(_byomachine("host-a", role="y"), field_manager="adapter-test")
    assert changed["metadata"]["labels"]["role"] == "y"
    assert changed["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]

    status = {"hostinfo": {"architecture": "amd64", "osname": "linux", "osimage": "test"}}
    applied = await client.apply_status(
        {
            "apiVersion": INFRA,
            "kind": "ByoMachine",
            "metadata": {"name": "host-a", "namespace": "default"},
            "status": status,
        },
        field_manager="adapter-status",
    )
    assert applied["status"]["hostinfo"]["osimage"] == "test"
    merged = await client.patch(
        INFRA, "ByoMachine", "host-a", "default", {"status": {"hostinfo": {"osimage": "other"}}}, subresource="status"
    )
    assert merged["status"]["hostinfo"]["osimage"] == "other"
    # The main resource ignores status changes (status subresource isolation).
    main = await client.patch(INFRA, "ByoMachine", "host-a", "default", {"status": {"hostinfo": {"osimage": "nope"}}})
    assert main["status"]["hostinfo"]["osimage"] == "other"


async def test_invalid_objects_and_unknown_kinds_are_permanent(client: KubeClient) -> None:
    bad = _byohost("host-b")
    bad["spec"] = {"bootstrapSecret": {"name": 5}}
    with pytest.raises(PermanentError) as invalid:
        await client.create(bad)
    assert invalid.value.reason == "Invalid"
    assert "spec.bootstrapSecret.name" in invalid.value.message

    with pytest.raises(PermanentError) as unknown:
        await client.get("example.com/v1", "Widget", "w")
    assert unknown.value.reason == "UnknownKind"
    with pytest.raises(PermanentError) as missing_ns:
        await client.create({**_configmap("cm"), "metadata": {"name": "cm", "namespace": "no-such-namespace"}})
    assert missing_ns.value.reason == "NotFound"


async def test_watch_streams_changes_and_reports_expiry(client: KubeClient, kubeapi: Any) -> None:
    _, rv = await client.list("v1", "ConfigMap", "default")
    events: list[WatchEvent] = []

    async def consume() -> None:
        async for event in client.watch("v1", "ConfigMap", "default", resource_version=rv, timeout_seconds=30):
            if event.type == "BOOKMARK":
                continue
            events.append(event)
            if event.type == "DELETED":
                return

    task = asyncio.create_task(consume())
    await client.create(_configmap("w1", a="1"))
    await client.patch("v1", "ConfigMap", "w1", "default", {"data": {"a": "2"}})
    await client.delete("v1", "ConfigMap", "w1", "default")
    await asyncio.wait_for(task, timeout=30)
    assert [e.type for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert events[1].object["data"] == {"a": "2"}

    kubeapi.compact_history()
    with pytest.raises(WatchExpired):
        async for _ in client.watch("v1", "ConfigMap", "default", resource_version=rv, timeout_seconds=5):
            pass
    # Re-list, then watch again from the fresh resourceVersion.
    _, fresh = await client.list("v1", "ConfigMap", "default")
    await client.create(_configmap("w2"))
    async for event in client.watch("v1", "ConfigMap", "default", resource_version=fresh, timeout_seconds=30):
        if event.type == "ADDED":
            assert event.object["metadata"]["name"] == "w2"
            break


async def test_bad_token_is_unauthorized_and_never_echoed(kubeconfig: Path) -> None:
    config = yaml.safe_load(kubeconfig.read_text())
    for user in config["users"]:
        user["user"] = {"token": "not-the-token-0123456789"}
    async with await KubeClient.from_kubeconfig_dict(config) as bad:
        with pytest.raises(PermanentError) as denied:
            await bad.list("v1", "ConfigMap", "default")
    assert denied.value.reason == "Unauthorized"
    assert "not-the-token" not in str(denied.value)


async def test_unreachable_server_is_temporary(kubeconfig: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = yaml.safe_load(kubeconfig.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{port}"
    async with await KubeClient.from_kubeconfig_dict(config, timeout=5) as down:
        with pytest.raises(TemporaryError):
            await down.server_version()
