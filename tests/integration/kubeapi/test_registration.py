"""CRDs created through the API become served resources; deleting one removes its objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes.aio import client
from kubernetes.aio.client import ApiException
from kubernetes.aio.dynamic import DynamicClient

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                        },
                    }
                },
            }
        ],
    },
}


async def test_crd_created_through_the_api_is_served(
    api: client.ApiClient, custom: client.CustomObjectsApi, tmp_path: Path
) -> None:
    ext = client.ApiextensionsV1Api(api)
    created = await ext.create_custom_resource_definition(WIDGET_CRD)
    assert created.status.accepted_names.kind == "Widget"
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}}
    await custom.create_namespaced_custom_object("example.com", "v1", "default", "widgets", widget)
    with pytest.raises(ApiException) as err:
        await custom.create_namespaced_custom_object(
            "example.com", "v1", "default", "widgets", {**widget, "metadata": {"name": "w2"}, "spec": {"size": "L"}}
        )
    assert err.value.status == 422
    dyn = await DynamicClient(api, cache_file=str(tmp_path / "cache.json"))
    widgets = await dyn.resources.get(api_version="example.com/v1", kind="Widget")
    assert widgets.namespaced and "status" in widgets.subresources
    await ext.delete_custom_resource_definition("widgets.example.com")
    with pytest.raises(ApiException) as err:
        await custom.list_namespaced_custom_object("example.com", "v1", "default", "widgets")
    assert err.value.status == 404


async def test_delete_collection_and_method_not_allowed(core: client.CoreV1Api, api: client.ApiClient) -> None:
    for i in range(3):
        await core.create_namespaced_config_map(
            "default",
            client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"cm{i}", labels={"batch": "yes" if i < 2 else "no"})),
        )
    await core.delete_collection_namespaced_config_map("default", label_selector="batch=yes")
    assert [c.metadata.name for c in (await core.list_namespaced_config_map("default")).items] == ["cm2"]
    request = await api.param_serialize(
        "POST",
        "/api/v1/namespaces/default/configmaps/cm2",
        body={},
        auth_settings=["BearerToken"],
        header_params={"Content-Type": "application/json"},
    )
    response = await api.call_api(*request)
    await response.read()
    assert response.status == 405


async def test_events_can_be_recorded(core: client.CoreV1Api) -> None:
    event = client.CoreV1Event(
        metadata=client.V1ObjectMeta(name="e1"),
        reason="Tested",
        message="hello",
        involved_object=client.V1ObjectReference(kind="ConfigMap", name="x", namespace="default"),
    )
    await core.create_namespaced_event("default", event)
    listed = await core.list_namespaced_event("default")
    assert [e.reason for e in listed.items] == ["Tested"]
