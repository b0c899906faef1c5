"""Generation, finalizers with deletionTimestamp, ownerReference cascades and namespace termination."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.aio import client
from kubernetes.aio.client import ApiException

from .conftest import BYOH, CAPI, byomachine, cluster, next_event, unique


async def _rv(custom: client.CustomObjectsApi) -> str:
    listed = await custom.list_cluster_custom_object(BYOH, "v1beta1", "byomachines")
    return str(listed["metadata"]["resourceVersion"])


def _gone(name: str) -> Any:
    return lambda e: e["type"] == "DELETED" and e["raw_object"]["metadata"]["name"] == name


def _owned_host(name: str, owner: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = byomachine(name)
    body["metadata"]["ownerReferences"] = [
        {
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
        }
    ]
    body["metadata"].update(extra)
    return body


async def test_generation_tracks_spec_changes_only(custom: client.CustomObjectsApi) -> None:
    name = unique("c")
    created = await custom.create_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", cluster(name))
    assert created["metadata"]["generation"] == 1
    labeled = await custom.patch_namespaced_custom_object(
        CAPI, "v1beta2", "default", "clusters", name, {"metadata": {"labels": {"a": "b"}}}
    )
    assert labeled["metadata"]["generation"] == 1
    status = await custom.patch_namespaced_custom_object_status(
        CAPI, "v1beta2", "default", "clusters", name, {"status": {"phase": "Pending"}}
    )
    assert status["metadata"]["generation"] == 1
    spec = await custom.patch_namespaced_custom_object(
        CAPI, "v1beta2", "default", "clusters", name, {"spec": {"paused": True}}
    )
    assert spec["metadata"]["generation"] == 2


async def test_finalizers_delay_deletion(custom: client.CustomObjectsApi) -> None:
    name = unique("h")
    await custom.create_namespaced_custom_object(
        BYOH,
        "v1beta1",
        "default",
        "byomachines",
        {**byomachine(name), "metadata": {"name": name, "finalizers": ["example.com/x"]}},
    )
    deleting = await custom.delete_namespaced_custom_object(BYOH, "v1beta1", "default", "byomachines", name)
    md = deleting["metadata"]
    assert md["deletionTimestamp"] and md["deletionGracePeriodSeconds"] == 0 and md["generation"] == 2
    again = await custom.delete_namespaced_custom_object(BYOH, "v1beta1", "default", "byomachines", name)
    assert again["metadata"]["resourceVersion"] == md["resourceVersion"]
    with pytest.raises(ApiException) as err:
        await custom.patch_namespaced_custom_object(
            BYOH, "v1beta1", "default", "byomachines", name, {"metadata": {"finalizers": ["example.com/x", "new/one"]}}
        )
    assert err.value.status == 422 and "no new finalizers" in err.value.body
    rv = await _rv(custom)
    await custom.patch_namespaced_custom_object(
        BYOH, "v1beta1", "default", "byomachines", name, {"metadata": {"finalizers": None}}
    )
    event = await next_event(
        custom.list_namespaced_custom_object,
        _gone(name),
        group=BYOH,
        version="v1beta1",
        namespace="default",
        plural="byomachines",
        resource_version=rv,
    )
    assert int(event["raw_object"]["metadata"]["resourceVersion"]) > int(rv)
    with pytest.raises(ApiException) as err:
        await custom.get_namespaced_custom_object(BYOH, "v1beta1", "default", "byomachines", name)
    assert err.value.status == 404


async def test_background_cascade_is_recursive_and_honours_finalizers(custom: client.CustomObjectsApi) -> None:
    owner = await custom.create_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", cluster("owner"))
    child = await custom.create_namespaced_custom_object(
        BYOH, "v1beta1", "default", "byomachines", _owned_host("child", owner)
    )
    await custom.create_namespaced_custom_object(
        BYOH, "v1beta1", "default", "byomachines", _owned_host("grandchild", child)
    )
    await custom.create_namespaced_custom_object(
        BYOH, "v1beta1", "default", "byomachines", _owned_host("held", owner, finalizers=["example.com/hold"])
    )
    await custom.create_namespaced_custom_object(BYOH, "v1beta1", "default", "byomachines", byomachine("bystander"))
    rv = await _rv(custom)
    await custom.delete_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", "owner")
    await next_event(
        custom.list_namespaced_custom_object,
        _gone("grandchild"),
        group=BYOH,
        version="v1beta1",
        namespace="default",
        plural="byomachines",
        resource_version=rv,
    )
    held = await custom.get_namespaced_custom_object(BYOH, "v1beta1", "default", "byomachines", "held")
    assert held["metadata"]["deletionTimestamp"]
    names = {
        i["metadata"]["name"]
        for i in (await custom.list_namespaced_custom_object(BYOH, "v1beta1", "default", "byomachines"))["items"]
    }
    assert names == {"held", "bystander"}


async def test_a_dependent_written_after_its_owner_went_is_collected(custom: client.CustomObjectsApi) -> None:
    # A controller acting on a stale cache re-creates what the cascade just removed, naming an owner that is
    # gone: the collector finds the owner absent and removes the dependent too, as the real one does.
    owner = await custom.create_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", cluster("went"))
    await custom.delete_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", "went")
    rv = await _rv(custom)
    await custom.create_namespaced_custom_object(BYOH, "v1beta1", "default", "byomachines", _owned_host("late", owner))
    await custom.create_namespaced_custom_object(BYOH, "v1beta1", "default", "byomachines", byomachine("unowned"))
    await next_event(
        custom.list_namespaced_custom_object,
        _gone("late"),
        group=BYOH,
        version="v1beta1",
        namespace="default",
        plural="byomachines",
        resource_version=rv,
    )
    names = {
        i["metadata"]["name"]
        for i in (await custom.list_namespaced_custom_object(BYOH, "v1beta1", "default", "byomachines"))["items"]
    }
    assert names == {"unowned"}


async def test_orphan_policy_keeps_dependents(custom: client.CustomObjectsApi) -> None:
    owner = await custom.create_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", cluster("o"))
    await custom.create_namespaced_custom_object(BYOH, "v1beta1", "default", "byomachines", _owned_host("kept", owner))
    rv = (await custom.list_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters"))["metadata"][
        "resourceVersion"
    ]
    await custom.delete_namespaced_custom_object(
        CAPI, "v1beta2", "default", "clusters", "o", propagation_policy="Orphan"
    )
    await next_event(
        custom.list_namespaced_custom_object,
        _gone("o"),
        group=CAPI,
        version="v1beta2",
        namespace="default",
        plural="clusters",
        resource_version=rv,
    )
    kept = await custom.get_namespaced_custom_object(BYOH, "v1beta1", "default", "byomachines", "kept")
    assert not kept["metadata"].get("ownerReferences")


async def test_foreground_deletes_dependents_first(custom: client.CustomObjectsApi) -> None:
    owner = await custom.create_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", cluster("fg"))
    await custom.create_namespaced_custom_object(BYOH, "v1beta1", "default", "byomachines", _owned_host("dep", owner))
    rv = await _rv(custom)
    deleting = await custom.delete_namespaced_custom_object(
        CAPI, "v1beta2", "default", "clusters", "fg", propagation_policy="Foreground"
    )
    assert "foregroundDeletion" in deleting["metadata"]["finalizers"]
    await next_event(
        custom.list_namespaced_custom_object,
        _gone("fg"),
        group=CAPI,
        version="v1beta2",
        namespace="default",
        plural="clusters",
        resource_version=rv,
    )
    dep_gone = await next_event(
        custom.list_namespaced_custom_object,
        _gone("dep"),
        group=BYOH,
        version="v1beta1",
        namespace="default",
        plural="byomachines",
        resource_version=rv,
    )
    assert int(dep_gone["raw_object"]["metadata"]["resourceVersion"]) > int(rv)


async def test_namespace_deletion_removes_its_objects(custom: client.CustomObjectsApi, core: client.CoreV1Api) -> None:
    ns = unique("ns")
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    body = byomachine("inside")
    body["metadata"]["namespace"] = ns
    await custom.create_namespaced_custom_object(BYOH, "v1beta1", ns, "byomachines", body)
    rv = (await core.list_namespace()).metadata.resource_version
    terminating = await core.delete_namespace(ns)
    assert terminating["status"]["phase"] == "Terminating"
    await next_event(
        core.list_namespace,
        lambda e: e["type"] == "DELETED" and e["raw_object"]["metadata"]["name"] == ns,
        resource_version=rv,
    )
    assert (await custom.list_namespaced_custom_object(BYOH, "v1beta1", ns, "byomachines"))["items"] == []
