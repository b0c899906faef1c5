"""The Kubernetes error classifier: server answers and transport failures land on the right side of the tree."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
from kubernetes.aio.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from shared.errors import PermanentError, TemporaryError, classify
from shared.kube import ApiResource
from shared.kube_errors import api_error, parse_status


def _api_exc(code: int, reason: str, message: str, headers: dict[str, str] | None = None) -> ApiException:
    exc = ApiException(status=code, reason=reason)
    exc.body = json.dumps(
        {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason, "message": message}
    )
    exc.headers = headers or {}
    return exc


@pytest.mark.parametrize(
    ("code", "reason"),
    [(409, "Conflict"), (409, "AlreadyExists"), (500, "InternalError"), (503, "ServiceUnavailable"), (504, "Timeout")],
)
def test_retryable_answers_are_temporary(code: int, reason: str) -> None:
    err = classify(_api_exc(code, reason, "try again"))
    assert isinstance(err, TemporaryError)
    assert err.reason == reason
    assert "try again" in err.message


@pytest.mark.parametrize(
    ("code", "reason"),
    [(400, "BadRequest"), (403, "Forbidden"), (404, "NotFound"), (415, "UnsupportedMediaType"), (422, "Invalid")],
)
def test_request_errors_are_permanent_with_the_server_message(code: int, reason: str) -> None:
    err = classify(_api_exc(code, reason, 'Cluster.cluster.x-k8s.io "c1" is invalid: spec.x: Invalid value'))
    assert isinstance(err, PermanentError)
    assert err.reason == reason
    assert "spec.x: Invalid value" in err.message


def test_unauthorized_is_permanent_and_named() -> None:
    err = classify(_api_exc(401, "Unauthorized", "Unauthorized"))
    assert isinstance(err, PermanentError)
    assert err.reason == "Unauthorized"


def test_too_many_requests_honours_retry_after() -> None:
    err = classify(_api_exc(429, "TooManyRequests", "slow down", {"Retry-After": "7"}))
    assert isinstance(err, TemporaryError)
    assert err.delay == 7.0
    assert isinstance(classify(_api_exc(429, "TooManyRequests", "x", {"Retry-After": "soon"})), TemporaryError)


def test_watch_error_events_without_body_are_understood() -> None:
    # aio Watch turns an ERROR event into ApiException(status, reason="<Reason>: <message>").
    err = classify(ApiException(status=410, reason="Expired: too old resource version: 5 (100)"))
    assert isinstance(err, TemporaryError)
    assert err.reason == "Expired"
    assert "too old resource version" in err.message


def test_transport_failures() -> None:
    assert isinstance(classify(aiohttp.ServerDisconnectedError()), TemporaryError)
    assert isinstance(classify(aiohttp.ClientPayloadError("cut")), TemporaryError)
    assert isinstance(classify(TimeoutError()), TemporaryError)
    err = classify(ConfigException("Invalid kube-config file. No configuration found."))
    assert isinstance(err, PermanentError)
    assert err.reason == "InvalidKubeconfig"


def test_messages_never_carry_the_request_or_headers() -> None:
    exc = _api_exc(422, "Invalid", "spec.replicas: Invalid value")
    exc.headers = {"Authorization": "Bearer s3cr3t-token"}
    err = classify(exc)
    assert "s3cr3t" not in err.message
    assert "s3cr3t" not in str(err)


def test_parse_status_ignores_non_status_bodies() -> None:
    assert parse_status(b"not json") == {}
    assert parse_status(json.dumps({"kind": "ConfigMap"})) == {}
    assert parse_status(None) == {}
    assert api_error(418, {}).reason == "Http418"


def test_api_resource_paths() -> None:
    cm = ApiResource("v1", "ConfigMap", "configmaps", True, frozenset())
    assert cm.path("ns1", "a") == "/api/v1/namespaces/ns1/configmaps/a"
    assert cm.path(None) == "/api/v1/configmaps"
    cluster = ApiResource("cluster.x-k8s.io/v1beta1", "Cluster", "clusters", True, frozenset({"status"}))
    assert cluster.path("d", "c1", "status") == "/apis/cluster.x-k8s.io/v1beta1/namespaces/d/clusters/c1/status"
    crd = ApiResource(
        "apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", False, frozenset()
    )
    assert crd.path("ignored", "x") == "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/x"


async def test_unreadable_kubeconfig_is_permanent(tmp_path: Path) -> None:
    from shared.kube import KubeClient

    with pytest.raises(PermanentError) as missing:
        await KubeClient.from_kubeconfig(tmp_path / "absent")
    assert missing.value.reason == "InvalidKubeconfig"
    (tmp_path / "list").write_text("- a\n- b\n")
    with pytest.raises(PermanentError):
        await KubeClient.from_kubeconfig(tmp_path / "list")
