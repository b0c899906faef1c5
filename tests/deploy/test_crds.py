"""The project's CRDs: one source of truth for the chart, structural, and accepted by the sandbox API emulator.

Static checks use ``shared.crd_schema`` (the validator the emulator runs on every write); the
emulator test goes through ``shared.kube.KubeClient`` with the chart's own in-cluster kubeconfig
(token and CA read from files, as in a pod), so that kubeconfig is exercised too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from sandbox.kubeapi import KubeApiServer
from shared.crd_schema import CrdSchemas
from shared.errors import PermanentError
from shared.kube import KubeClient
from tests.deploy.chart import CHART, KUBE_VERSIONS, RELEASE, REPO, render

CRD_DIR = REPO / "deploy" / "crds"
CHART_CRD_DIR = CHART / "crds"
EXAMPLES = sorted((REPO / "examples").glob("focom-*.yaml"))
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

PR_EXAMPLE: dict[str, Any] = {
    "apiVersion": "o2ims.provisioning.oran.org/v1alpha1",
    "kind": "ProvisioningRequest",
    "metadata": {"name": "0b7c6a52-4a4e-5d43-9f57-0b2f6f3c2f11"},
    "spec": {
        "name": "lab",
        "description": "cluster lab for FOCOM request lab-from-template",
        "templateName": "byoh-workload-cluster",
        "templateVersion": "v1.0.0",
        "templateParameters": {
            "clusterName": "lab",
            "namespace": "default",
            "k8sVersion": "v1.31.4",
            "controlPlaneEndpoint": "10.10.0.204",
            "podCidr": "10.244.0.0/16",
            "serviceCidr": "10.96.0.0/12",
            "cni": "calico",
            "hosts": {
                "masters": [{"hostId": "h10", "hostName": "node-10", "hostIp": "10.10.0.20"}],
                "workers": [{"hostId": "h11", "hostName": "node-11", "hostIp": "10.10.0.21"}],
            },
        },
    },
}
PR_STATUS: dict[str, Any] = {
    "provisioningStatus": {
        "provisioningState": "progressing",
        "provisioningStage": "hostprep",
        "provisioningUpdateTime": "2025-01-01T10:00:00Z",
        "transitions": 2,
    },
    "conditions": [
        {
            "type": "HostsPrepared",
            "status": "False",
            "reason": "InProgress",
            "message": "1/2",
            "lastTransitionTime": "2025-01-01T10:00:00Z",
        }
    ],
    "hosts": [{"hostId": "h10", "role": "control-plane", "status": "running", "step": "containerd", "released": False}],
    "observedGeneration": 1,
}


def _crds() -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(CRD_DIR.glob("*.yaml"))]


def _examples() -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text(encoding="utf-8")) for p in EXAMPLES]


def test_chart_crds_are_byte_identical_to_deploy_crds() -> None:
    source = {p.name: p.read_bytes() for p in CRD_DIR.glob("*.yaml")}
    packaged = {p.name: p.read_bytes() for p in CHART_CRD_DIR.iterdir()}
    assert set(packaged) == set(source), "deploy/helm/focom-o2ims/crds/ must hold exactly the files of deploy/crds/"
    for name, data in source.items():
        assert packaged[name] == data, (
            f"{name} differs: run `cp deploy/crds/*.yaml deploy/helm/focom-o2ims/crds/` (deploy/crds is the source)"
        )


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_crds_are_valid_custom_resource_definitions(version: str) -> None:
    for crd in _crds():
        kubernetes_validate.validate(crd, version, strict=True)


def _walk(schema: dict[str, Any], path: str) -> list[str]:
    """Paths of schema nodes that are not structural (no type, and not an allowed open node)."""
    bad = []
    if (
        "type" not in schema
        and not schema.get("x-kubernetes-int-or-string")
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        bad.append(path)
    for name, sub in (schema.get("properties") or {}).items():
        bad += _walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        bad += _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        bad += _walk(schema["additionalProperties"], f"{path}{{}}")
    return bad


def _resolves(schema: dict[str, Any], json_path: str) -> bool:
    node: dict[str, Any] | None = schema
    for part in json_path.lstrip(".").split("."):
        if part == "metadata" and node is schema:
            return True  # metadata fields are the API server's
        node = (node or {}).get("properties", {}).get(part)
        if node is None:
            return False
    return True


def test_crds_are_structural_with_status_and_printer_columns() -> None:
    for crd in _crds():
        name = crd["metadata"]["name"]
        for version in crd["spec"]["versions"]:
            schema = version["schema"]["openAPIV3Schema"]
            assert _walk(schema, "") == [], f"{name}: nodes without a type"
            assert schema["properties"]["metadata"] == {"type": "object"}, f"{name}: metadata must stay plain"
            assert version["subresources"]["status"] == {}, f"{name}: status subresource"
            columns = version["additionalPrinterColumns"]
            assert any(c["jsonPath"] == ".metadata.creationTimestamp" for c in columns)
            for column in columns:
                assert _resolves(schema, column["jsonPath"]), f"{name}: printer column {column['name']}"
        assert sum(v["storage"] for v in crd["spec"]["versions"]) == 1


def test_examples_and_a_provisioning_request_validate_against_the_crds() -> None:
    schemas = CrdSchemas.from_dirs([CRD_DIR])
    assert len(EXAMPLES) >= 9
    for path, example in zip(EXAMPLES, _examples(), strict=True):
        assert schemas.validate(example, strict=True) == [], path.name
    assert schemas.validate(PR_EXAMPLE, strict=True) == []
    assert schemas.validate({**PR_EXAMPLE, "status": PR_STATUS}, strict=True) == []
    wrong = {**_examples()[0], "spec": {"operation": "explode"}}
    assert [e.path for e in schemas.validate(wrong, strict=True)] == ["spec.operation"]


def _pod_kubeconfig(server: KubeApiServer, root: Path) -> Path:
    """The chart's in-cluster kubeconfig, with the service-account directory and API address of this test."""
    rendered = render().get("ConfigMap", f"{RELEASE}-focom-o2ims-kubeconfig")["data"]["config"]
    sa_dir = root / "serviceaccount"
    sa_dir.mkdir()
    (sa_dir / "ca.crt").write_bytes(server.ca_pem)
    (sa_dir / "token").write_text(server.admin_token, encoding="utf-8")
    text = rendered.replace(SA_DIR, str(sa_dir)).replace("https://kubernetes.default.svc", server.url)
    path = root / "config"
    path.write_text(text, encoding="utf-8")
    return path


