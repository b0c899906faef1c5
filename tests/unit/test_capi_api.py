"""The carried CAPI/BYOH API facts: regenerated from upstream they are unchanged, and they carry no prose."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.capi_api import CARRIED_DIR, INDEX_FILE, KINDS, carried_crds, carried_schemas
from shared.capi_api.generate import default_upstream, differences, generate, main, strip_schema

CORE_GROUPS = {
    "cluster.x-k8s.io",
    "controlplane.cluster.x-k8s.io",
    "bootstrap.cluster.x-k8s.io",
    "addons.cluster.x-k8s.io",
}


@pytest.mark.upstream  # left out where the upstream CRD files are absent (a lone clone), see tests/conftest.py
def test_regenerating_from_upstream_changes_nothing() -> None:
    upstream = default_upstream()
    assert differences(generate(upstream), CARRIED_DIR) == [], "run: python -m shared.capi_api.generate"
    assert main(["--upstream", str(upstream), "--check"]) == 0
    # The carried files are the project's own description, never copies of the upstream files.
    theirs = {hashlib.sha256(p.read_bytes()).hexdigest() for p in upstream.rglob("*") if p.is_file()}
    ours = {hashlib.sha256(p.read_bytes()).hexdigest() for p in CARRIED_DIR.iterdir()}
    assert not ours & theirs


def _fake_upstream(root: Path) -> Path:
    """Upstream-shaped CRD files for every carried kind (with prose to drop), made up for the test."""
    for group, plural, kind in KINDS:
        crd = {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}", "annotations": {"tool/version": "v0"}},
            "spec": {
                "group": group,
                "names": {"kind": kind, "plural": plural, "listKind": f"{kind}List", "singular": kind.lower()},
                "scope": "Namespaced",
                "versions": [
                    {
                        "name": "v1beta1",
                        "served": True,
                        "storage": True,
                        "deprecationWarning": "words",
                        "subresources": {"status": {}},
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "description": f"{kind} is documented upstream.",
                                "properties": {
                                    "spec": {
                                        "type": "object",
                                        "properties": {
                                            "replicas": {"type": "integer", "minLength": 1, "description": "words"}
                                        },
                                    }
                                },
                            }
                        },
                    }
                ],
            },
        }
        path = root / group / f"{plural}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(crd), encoding="utf-8")
    return root


def test_check_reports_a_changed_missing_or_stray_file(tmp_path: Path) -> None:
    upstream = _fake_upstream(tmp_path / "upstream")
    out = tmp_path / "carried"
    assert main(["--upstream", str(upstream), "--out", str(out)]) == 0
    expected = generate(upstream)
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)
    assert "words" not in "".join(expected.values()) and "documented" not in "".join(expected.values())
    assert main(["--upstream", str(upstream), "--out", str(out), "--check"]) == 0
    name = "cluster.x-k8s.io_clusters.json"
    (out / name).write_text(expected[name].replace('"minLength": 1', '"minLength": 2', 1), encoding="utf-8")
    (out / "stray.json").write_text("{}\n", encoding="utf-8")
    (out / INDEX_FILE).unlink()
    assert differences(expected, out) == [name, INDEX_FILE, "stray.json"]
    assert main(["--upstream", str(upstream), "--out", str(out), "--check"]) == 1
    assert main(["--upstream", str(upstream), "--out", str(out)]) == 0
    assert differences(expected, out) == []
    assert main(["--upstream", str(tmp_path / "absent"), "--out", str(out), "--check"]) == 2


def _prose_keys(node: Any, path: str = "") -> list[str]:
    """Paths of prose keywords left in a schema (``properties`` names are field names, not keywords)."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("description", "title", "example", "examples", "externalDocs"):
                found.append(f"{path}.{key}")
            elif key == "properties":
                for name, sub in value.items():
                    found += _prose_keys(sub, f"{path}.properties.{name}")
            elif key == "x-kubernetes-validations":
                found += [
                    f"{path}.{key}[{i}]" for i, rule in enumerate(value) if set(rule) - {"rule", "reason", "fieldPath"}
                ]
            elif key not in ("default", "enum"):
                found += _prose_keys(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += _prose_keys(item, f"{path}[{i}]")
    return found


def test_every_kind_is_carried_without_prose() -> None:
    crds = carried_crds()
    assert [(c["spec"]["group"], c["spec"]["names"]["plural"], c["spec"]["names"]["kind"]) for c in crds] == list(KINDS)
    for crd in crds:
        group = crd["spec"]["group"]
        versions = [v["name"] for v in crd["spec"]["versions"]]
        assert versions == (["v1beta1", "v1beta2"] if group in CORE_GROUPS else ["v1beta1"]), crd["metadata"]["name"]
        assert set(crd["metadata"]) == {"name"}
        for ver in crd["spec"]["versions"]:
            assert _prose_keys(ver["schema"]["openAPIV3Schema"]) == [], (crd["metadata"]["name"], ver["name"])
            assert "deprecationWarning" not in ver
            assert all("description" not in col for col in ver.get("additionalPrinterColumns", []))
    assert (CARRIED_DIR / INDEX_FILE).is_file()


def test_carried_schemas_keep_the_facts_validation_needs() -> None:
    schemas = carried_schemas()
    kcp = {
        "apiVersion": "controlplane.cluster.x-k8s.io/v1beta1",
        "kind": "KubeadmControlPlane",
        "metadata": {"name": "c1-control-plane", "namespace": "default"},
        "spec": {
            "replicas": 1,
            "version": "v1.31.2",
            "kubeadmConfigSpec": {"format": "ignition-x"},
            "machineTemplate": {"infrastructureRef": {"kind": "ByoMachineTemplate", "name": "t"}},
            "rolloutStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "50%"}},
            "surprise": 1,
        },
    }
    rules = {(e.path, e.rule) for e in schemas.validate(kcp)}
    assert ("spec.kubeadmConfigSpec.format", "enum") in rules
    assert ("spec.surprise", "unknown-field") in rules
    assert len(rules) == 2, rules  # the int-or-string maxSurge is accepted
    del kcp["spec"]["rolloutStrategy"]
    defaulted = schemas.apply_defaults(kcp)
    assert defaulted["spec"]["rolloutStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}
    info = schemas.lookup("infrastructure.cluster.x-k8s.io/v1beta1", "ByoHost")
    assert info is not None and info.namespaced and info.status_subresource
    assert schemas.lookup("infrastructure.cluster.x-k8s.io/v1beta2", "ByoHost") is None


def test_strip_schema_keeps_fields_defaults_and_rules_called_like_prose() -> None:
    upstream = {
        "type": "object",
        "description": "upstream words",
        "properties": {"description": {"type": "string", "description": "more words", "maxLength": 5}},
        "default": {"description": "a default value is data"},
        "x-kubernetes-validations": [
            {"rule": "self.x == 1", "message": "words", "messageExpression": "'w'", "reason": "FieldValueInvalid"}
        ],
        "items": {"anyOf": [{"type": "integer", "description": "w"}, {"type": "string"}]},
    }
    assert strip_schema(upstream) == {
        "type": "object",
        "properties": {"description": {"type": "string", "maxLength": 5}},
        "default": {"description": "a default value is data"},
        "x-kubernetes-validations": [{"rule": "self.x == 1", "reason": "FieldValueInvalid"}],
        "items": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
    }
