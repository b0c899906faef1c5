"""What kubectl reads beyond CRUD, checked over HTTP without a kubectl binary: OpenAPI v3 and v2 built from the
served CRDs, Table responses with the CRDs' printer columns, PartialObjectMetadata, content negotiation."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from kubernetes.aio import client

from sandbox.kubeapi import KubeApiServer
from shared.kinds import OPERATIONS
from tests.integration.kubeapi.conftest import unique

FOCOM = "focom.nephio.org"
TABLE = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,"
    "application/json"
)  # what kubectl get sends
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
FPR_PATH = f"/apis/{FOCOM}/v1alpha1/namespaces/default/focomprovisioningrequests"


@pytest.fixture
async def http(kubeapi: KubeApiServer) -> AsyncIterator[aiohttp.ClientSession]:
    ctx = ssl.create_default_context(cadata=kubeapi.ca_pem.decode())
    headers = {"Authorization": f"Bearer {kubeapi.admin_token}"}
    async with aiohttp.ClientSession(kubeapi.url, headers=headers, connector=aiohttp.TCPConnector(ssl=ctx)) as s:
        yield s


async def get(http: aiohttp.ClientSession, path: str, accept: str = "application/json") -> tuple[int, Any]:
    async with http.get(path, headers={"Accept": accept}) as resp:
        return resp.status, json.loads(await resp.read())


def fpr(name: str, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{FOCOM}/v1alpha1",
        "kind": "FocomProvisioningRequest",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"operation": "create", "allClusters": True},
    }


async def test_openapi_v3_publishes_each_group_version_with_the_crd_schema(http: aiohttp.ClientSession) -> None:
    status, index = await get(http, "/openapi/v3", "application/json, */*")
    assert status == 200
    url = index["paths"][f"apis/{FOCOM}/v1alpha1"]["serverRelativeURL"]
    assert url.startswith(f"/openapi/v3/apis/{FOCOM}/v1alpha1?hash=")
    assert {"api/v1", "apis/cluster.x-k8s.io/v1beta1"} <= set(index["paths"])
    async with http.get(url) as resp:
        assert resp.status == 200 and "immutable" in resp.headers["Cache-Control"]
        doc = json.loads(await resp.read())
    schemas = doc["components"]["schemas"]
    kind = schemas["org.nephio.focom.v1alpha1.FocomProvisioningRequest"]
    assert kind["x-kubernetes-group-version-kind"] == [
        {"group": FOCOM, "kind": "FocomProvisioningRequest", "version": "v1alpha1"}
    ]
    assert kind["properties"]["spec"]["properties"]["operation"]["enum"] == list(OPERATIONS)
    assert kind["properties"]["metadata"] == {"$ref": f"#/components/schemas/{OBJECT_META}"}
    assert OBJECT_META in schemas
    # kubectl sends fieldValidation=Strict (server-side validation) only when the PATCH path offers it.
    item = doc["paths"][f"{FPR_PATH.replace('/default/', '/{namespace}/')}/{{name}}"]
    assert "fieldValidation" in {p["name"] for p in item["parameters"]}
    assert item["patch"]["x-kubernetes-group-version-kind"]["kind"] == "FocomProvisioningRequest"
    # Custom resources take no strategic merge patch; built-in kinds do.
    assert "application/strategic-merge-patch+json" not in item["patch"]["requestBody"]["content"]
    _, core = await get(http, index["paths"]["api/v1"]["serverRelativeURL"])
    secret_item = core["paths"]["/api/v1/namespaces/{namespace}/secrets/{name}"]
    assert "application/strategic-merge-patch+json" in secret_item["patch"]["requestBody"]["content"]
    assert (await get(http, "/openapi/v3/apis/nothing.example.org/v1"))[0] == 404


def fields(data: bytes) -> list[tuple[int, Any]]:
    """Top-level protobuf fields of ``data`` (varints as ints, length-delimited as bytes)."""
    out, pos = [], 0

    def varint() -> int:
        nonlocal pos
        value = shift = 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while pos < len(data):
        key = varint()
        wire = key & 7
        if wire == 0:
            out.append((key >> 3, varint()))
        elif wire == 1:
            out.append((key >> 3, data[pos : pos + 8]))
            pos += 8
        else:
            assert wire == 2, wire
            size = varint()
            out.append((key >> 3, data[pos : pos + size]))
            pos += size
    return out


async def test_openapi_v2_as_json_and_as_gnostic_protobuf(http: aiohttp.ClientSession) -> None:
    status, doc = await get(http, "/openapi/v2")
    assert status == 200 and doc["swagger"] == "2.0"
    definition = doc["definitions"]["org.nephio.focom.v1alpha1.FocomProvisioningRequest"]
    assert definition["properties"]["metadata"] == {"$ref": f"#/definitions/{OBJECT_META}"}
    # v2 cannot say "nullable": the type of such a field is dropped, as kube-apiserver does.
    cni = definition["properties"]["spec"]["properties"]["templateParameters"]["properties"]["cni"]
    assert "nullable" not in cni and "type" not in cni
    # What client-go asks for: gnostic's openapi.v2.Document.
    async with http.get(
        "/openapi/v2", headers={"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"}
    ) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "application/octet-stream"
        document = fields(await resp.read())
    assert (1, b"2.0") in document  # Document.swagger
    named = {}  # Document.definitions (9) -> NamedSchema (1) { name (1), value (2) }
    for _, entry in fields(dict(document)[9]):
        parts = dict(fields(entry))
        named[parts[1].decode()] = fields(parts[2])
    fpr_schema = named["org.nephio.focom.v1alpha1.FocomProvisioningRequest"]
    assert (22, b"\n\x06object") in fpr_schema  # Schema.type: TypeItem { value: "object" }
    extensions = [dict(fields(v)) for n, v in fpr_schema if n == 31]  # Schema.vendor_extension: NamedAny
    gvk = next(e for e in extensions if e[1] == b"x-kubernetes-group-version-kind")
    assert json.loads(dict(fields(gvk[2]))[2]) == [
        {"group": FOCOM, "kind": "FocomProvisioningRequest", "version": "v1alpha1"}
    ]  # Any.yaml (JSON is YAML)
    status, body = await get(http, "/openapi/v2", "application/vnd.kubernetes.protobuf")
    assert status == 406 and body["reason"] == "NotAcceptable"


async def test_tables_carry_the_printer_columns(
    http: aiohttp.ClientSession, kubeapi: KubeApiServer, api: client.ApiClient
) -> None:
    custom = client.CustomObjectsApi(api)
    name = unique("fpr")
    await custom.create_namespaced_custom_object(FOCOM, "v1alpha1", "default", "focomprovisioningrequests", fpr(name))
    await custom.patch_namespaced_custom_object_status(
        FOCOM,
        "v1alpha1",
        "default",
        "focomprovisioningrequests",
        name,
        {"status": {"phase": "Synced", "message": "3 cluster(s) fulfilled"}},
    )
    status, tbl = await get(http, FPR_PATH, TABLE)
    assert status == 200 and tbl["kind"] == "Table" and tbl["apiVersion"] == "meta.k8s.io/v1"
    columns = [(c["name"], c["priority"]) for c in tbl["columnDefinitions"]]
    assert columns == [("Name", 0), ("Phase", 0), ("Operation", 0), ("Message", 0), ("Updated", 1), ("Age", 0)]
    row = next(r for r in tbl["rows"] if r["cells"][0] == name)
    assert row["cells"][1:4] == ["Synced", "create", "3 cluster(s) fulfilled"]
    assert row["cells"][4] is None  # .status.lastUpdated is not set: an empty cell, not an error
    assert row["cells"][5].endswith("s")  # the age, rendered by the server
    assert row["object"]["kind"] == "PartialObjectMetadata" and row["object"]["metadata"]["name"] == name
    _, one = await get(http, f"{FPR_PATH}/{name}?includeObject=Object", TABLE)
    assert one["rows"][0]["object"]["spec"]["allClusters"] is True
    _, secrets = await get(http, "/api/v1/namespaces/kube-system/secrets", TABLE)
    assert [c["name"] for c in secrets["columnDefinitions"]] == ["Name", "Type", "Data", "Age"]
    _, partial = await get(http, FPR_PATH, "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io")
    assert partial["kind"] == "PartialObjectMetadataList"
    assert all(set(i) == {"kind", "apiVersion", "metadata"} for i in partial["items"])
    status, refused = await get(http, FPR_PATH, "application/vnd.kubernetes.protobuf")
    assert status == 406 and refused["reason"] == "NotAcceptable"


async def test_a_table_watch_sends_the_columns_once(http: aiohttp.ClientSession, api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    first, second = unique("fpr"), unique("fpr")
    for name in (first, second):
        await custom.create_namespaced_custom_object(
            FOCOM, "v1alpha1", "default", "focomprovisioningrequests", fpr(name)
        )
    async with http.get(f"{FPR_PATH}?watch=true&timeoutSeconds=1", headers={"Accept": TABLE}) as resp:
        events = [json.loads(line) for line in (await resp.read()).splitlines() if line.strip()]
    assert [e["type"] for e in events] == ["ADDED", "ADDED"]
    assert all(e["object"]["kind"] == "Table" and len(e["object"]["rows"]) == 1 for e in events)
    assert events[0]["object"]["columnDefinitions"] and not events[1]["object"]["columnDefinitions"]
    assert {e["object"]["rows"][0]["cells"][0] for e in events} == {first, second}
