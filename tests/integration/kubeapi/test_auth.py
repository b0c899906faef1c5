"""HTTPS with the generated CA, bearer tokens (admin and bootstrap-token Secrets), 401 Status."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import aiohttp
import pytest
from kubernetes.aio import client

from sandbox.kubeapi import KubeApiServer
from tests.fixtures.kubeapi import aio_api_client


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _token_secret(
    token_id: str, secret: str, *, expires: dt.datetime | None = None, auth_usage: bool = True
) -> client.V1Secret:
    data = {"token-id": _b64(token_id), "token-secret": _b64(secret)}
    if auth_usage:
        data["usage-bootstrap-authentication"] = _b64("true")
    if expires is not None:
        data["expiration"] = _b64(expires.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return client.V1Secret(
        metadata=client.V1ObjectMeta(name=f"bootstrap-token-{token_id}", namespace="kube-system"),
        type="bootstrap.kubernetes.io/token",
        data=data,
    )


async def _status_with(kubeapi: KubeApiServer, tmp_path: Path, token: str) -> int:
    path = kubeapi.write_kubeconfig(tmp_path / f"kc-{token[:6]}", user="agent", token=token)
    async with aio_api_client(path) as api:
        try:
            await client.CoreV1Api(api).list_namespace()
        except client.ApiException as exc:
            body = json.loads(exc.body)
            assert body["kind"] == "Status" and body["reason"] == "Unauthorized"
            return int(exc.status)
    return 200


async def test_requests_without_valid_token_get_401(kubeapi: KubeApiServer, tmp_path: Path) -> None:
    assert await _status_with(kubeapi, tmp_path, "not-the-token") == 401
    assert await _status_with(kubeapi, tmp_path, kubeapi.admin_token) == 200
    configuration = client.Configuration(host=kubeapi.url)
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(kubeapi.ca_pem)
    configuration.ssl_ca_cert = str(ca_file)
    async with client.ApiClient(configuration) as api:
        with pytest.raises(client.ApiException) as err:
            await client.CustomObjectsApi(api).list_cluster_custom_object("cluster.x-k8s.io", "v1beta2", "clusters")
    assert err.value.status == 401


async def test_bootstrap_tokens(kubeapi: KubeApiServer, tmp_path: Path, core: client.CoreV1Api) -> None:
    future = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)
    await core.create_namespaced_secret("kube-system", _token_secret("abcdef", "0123456789abcdef", expires=future))
    assert await _status_with(kubeapi, tmp_path, "abcdef.0123456789abcdef") == 200
    assert await _status_with(kubeapi, tmp_path, "abcdef.0123456789abcdeX") == 401
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    await core.create_namespaced_secret("kube-system", _token_secret("expird", "0123456789abcdef", expires=past))
    assert await _status_with(kubeapi, tmp_path, "expird.0123456789abcdef") == 401
    await core.create_namespaced_secret("kube-system", _token_secret("nousag", "0123456789abcdef", auth_usage=False))
    assert await _status_with(kubeapi, tmp_path, "nousag.0123456789abcdef") == 401
    await core.delete_namespaced_secret("bootstrap-token-abcdef", "kube-system")
    assert await _status_with(kubeapi, tmp_path, "abcdef.0123456789abcdef") == 401


async def test_tls_is_verified_against_the_generated_ca(kubeapi: KubeApiServer, tmp_path: Path) -> None:
    configuration = client.Configuration(host=kubeapi.url)
    configuration.api_key = {"BearerToken": kubeapi.admin_token}
    configuration.api_key_prefix = {"BearerToken": "Bearer"}
    async with client.ApiClient(configuration) as api:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await client.CoreV1Api(api).list_namespace()
    kubeconfig = kubeapi.kubeconfig_dict()
    assert kubeconfig["clusters"][0]["cluster"]["server"] == kubeapi.url
    assert base64.b64decode(kubeconfig["clusters"][0]["cluster"]["certificate-authority-data"]) == kubeapi.ca_pem
    assert (tmp_path / "kubeconfig").stat().st_mode & 0o077 == 0
