"""Create, get, list, replace, patch and delete for a custom resource, a Secret and a ConfigMap."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from kubernetes.aio import client
from kubernetes.aio.client import ApiException

from .conftest import CAPI, cluster, unique

JSON_PATCH = "application/json-patch+json"


async def test_custom_resource_lifecycle(custom: client.CustomObjectsApi) -> None:
    name = unique("c")
    created = await custom.create_namespaced_custom_object(
        CAPI, "v1beta2", "default", "clusters", cluster(name, paused=False)
    )
    md = created["metadata"]
    assert md["uid"] and md["creationTimestamp"] and md["generation"] == 1 and int(md["resourceVersion"]) > 0
    got = await custom.get_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", name)
    assert got == created
    listed = await custom.list_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters")
    assert [i["metadata"]["name"] for i in listed["items"]] == [name]
    assert listed["kind"] == "ClusterList" and listed["items"][0]["apiVersion"] == f"{CAPI}/v1beta2"
    got["spec"]["paused"] = True
    replaced = await custom.replace_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", name, got)
    assert replaced["spec"]["paused"] is True and replaced["metadata"]["generation"] == 2
    assert int(replaced["metadata"]["resourceVersion"]) > int(md["resourceVersion"])
    merged = await custom.patch_namespaced_custom_object(
        CAPI, "v1beta2", "default", "clusters", name, {"metadata": {"labels": {"team": "ran"}}}
    )
    assert merged["metadata"]["labels"] == {"team": "ran"} and merged["metadata"]["generation"] == 2
    patched = await custom.patch_namespaced_custom_object(
        CAPI,
        "v1beta2",
        "default",
        "clusters",
        name,
        [
            {"op": "test", "path": "/spec/paused", "value": True},
            {"op": "replace", "path": "/spec/paused", "value": False},
        ],
        _content_type=JSON_PATCH,
    )
    assert patched["spec"]["paused"] is False and patched["metadata"]["generation"] == 3
    deleted = await custom.delete_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", name)
    assert deleted["metadata"]["name"] == name
    with pytest.raises(ApiException) as err:
        await custom.get_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", name)
    assert err.value.status == 404


async def test_one_object_readable_through_every_served_version(custom: client.CustomObjectsApi) -> None:
    name = unique("c")
    await custom.create_namespaced_custom_object(
        CAPI, "v1beta1", "default", "clusters", cluster(name, version="v1beta1", paused=True)
    )
    old = await custom.get_namespaced_custom_object(CAPI, "v1beta1", "default", "clusters", name)
    new = await custom.get_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", name)
    assert old["apiVersion"] == f"{CAPI}/v1beta1" and new["apiVersion"] == f"{CAPI}/v1beta2"
    assert old["spec"] == new["spec"] and old["metadata"] == new["metadata"]
    across = await custom.list_cluster_custom_object(CAPI, "v1beta2", "clusters")
    assert {i["metadata"]["name"] for i in across["items"]} == {name}


async def test_create_errors(custom: client.CustomObjectsApi) -> None:
    name = unique("c")
    await custom.create_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", cluster(name))
    with pytest.raises(ApiException) as err:
        await custom.create_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", cluster(name))
    assert err.value.status == 409 and '"reason":"AlreadyExists"' in err.value.body
    with pytest.raises(ApiException) as err:
        body = cluster(unique())
        body["metadata"]["namespace"] = "missing-ns"
        await custom.create_namespaced_custom_object(CAPI, "v1beta2", "missing-ns", "clusters", body)
    assert err.value.status == 404 and 'namespaces \\"missing-ns\\" not found' in err.value.body
    generated = await custom.create_namespaced_custom_object(
        CAPI,
        "v1beta2",
        "default",
        "clusters",
        {
            "apiVersion": f"{CAPI}/v1beta2",
            "kind": "Cluster",
            "metadata": {"generateName": "gen-"},
            "spec": {"paused": True},
        },
    )
    assert generated["metadata"]["name"].startswith("gen-") and len(generated["metadata"]["name"]) == 9


async def test_strategic_merge_patch_is_415_for_custom_resources(custom: client.CustomObjectsApi) -> None:
    name = unique("c")
    await custom.create_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", cluster(name))
    with pytest.raises(ApiException) as err:
        await custom.patch_namespaced_custom_object(
            CAPI,
            "v1beta2",
            "default",
            "clusters",
            name,
            {"spec": {}},
            _content_type="application/strategic-merge-patch+json",
        )
    assert err.value.status == 415


async def test_json_patch_failed_test_is_422(custom: client.CustomObjectsApi) -> None:
    name = unique("c")
    await custom.create_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", cluster(name, paused=True))
    with pytest.raises(ApiException) as err:
        await custom.patch_namespaced_custom_object(
            CAPI,
            "v1beta2",
            "default",
            "clusters",
            name,
            [{"op": "test", "path": "/spec/paused", "value": False}],
            _content_type=JSON_PATCH,
        )
    assert err.value.status == 422


async def test_secret_lifecycle(core: client.CoreV1Api) -> None:
    name = unique("s")
    created = await core.create_namespaced_secret(
        "default",
        client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data={"user": "admin"}, data={"raw": "AAE="}),
    )
    assert created.type == "Opaque" and created.string_data is None
    assert base64.b64decode(created.data["user"]) == b"admin" and created.data["raw"] == "AAE="
    created.data["extra"] = base64.b64encode(b"x").decode()
    replaced = await core.replace_namespaced_secret(name, "default", created)
    assert set(replaced.data) == {"user", "raw", "extra"}
    patched = await core.patch_namespaced_secret(name, "default", {"stringData": {"user": "root"}})
    assert base64.b64decode(patched.data["user"]) == b"root"
    listed = await core.list_namespaced_secret("default")
    assert name in [s.metadata.name for s in listed.items]
    status = await core.delete_namespaced_secret(name, "default")
    assert status["kind"] == "Status" and status["status"] == "Success"
    with pytest.raises(ApiException) as err:
        await core.read_namespaced_secret(name, "default")
    assert err.value.status == 404


async def test_secret_rejects_bad_base64(core: client.CoreV1Api, api: client.ApiClient) -> None:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": unique("s")},
        "data": {"k": "not base64!"},
    }
    with pytest.raises(ApiException) as err:
        await core.create_namespaced_secret("default", body)
    assert err.value.status == 400


async def test_configmap_lifecycle(core: client.CoreV1Api) -> None:
    name = unique("cm")
    cm = await core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels={"app": "x"}), data={"a": "1"})
    )
    cm.data["b"] = "2"
    cm = await core.replace_namespaced_config_map(name, "default", cm)
    assert cm.data == {"a": "1", "b": "2"}
    cm = await core.patch_namespaced_config_map(name, "default", [{"op": "remove", "path": "/data/a"}])
    assert cm.data == {"b": "2"}
    with pytest.raises(ApiException) as err:
        await core.create_namespaced_config_map(
            "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={})
        )
    assert err.value.status == 409
    await core.delete_namespaced_config_map(name, "default")
    assert name not in [c.metadata.name for c in (await core.list_namespaced_config_map("default")).items]


async def test_namespaces(core: client.CoreV1Api) -> None:
    names = {n.metadata.name for n in (await core.list_namespace()).items}
    assert {"default", "kube-system"} <= names
    ns = await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=unique("ns"))))
    assert ns.status.phase == "Active"
    with pytest.raises(ApiException) as err:
        await core.delete_namespace("default")
    assert err.value.status == 403
