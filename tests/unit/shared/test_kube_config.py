"""How focom and o2ims reach Kubernetes: the configured kubeconfig, else the pod's service account."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shared.errors import PermanentError
from shared.kube import KubeClient
from shared.kube_config import connect, in_cluster_kubeconfig


async def test_without_kubeconfig_outside_a_pod_the_error_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="O2_FOCOM_KUBECONFIG") as info:
        await connect(None, setting="O2_FOCOM_KUBECONFIG", sa_dir=tmp_path)
    assert str(tmp_path / "token") in str(info.value)


async def test_a_kubeconfig_file_wins_over_the_service_account(tmp_path: Path) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "c",
        "clusters": [{"name": "x", "cluster": {"server": "https://192.0.2.7:6443"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "x", "user": "u"}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    async with await connect(path, setting="X", sa_dir=tmp_path / "absent") as client:
        assert client.server == "https://192.0.2.7:6443"


async def test_in_cluster_reads_the_service_account_files(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("sa-token")
    config = in_cluster_kubeconfig(tmp_path, {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"})
    assert config["clusters"][0]["cluster"] == {
        "server": "https://[fd00::1]:6443",
        "certificate-authority": str(tmp_path / "ca.crt"),
    }
    assert config["users"][0]["user"] == {"tokenFile": str(tmp_path / "token")}


def _kubeconfig(server: str, **cluster: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "c",
        "clusters": [{"name": "x", "cluster": {"server": server, **cluster}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "x", "user": "u"}}],
    }


@pytest.mark.parametrize(
    ("server", "no_proxy", "cluster", "expected"),
    [
        ("https://192.0.2.7:6443", "", {}, "http://proxy.example:3128"),
        ("https://192.0.2.7:6443", "192.0.2.7", {}, None),
        ("https://api.internal:6443", ".internal", {}, None),
        ("https://192.0.2.7:6443", "", {"proxy-url": "http://own.example:8080"}, "http://own.example:8080"),
    ],
)
async def test_the_environments_proxy_is_looked_up_once_not_per_request(
    monkeypatch: pytest.MonkeyPatch, server: str, no_proxy: str, cluster: dict[str, str], expected: str | None
) -> None:
    """The client's HTTP session does not consult the environment (a thread hop per request); the proxy it
    would have found is fixed when the client is built, and a kubeconfig's own ``proxy-url`` wins."""
    for name in ("https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    if no_proxy:
        monkeypatch.setenv("NO_PROXY", no_proxy)
    async with await KubeClient.from_kubeconfig_dict(_kubeconfig(server, **cluster)) as client:
        cfg = client._api.configuration
        assert cfg.proxy == expected
        assert cfg.client_session_kwargs == {"trust_env": False}