async def test_crds_load_into_the_emulator_and_accept_the_examples(kubeapi: KubeApiServer, tmp_path: Path) -> None:
    config = _pod_kubeconfig(kubeapi, tmp_path)
    async with await KubeClient.from_kubeconfig(config) as client:
        for example in _examples():
            # Several examples are steps of one request (create, scale, delete): applied like `kubectl apply`.
            body = {**example, "metadata": {**example["metadata"], "namespace": "default"}}
            applied = await client.apply(body, field_manager="kubectl")
            assert applied["spec"]["operation"] == example["spec"]["operation"]
        items, _ = await client.list("focom.nephio.org/v1alpha1", "FocomProvisioningRequest", "default")
        assert {i["metadata"]["name"] for i in items} == {e["metadata"]["name"] for e in _examples()}
        # The CRD defaults a missing operation to create, as focom expects.
        bare = {**_examples()[0], "metadata": {"name": "no-operation", "namespace": "default"}}
        bare["spec"] = {k: v for k, v in bare["spec"].items() if k != "operation"}
        assert (await client.create(bare))["spec"]["operation"] == "create"

        # What focom writes: status through server-side apply on the status subresource.
        first = _examples()[0]
        status = {
            "apiVersion": first["apiVersion"],
            "kind": first["kind"],
            "metadata": {"name": first["metadata"]["name"], "namespace": "default"},
            "status": {
                "phase": "Creating",
                "message": "1 cluster",
                "lastUpdated": "2025-01-01T10:00:00Z",
                "children": [{"cluster": "lab", "prId": "p", "state": "pending"}],
            },
        }
        written = await client.apply_status(status, field_manager="focom")
        assert written["status"]["phase"] == "Creating"

        # What the o2ims mirror writes: a cluster-scoped ProvisioningRequest, spec then status.
        await client.apply(PR_EXAMPLE, field_manager="o2ims")
        pr = await client.apply_status({**PR_EXAMPLE, "status": PR_STATUS}, field_manager="o2ims")
        assert pr["status"]["provisioningStatus"]["provisioningState"] == "progressing"
        assert "namespace" not in pr["metadata"]

        with pytest.raises(PermanentError):
            await client.create(
                {**first, "metadata": {"name": "bad", "namespace": "default"}, "spec": {"operation": "explode"}}
            )
        with pytest.raises(PermanentError):
            await client.apply_status(
                {**PR_EXAMPLE, "status": {"provisioningStatus": {"provisioningState": "odd"}}}, field_manager="o2ims"
            )
