"""Server-side apply: create, update, no-op, field removal, conflicts and force, list-map merging."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes.aio import client
from kubernetes.aio.client import ApiException
from kubernetes.client import ApiClient as SyncApiClient

from .conftest import CAPI, cluster, unique

APPLY = "application/apply-patch+yaml"


async def _apply(custom: client.CustomObjectsApi, body: Any, manager: str, **kwargs: Any) -> dict[str, Any]:
    name = body["metadata"]["name"] if isinstance(body, dict) else kwargs.pop("name")
    result: dict[str, Any] | None = await custom.patch_namespaced_custom_object(
        CAPI, "v1beta2", "default", "clusters", name, body, field_manager=manager, _content_type=APPLY, **kwargs
    )
    if result is None:
        # The generated client only declares a 200 body for this call; creation answers 201 like a real server.
        result = await custom.get_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", name)
    assert result is not None
    return result


async def test_apply_creates_updates_and_is_idempotent(custom: client.CustomObjectsApi) -> None:
    name = unique("c")
    created = await _apply(custom, cluster(name, paused=True, labels={"a": "1"}), "renderer")
    assert created["spec"]["paused"] is True and created["metadata"]["generation"] == 1
    entry = created["metadata"]["managedFields"][0]
    assert (entry["manager"], entry["operation"], entry["fieldsType"]) == ("renderer", "Apply", "FieldsV1")
    assert entry["fieldsV1"] == {"f:metadata": {"f:labels": {"f:a": {}}}, "f:spec": {"f:paused": {}}}
    same = await _apply(custom, cluster(name, paused=True, labels={"a": "1"}), "renderer")
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert same["metadata"]["managedFields"] == created["metadata"]["managedFields"]
    changed = await _apply(custom, cluster(name, paused=False, labels={"a": "1"}), "renderer")
    assert changed["spec"]["paused"] is False and changed["metadata"]["generation"] == 2


async def test_apply_accepts_yaml_bodies(custom: client.CustomObjectsApi, sync_api: SyncApiClient) -> None:
    name = unique("c")
    text = (
        f"apiVersion: {CAPI}/v1beta2\nkind: Cluster\nmetadata:\n  name: {name}\n  namespace: default\n"
        "spec:\n  paused: true\n"
    )

    def send() -> int:
        request = sync_api.param_serialize(
            "PATCH",
            f"/apis/{CAPI}/v1beta2/namespaces/default/clusters/{name}",
            query_params=[("fieldManager", "yaml-user")],
            header_params={"Content-Type": APPLY, "Accept": "application/json"},
            body=text,
            auth_settings=["BearerToken"],
        )
        response = sync_api.call_api(*request)
        response.read()
        return int(response.status)

    assert await asyncio.to_thread(send) == 201
    got = await custom.get_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", name)
    assert got["spec"]["paused"] is True
    assert got["metadata"]["managedFields"][0]["manager"] == "yaml-user"


async def test_apply_removes_fields_the_manager_no_longer_sets(custom: client.CustomObjectsApi) -> None:
    name = unique("c")
    await _apply(custom, cluster(name, paused=True, labels={"a": "1", "b": "2"}), "renderer")
    await custom.patch_namespaced_custom_object(
        CAPI, "v1beta2", "default", "clusters", name, {"metadata": {"labels": {"other": "x"}}}, field_manager="someone"
    )
    body = cluster(name, labels={"a": "1"}, clusterNetwork={"serviceDomain": "cluster.local"})
    result = await _apply(custom, body, "renderer")
    assert result["metadata"]["labels"] == {"a": "1", "other": "x"}
    assert "paused" not in result["spec"] and result["spec"]["clusterNetwork"] == {"serviceDomain": "cluster.local"}


async def test_apply_conflicts_with_another_manager_unless_forced(custom: client.CustomObjectsApi) -> None:
    name = unique("c")
    await _apply(custom, cluster(name, paused=True), "renderer")
    with pytest.raises(ApiException) as err:
        await _apply(custom, cluster(name, paused=False), "intruder")
    assert err.value.status == 409 and ".spec.paused" in err.value.body and "renderer" in err.value.body
    unchanged = await _apply(custom, cluster(name, paused=True), "intruder")
    managers = {e["manager"] for e in unchanged["metadata"]["managedFields"]}
    assert managers == {"renderer", "intruder"}
    forced = await _apply(custom, cluster(name, paused=False), "intruder", force=True)
    assert forced["spec"]["paused"] is False
    owners = {e["manager"]: e["fieldsV1"] for e in forced["metadata"]["managedFields"]}
    assert owners == {"intruder": {"f:spec": {"f:paused": {}}}}


async def test_update_takes_ownership_and_apply_then_conflicts(custom: client.CustomObjectsApi) -> None:
    name = unique("c")
    await _apply(custom, cluster(name, paused=True), "renderer")
    patched = await custom.patch_namespaced_custom_object(
        CAPI, "v1beta2", "default", "clusters", name, {"spec": {"paused": False}}, field_manager="kubectl-edit"
    )
    updates = [e for e in patched["metadata"]["managedFields"] if e["operation"] == "Update"]
    assert updates[0]["manager"] == "kubectl-edit" and updates[0]["fieldsV1"] == {"f:spec": {"f:paused": {}}}
    with pytest.raises(ApiException) as err:
        await _apply(custom, cluster(name, paused=True), "renderer")
    assert err.value.status == 409


async def test_apply_merges_map_lists_by_key(custom: client.CustomObjectsApi) -> None:
    name = unique("c")
    gates_a = [{"conditionType": "A", "polarity": "Positive"}]
    await _apply(custom, cluster(name, availabilityGates=gates_a), "one")
    both = await _apply(custom, cluster(name, availabilityGates=[{"conditionType": "B"}]), "two")
    assert [g["conditionType"] for g in both["spec"]["availabilityGates"]] == ["A", "B"]
    dropped = await _apply(custom, cluster(name, paused=True), "two")
    assert dropped["spec"]["availabilityGates"] == gates_a


async def test_apply_create_answers_201(api: client.ApiClient) -> None:
    from kubernetes.aio.dynamic import DynamicClient

    dyn = await DynamicClient(api)
    clusters = await dyn.resources.get(api_version=f"{CAPI}/v1beta2", kind="Cluster")
    name = unique("c")
    created = await dyn.server_side_apply(clusters, body=cluster(name, paused=True), field_manager="dyn")
    assert created.metadata.name == name and created.spec.paused is True


async def test_apply_requires_field_manager(custom: client.CustomObjectsApi) -> None:
    name = unique("c")
    with pytest.raises(ApiException) as err:
        await custom.patch_namespaced_custom_object(
            CAPI, "v1beta2", "default", "clusters", name, cluster(name), _content_type=APPLY
        )
    assert err.value.status in (400, 422) and "fieldManager" in err.value.body
