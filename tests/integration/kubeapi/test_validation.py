"""Schema validation on every write: 422 Invalid with field causes, strict unknown fields, defaults."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.aio import client
from kubernetes.aio.client import ApiException

from .conftest import BYOH, CAPI, cluster, unique


def _status(err: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(err.body)
    return body


async def test_wrong_type_is_422_with_field_path(custom: client.CustomObjectsApi) -> None:
    name = unique("c")
    with pytest.raises(ApiException) as err:
        await custom.create_namespaced_custom_object(
            CAPI, "v1beta2", "default", "clusters", cluster(name, paused="yes")
        )
    status = _status(err.value)
    assert err.value.status == 422 and status["reason"] == "Invalid"
    assert status["message"].startswith(f'Cluster.{CAPI} "{name}" is invalid: spec.paused: Invalid value:')
    assert status["details"]["causes"][0]["field"] == "spec.paused"
    assert status["details"]["kind"] == "Cluster" and status["details"]["group"] == CAPI


async def test_enum_pattern_required_and_duplicates(custom: client.CustomObjectsApi) -> None:
    gates = [
        {"conditionType": "Ok", "polarity": "Sideways"},
        {"conditionType": "not valid!"},
        {"conditionType": "Ok"},
        {"polarity": "Positive"},
    ]
    with pytest.raises(ApiException) as err:
        await custom.create_namespaced_custom_object(
            CAPI, "v1beta2", "default", "clusters", cluster(unique("c"), availabilityGates=gates)
        )
    causes = {(c["field"], c["reason"]) for c in _status(err.value)["details"]["causes"]}
    assert ("spec.availabilityGates[0].polarity", "FieldValueNotSupported") in causes
    assert ("spec.availabilityGates[1].conditionType", "FieldValueInvalid") in causes
    assert ("spec.availabilityGates[2]", "FieldValueDuplicate") in causes
    assert ("spec.availabilityGates[3].conditionType", "FieldValueRequired") in causes


async def test_metadata_rules(custom: client.CustomObjectsApi) -> None:
    bad_name = cluster("Not_A_DNS_Name")
    with pytest.raises(ApiException) as err:
        await custom.create_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", bad_name)
    assert err.value.status == 422 and _status(err.value)["details"]["causes"][0]["field"] == "metadata.name"
    bad_label = cluster(unique("c"), labels={"bad key!": "v"})
    with pytest.raises(ApiException) as err:
        await custom.create_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", bad_label)
    assert err.value.status == 422 and "metadata.labels" in _status(err.value)["details"]["causes"][0]["field"]


async def test_unknown_field_is_rejected_strictly_by_default(custom: client.CustomObjectsApi) -> None:
    body = cluster(unique("c"), paused=True, surprise={"x": 1})
    with pytest.raises(ApiException) as err:
        await custom.create_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", body)
    status = _status(err.value)
    # A real server reports strict-decoding failures as 400 BadRequest (not 422).
    assert err.value.status == 400 and 'unknown field \\"spec.surprise\\"' in err.value.body
    assert status["details"]["causes"][0]["field"] == "spec.surprise"


async def test_field_validation_ignore_and_warn_prune(custom: client.CustomObjectsApi) -> None:
    ignored = await custom.create_namespaced_custom_object(
        CAPI, "v1beta2", "default", "clusters", cluster(unique("c"), paused=True, surprise=1), field_validation="Ignore"
    )
    assert ignored["spec"] == {"paused": True}
    response = await custom.create_namespaced_custom_object_with_http_info(
        CAPI, "v1beta2", "default", "clusters", cluster(unique("c"), paused=True, surprise=1), field_validation="Warn"
    )
    assert response.data["spec"] == {"paused": True}
    assert response.headers["Warning"] == '299 - "unknown field \\"spec.surprise\\""'


async def test_defaults_are_applied(custom: client.CustomObjectsApi) -> None:
    body = {
        "apiVersion": f"{BYOH}/v1beta1",
        "kind": "BootstrapKubeconfig",
        "metadata": {"name": unique("bk"), "namespace": "default"},
        "spec": {"apiserver": "https://127.0.0.1:6443", "certificate-authority-data": "Q0E="},
    }
    created = await custom.create_namespaced_custom_object(BYOH, "v1beta1", "default", "bootstrapkubeconfigs", body)
    assert created["spec"]["insecure-skip-tls-verify"] is False
    del body["spec"]["apiserver"]
    body["metadata"]["name"] = unique("bk")
    with pytest.raises(ApiException) as err:
        await custom.create_namespaced_custom_object(BYOH, "v1beta1", "default", "bootstrapkubeconfigs", body)
    assert _status(err.value)["details"]["causes"][0] == {
        "reason": "FieldValueRequired",
        "message": "Required value",
        "field": "spec.apiserver",
    }


async def test_invalid_update_is_rejected_and_object_unchanged(custom: client.CustomObjectsApi) -> None:
    name = unique("c")
    created = await custom.create_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", cluster(name))
    with pytest.raises(ApiException) as err:
        await custom.patch_namespaced_custom_object(
            CAPI, "v1beta2", "default", "clusters", name, {"spec": {"paused": 3}}
        )
    assert err.value.status == 422
    assert await custom.get_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", name) == created
