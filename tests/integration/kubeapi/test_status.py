"""The /status subresource: isolation both ways, for PUT, merge patch and server-side apply."""

from __future__ import annotations

import pytest
from kubernetes.aio import client
from kubernetes.aio.client import ApiException

from .conftest import CAPI, cluster, unique


async def test_status_is_dropped_on_create_and_ignored_on_main_writes(custom: client.CustomObjectsApi) -> None:
    name = unique("c")
    body = {**cluster(name), "status": {"phase": "Provisioned"}}
    created = await custom.create_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", body)
    assert "status" not in created
    created["status"] = {"phase": "Provisioned"}
    created["spec"]["paused"] = True
    replaced = await custom.replace_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", name, created)
    assert "status" not in replaced and replaced["spec"]["paused"] is True
    patched = await custom.patch_namespaced_custom_object(
        CAPI, "v1beta2", "default", "clusters", name, {"status": {"phase": "Failed"}}
    )
    assert "status" not in patched and patched["metadata"]["resourceVersion"] == replaced["metadata"]["resourceVersion"]


async def test_status_writes_change_only_status(custom: client.CustomObjectsApi) -> None:
    name = unique("c")
    created = await custom.create_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", cluster(name))
    created["status"] = {"phase": "Provisioning"}
    created["spec"]["paused"] = True
    created["metadata"]["labels"] = {"ignored": "yes"}
    updated = await custom.replace_namespaced_custom_object_status(
        CAPI, "v1beta2", "default", "clusters", name, created
    )
    assert updated["status"] == {"phase": "Provisioning"}
    assert updated["spec"]["paused"] is False and "labels" not in updated["metadata"]
    assert updated["metadata"]["generation"] == 1
    patched = await custom.patch_namespaced_custom_object_status(
        CAPI, "v1beta2", "default", "clusters", name, {"status": {"phase": "Provisioned"}, "spec": {"paused": True}}
    )
    assert patched["status"]["phase"] == "Provisioned" and patched["spec"]["paused"] is False
    fetched = await custom.get_namespaced_custom_object_status(CAPI, "v1beta2", "default", "clusters", name)
    assert fetched["status"]["phase"] == "Provisioned"


async def test_status_server_side_apply_has_its_own_manager(custom: client.CustomObjectsApi) -> None:
    name = unique("c")
    await custom.create_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", cluster(name))
    applied = await custom.patch_namespaced_custom_object_status(
        CAPI,
        "v1beta2",
        "default",
        "clusters",
        name,
        {
            "apiVersion": f"{CAPI}/v1beta2",
            "kind": "Cluster",
            "metadata": {"name": name, "namespace": "default"},
            "status": {"phase": "Provisioned"},
            "spec": {"paused": True},
        },
        field_manager="capi-sim",
        _content_type="application/apply-patch+yaml",
    )
    assert applied["status"]["phase"] == "Provisioned" and applied["spec"]["paused"] is False
    entry = next(e for e in applied["metadata"]["managedFields"] if e["manager"] == "capi-sim")
    assert entry["operation"] == "Apply" and entry["subresource"] == "status"
    assert entry["fieldsV1"] == {"f:status": {"f:phase": {}}}


async def test_status_of_kind_without_status_subresource_is_404(custom: client.CustomObjectsApi) -> None:
    template = {
        "apiVersion": "bootstrap.cluster.x-k8s.io/v1beta2",
        "kind": "KubeadmConfigTemplate",
        "metadata": {"name": unique("t"), "namespace": "default"},
        "spec": {"template": {"spec": {"format": "cloud-config"}}},
    }
    await custom.create_namespaced_custom_object(
        "bootstrap.cluster.x-k8s.io", "v1beta2", "default", "kubeadmconfigtemplates", template
    )
    with pytest.raises(ApiException) as err:
        await custom.get_namespaced_custom_object_status(
            "bootstrap.cluster.x-k8s.io", "v1beta2", "default", "kubeadmconfigtemplates", template["metadata"]["name"]
        )
    assert err.value.status == 404
