"""Optimistic concurrency (resourceVersion preconditions), unconditional updates and no-op writes."""

from __future__ import annotations

import pytest
from kubernetes.aio import client
from kubernetes.aio.client import ApiException

from .conftest import CAPI, cluster, unique


async def test_stale_resource_version_conflicts(custom: client.CustomObjectsApi) -> None:
    name = unique("c")
    first = await custom.create_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", cluster(name))
    await custom.patch_namespaced_custom_object(
        CAPI, "v1beta2", "default", "clusters", name, {"spec": {"paused": True}}
    )
    with pytest.raises(ApiException) as err:
        await custom.replace_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", name, first)
    assert err.value.status == 409 and '"reason":"Conflict"' in err.value.body
    assert "the object has been modified" in err.value.body
    stale = {"metadata": {"resourceVersion": first["metadata"]["resourceVersion"]}, "spec": {"paused": False}}
    with pytest.raises(ApiException) as err:
        await custom.patch_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", name, stale)
    assert err.value.status == 409


async def test_custom_resource_replace_requires_resource_version(custom: client.CustomObjectsApi) -> None:
    name = unique("c")
    created = await custom.create_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", cluster(name))
    del created["metadata"]["resourceVersion"]
    with pytest.raises(ApiException) as err:
        await custom.replace_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", name, created)
    assert err.value.status == 422 and "metadata.resourceVersion" in err.value.body


async def test_configmap_replace_without_resource_version_is_unconditional(core: client.CoreV1Api) -> None:
    name = unique("cm")
    await core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"a": "1"})
    )
    replaced = await core.replace_namespaced_config_map(
        name, "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"a": "2"})
    )
    assert replaced.data == {"a": "2"}


async def test_noop_writes_keep_resource_version(custom: client.CustomObjectsApi, core: client.CoreV1Api) -> None:
    name = unique("c")
    created = await custom.create_namespaced_custom_object(
        CAPI, "v1beta2", "default", "clusters", cluster(name, paused=True)
    )
    rv = created["metadata"]["resourceVersion"]
    same = await custom.patch_namespaced_custom_object(
        CAPI, "v1beta2", "default", "clusters", name, {"spec": {"paused": True}}
    )
    assert same["metadata"]["resourceVersion"] == rv
    again = await custom.replace_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", name, same)
    assert again["metadata"]["resourceVersion"] == rv and again["metadata"]["generation"] == 1
    cm = await core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=unique("cm")), data={"a": "1"})
    )
    patched = await core.patch_namespaced_config_map(cm.metadata.name, "default", {"data": {"a": "1"}})
    assert patched.metadata.resource_version == cm.metadata.resource_version


async def test_resource_version_is_one_cluster_wide_counter(
    custom: client.CustomObjectsApi, core: client.CoreV1Api
) -> None:
    a = await custom.create_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", cluster(unique("c")))
    b = await core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=unique("cm")))
    )
    c = await custom.create_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", cluster(unique("c")))
    rvs = [
        int(a["metadata"]["resourceVersion"]),
        int(b.metadata.resource_version),
        int(c["metadata"]["resourceVersion"]),
    ]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3
    listed = await custom.list_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters")
    assert int(listed["metadata"]["resourceVersion"]) >= rvs[-1]
