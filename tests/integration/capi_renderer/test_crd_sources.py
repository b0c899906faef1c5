"""The CRDs renders are validated against: what the management cluster serves (the default), the carried
CAPI/BYOH API, or files; and the sandbox emulator serves the carried API like an installed cluster does."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sandbox.kubeapi import KubeApiServer
from services.capi_renderer.app import _schemas
from services.capi_renderer.settings import CapiRendererSettings
from shared.capi_api import carried_crds
from shared.errors import PermanentError
from shared.kube import KubeClient


async def test_the_emulator_serves_every_carried_crd_and_the_renderer_reads_them(kubeconfig: Path) -> None:
    async with await KubeClient.from_kubeconfig(kubeconfig) as client:
        served = {c["metadata"]["name"]: c for c in await client.list_crds()}
        for crd in carried_crds():
            got = served[crd["metadata"]["name"]]
            assert [v["name"] for v in got["spec"]["versions"]] == [v["name"] for v in crd["spec"]["versions"]]
            assert got["status"]["conditions"][0]["type"] == "Established"
        schemas = await _schemas(CapiRendererSettings(kubeconfig=kubeconfig), client)
    assert CapiRendererSettings(kubeconfig=kubeconfig).crd_source == "cluster"
    for api in ("cluster.x-k8s.io/v1beta1", "cluster.x-k8s.io/v1beta2"):
        assert schemas.lookup(api, "MachineDeployment") is not None
    assert schemas.lookup("infrastructure.cluster.x-k8s.io/v1beta1", "ByoMachineTemplate") is not None


async def test_a_cluster_without_capi_serves_none_and_renders_fail_by_name(tmp_path: Path) -> None:
    async with KubeApiServer(install_capi=False) as server:
        path = server.write_kubeconfig(tmp_path / "kubeconfig")
        async with await KubeClient.from_kubeconfig(path) as client:
            assert await client.list_crds() == []
            schemas = await _schemas(CapiRendererSettings(kubeconfig=path), client)
    errors = schemas.validate({"apiVersion": "cluster.x-k8s.io/v1beta1", "kind": "Cluster", "metadata": {"name": "c"}})
    assert [e.rule for e in errors] == ["unknown-kind"]


async def test_files_replace_the_carried_crd_of_the_same_name(tmp_path: Path) -> None:
    mine = next(c for c in carried_crds() if c["spec"]["names"]["kind"] == "ByoHost")
    mine["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["extra"] = {
        "type": "string"
    }
    (tmp_path / "crds").mkdir()
    (tmp_path / "crds" / "byohosts.yaml").write_text(yaml.safe_dump(mine), encoding="utf-8")
    host = {
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
        "kind": "ByoHost",
        "metadata": {"name": "h", "namespace": "default"},
        "spec": {"extra": "x"},
    }
    async with KubeApiServer(crd_dirs=[tmp_path / "crds"]) as server:
        assert server.registry.schemas.validate(host) == []
    async with KubeApiServer() as server:
        assert [e.rule for e in server.registry.schemas.validate(host)] == ["unknown-field"]


async def test_carried_and_files_sources(tmp_path: Path) -> None:
    carried = await _schemas(CapiRendererSettings(crd_source="carried"), None)
    assert carried.lookup("controlplane.cluster.x-k8s.io/v1beta2", "KubeadmControlPlane") is not None
    with pytest.raises(PermanentError, match="none given"):
        await _schemas(CapiRendererSettings(crd_source="files"), None)
    with pytest.raises(PermanentError, match="absent"):
        await _schemas(CapiRendererSettings(crd_source="files", crd_dirs=[tmp_path / "absent"]), None)
