"""List filtering (label and field selectors) and pagination with limit/continue."""

from __future__ import annotations

import pytest
from kubernetes.aio import client
from kubernetes.aio.client import ApiException

from .conftest import BYOH, byohost


@pytest.fixture
async def hosts(custom: client.CustomObjectsApi) -> None:
    labels = {
        "h1": {"role": "cp", "zone": "a"},
        "h2": {"role": "worker", "zone": "b"},
        "h3": {"role": "worker"},
        "h4": {},
    }
    for name, lab in labels.items():
        await custom.create_namespaced_custom_object(BYOH, "v1beta1", "default", "byohosts", byohost(name, lab))


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("role=worker", ["h2", "h3"]),
        ("role==cp", ["h1"]),
        ("role!=worker", ["h1", "h4"]),
        ("zone in (a, b)", ["h1", "h2"]),
        ("zone notin (a)", ["h2", "h3", "h4"]),
        ("zone", ["h1", "h2"]),
        ("!zone", ["h3", "h4"]),
        ("role=worker,!zone", ["h3"]),
    ],
)
async def test_label_selector_operators(
    hosts: None, custom: client.CustomObjectsApi, selector: str, expected: list[str]
) -> None:
    listed = await custom.list_namespaced_custom_object(BYOH, "v1beta1", "default", "byohosts", label_selector=selector)
    assert [i["metadata"]["name"] for i in listed["items"]] == expected


async def test_field_selectors(hosts: None, custom: client.CustomObjectsApi, core: client.CoreV1Api) -> None:
    named = await custom.list_cluster_custom_object(BYOH, "v1beta1", "byohosts", field_selector="metadata.name=h2")
    assert [i["metadata"]["name"] for i in named["items"]] == ["h2"]
    others = await custom.list_cluster_custom_object(
        BYOH, "v1beta1", "byohosts", field_selector="metadata.namespace=default,metadata.name!=h2"
    )
    assert [i["metadata"]["name"] for i in others["items"]] == ["h1", "h3", "h4"]
    with pytest.raises(ApiException) as err:
        await custom.list_cluster_custom_object(BYOH, "v1beta1", "byohosts", field_selector="spec.x=1")
    assert err.value.status == 400
    namespaces = await core.list_namespace(field_selector="metadata.name=kube-system")
    assert [n.metadata.name for n in namespaces.items] == ["kube-system"]


async def test_invalid_label_selector_is_400(custom: client.CustomObjectsApi) -> None:
    with pytest.raises(ApiException) as err:
        await custom.list_namespaced_custom_object(BYOH, "v1beta1", "default", "byohosts", label_selector="a in b")
    assert err.value.status == 400


async def test_pagination(hosts: None, custom: client.CustomObjectsApi) -> None:
    first = await custom.list_namespaced_custom_object(BYOH, "v1beta1", "default", "byohosts", limit=3)
    assert [i["metadata"]["name"] for i in first["items"]] == ["h1", "h2", "h3"]
    assert first["metadata"]["remainingItemCount"] == 1 and first["metadata"]["continue"]
    second = await custom.list_namespaced_custom_object(
        BYOH, "v1beta1", "default", "byohosts", limit=3, _continue=first["metadata"]["continue"]
    )
    assert [i["metadata"]["name"] for i in second["items"]] == ["h4"]
    assert not second["metadata"].get("continue")
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
