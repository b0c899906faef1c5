"""Discovery documents, with and without trailing slash, and through the official dynamic client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes.aio import client
from kubernetes.aio.dynamic import DynamicClient

from .conftest import CAPI


async def _get(api: client.ApiClient, path: str) -> Any:
    resp = await api.call_api(
        *await api.param_serialize(
            "GET", path, auth_settings=["BearerToken"], header_params={"Accept": "application/json"}
        )
    )
    data = await resp.read()
    return resp.status, json.loads(data)


@pytest.mark.parametrize("slash", ["", "/"])
async def test_core_and_group_discovery(api: client.ApiClient, slash: str) -> None:
    status, versions = await _get(api, "/api" + slash)
    assert status == 200 and versions["versions"] == ["v1"]
    status, core = await _get(api, "/api/v1" + slash)
    names = {r["name"]: r for r in core["resources"]}
    assert {"namespaces", "secrets", "configmaps", "events", "namespaces/status"} <= set(names)
    assert names["namespaces"]["namespaced"] is False and names["secrets"]["namespaced"] is True
    status, groups = await _get(api, "/apis" + slash)
    by_name = {g["name"]: g for g in groups["groups"]}
    assert by_name[CAPI]["preferredVersion"]["version"] == "v1beta2"
    assert [v["version"] for v in by_name[CAPI]["versions"]] == ["v1beta2", "v1beta1"]
    assert "apiextensions.k8s.io" in by_name
    status, group = await _get(api, f"/apis/{CAPI}" + slash)
    assert group["kind"] == "APIGroup" and group["preferredVersion"] == {
        "groupVersion": f"{CAPI}/v1beta2",
        "version": "v1beta2",
    }
    status, resources = await _get(api, f"/apis/{CAPI}/v1beta1" + slash)
    entries = {r["name"]: r for r in resources["resources"]}
    assert entries["clusters"]["kind"] == "Cluster" and entries["clusters"]["shortNames"] == ["cl"]
    assert entries["clusters"]["categories"] == ["cluster-api"] and "watch" in entries["clusters"]["verbs"]
    assert entries["clusters/status"]["verbs"] == ["get", "patch", "update"]
    assert "machinedeployments/scale" not in entries


async def test_unknown_paths_are_404_status(api: client.ApiClient) -> None:
    for path in ("/apis/nope.example.com", "/apis/nope.example.com/v1", f"/apis/{CAPI}/v9", "/api/v2", "/nothing"):
        status, body = await _get(api, path)
        assert status == 404 and body["kind"] == "Status" and body["reason"] == "NotFound", path


async def test_version(api: client.ApiClient) -> None:
    info = await client.VersionApi(api).get_code()
    assert info.major == "1" and info.git_version.startswith("v1.")


async def test_dynamic_client_discovers_crds_and_builtins(api: client.ApiClient, tmp_path: Path) -> None:
    dyn = await DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))
    clusters = await dyn.resources.get(api_version=f"{CAPI}/v1beta1", kind="Cluster")
    assert clusters.namespaced and clusters.name == "clusters" and "status" in clusters.subresources
    preferred = await dyn.resources.get(group=CAPI, kind="Cluster", preferred=True)
    assert preferred.api_version == "v1beta2"
    secrets = await dyn.resources.get(api_version="v1", kind="Secret")
    assert secrets.namespaced
    crds = await dyn.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    listing = await dyn.get(crds)
    names = {item["metadata"]["name"] for item in listing.to_dict()["items"]}
    assert f"clusters.{CAPI}" in names and "byohosts.infrastructure.cluster.x-k8s.io" in names
