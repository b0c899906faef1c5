"""Unit tests for shared.crd_schema: the real CAPI/BYOH CRDs plus small synthetic schemas for each keyword."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from shared.crd_schema import CrdSchemas, FieldError, ResourceInfo

CAPI = "cluster.x-k8s.io"


@pytest.fixture(scope="module")
def real(served_schemas: CrdSchemas) -> CrdSchemas:
    return served_schemas


def _paths(errors: list[FieldError]) -> dict[str, str]:
    return {e.path: e.rule for e in errors}


def kcp(**spec: Any) -> dict[str, Any]:
    body = {
        "replicas": 3,
        "version": "v1.31.0",
        "machineTemplate": {
            "spec": {
                "infrastructureRef": {
                    "apiGroup": "infrastructure.cluster.x-k8s.io",
                    "kind": "ByoMachineTemplate",
                    "name": "c1-cp",
                }
            }
        },
        "kubeadmConfigSpec": {"clusterConfiguration": {"apiServer": {"certSANs": ["10.0.0.10"]}}},
    }
    body.update(spec)
    return {
        "apiVersion": "controlplane.cluster.x-k8s.io/v1beta2",
        "kind": "KubeadmControlPlane",
        "metadata": {"name": "c1-control-plane", "namespace": "default"},
        "spec": body,
    }


VALID: list[dict[str, Any]] = [
    {
        "apiVersion": f"{CAPI}/v1beta2",
        "kind": "Cluster",
        "metadata": {"name": "c1", "labels": {"cni": "calico"}},
        "spec": {
            "clusterNetwork": {"pods": {"cidrBlocks": ["192.168.0.0/16"]}},
            "controlPlaneRef": {
                "apiGroup": "controlplane.cluster.x-k8s.io",
                "kind": "KubeadmControlPlane",
                "name": "c1-control-plane",
            },
        },
    },
    {
        "apiVersion": f"{CAPI}/v1beta1",
        "kind": "Cluster",
        "metadata": {"name": "c1"},
        "spec": {
            "controlPlaneRef": {
                "apiVersion": "controlplane.cluster.x-k8s.io/v1beta1",
                "kind": "KubeadmControlPlane",
                "name": "c1-control-plane",
            }
        },
    },
    kcp(),
    {
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
        "kind": "ByoCluster",
        "metadata": {"name": "c1"},
        "spec": {"controlPlaneEndpoint": {"host": "10.0.0.10", "port": 6443}},
    },
    {
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
        "kind": "ByoMachineTemplate",
        "metadata": {"name": "c1-cp"},
        "spec": {"template": {"spec": {"selector": {"matchLabels": {"o2ims.oran.org/host-id": "h1"}}}}},
    },
    {
        "apiVersion": "addons.cluster.x-k8s.io/v1beta2",
        "kind": "ClusterResourceSet",
        "metadata": {"name": "cni"},
        "spec": {
            "clusterSelector": {"matchLabels": {"cni": "calico"}},
            "resources": [{"kind": "ConfigMap", "name": "calico"}],
        },
    },
]


@pytest.mark.parametrize("obj", VALID, ids=lambda o: f"{o['kind']}-{o['apiVersion'].split('/')[1]}")
def test_valid_objects_pass(real: CrdSchemas, obj: dict[str, Any]) -> None:
    assert real.validate(obj) == []


def test_resources_and_lookups(real: CrdSchemas) -> None:
    info = real.lookup(f"{CAPI}/v1beta1", "Cluster")
    assert isinstance(info, ResourceInfo) and info.plural == "clusters" and info.namespaced
    assert info.status_subresource and not info.storage and info.short_names == ("cl",)
    assert info.api_version == f"{CAPI}/v1beta1" and info.categories == ("cluster-api",)
    assert real.lookup_plural(CAPI, "v1beta2", "clusters") == real.lookup(f"{CAPI}/v1beta2", "Cluster")
    assert {(r.kind, r.version) for r in real.resources()} >= {("Cluster", "v1beta1"), ("ByoHost", "v1beta1")}
    assert real.schema(f"{CAPI}/v1beta2", "Cluster")["type"] == "object"  # type: ignore[index]
    assert real.lookup(f"{CAPI}/v9", "Cluster") is None and real.schema("x/v1", "Nope") is None
    assert len(real.crds()) == len({c["metadata"]["name"] for c in real.crds()})


def test_wrong_type(real: CrdSchemas) -> None:
    errors = real.validate(kcp(replicas="two"))
    assert _paths(errors) == {"spec.replicas": "type"}
    assert 'spec.replicas in body must be of type integer: "string"' in errors[0].message


def test_missing_required(real: CrdSchemas) -> None:
    obj = kcp()
    del obj["spec"]["version"]
    del obj["spec"]["machineTemplate"]["spec"]["infrastructureRef"]["name"]
    assert _paths(real.validate(obj)) == {
        "spec.version": "required",
        "spec.machineTemplate.spec.infrastructureRef.name": "required",
    }


def test_unknown_field_strict_and_lenient(real: CrdSchemas) -> None:
    obj = kcp()
    obj["spec"]["kubeadmConfigSpec"]["clusterConfiguration"]["apiServer"]["bogus"] = 1
    obj["spec"]["machineTemplate"]["spec"]["infrastructureRef"]["apiVersion"] = "v1beta1-style"
    path = "spec.kubeadmConfigSpec.clusterConfiguration.apiServer.bogus"
    assert _paths(real.validate(obj)) == {
        path: "unknown-field",
        "spec.machineTemplate.spec.infrastructureRef.apiVersion": "unknown-field",
    }
    assert real.validate(obj, strict=False) == []
    pruned, dropped = real.prune_unknown(obj)
    assert (
        path in {e.path for e in dropped}
        and "bogus" not in pruned["spec"]["kubeadmConfigSpec"]["clusterConfiguration"]["apiServer"]
    )


def test_enum_and_pattern_with_list_paths(real: CrdSchemas) -> None:
    obj = copy.deepcopy(VALID[0])
    obj["spec"]["availabilityGates"] = [{"conditionType": "ok", "polarity": "Maybe"}, {"conditionType": "a b"}]
    assert _paths(real.validate(obj)) == {
        "spec.availabilityGates[0].polarity": "enum",
        "spec.availabilityGates[1].conditionType": "pattern",
    }


def test_list_map_duplicates(real: CrdSchemas) -> None:
    obj = copy.deepcopy(VALID[0])
    obj["spec"]["availabilityGates"] = [{"conditionType": "A"}, {"conditionType": "B"}, {"conditionType": "A"}]
    assert _paths(real.validate(obj)) == {"spec.availabilityGates[2]": "x-kubernetes-list-type"}


def test_int_or_string(real: CrdSchemas) -> None:
    for value in (1, "25%"):
        assert (
            real.validate(kcp(rollout={"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": value}}}))
            == []
        )
    errors = real.validate(kcp(rollout={"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1.5}}}))
    assert _paths(errors) == {"spec.rollout.strategy.rollingUpdate.maxSurge": "x-kubernetes-int-or-string"}


def test_format_int32_range(real: CrdSchemas) -> None:
    assert _paths(real.validate(kcp(replicas=2**31))) == {"spec.replicas": "format"}


def test_unknown_kind_is_one_error(real: CrdSchemas) -> None:
    errors = real.validate({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
    assert [(e.path, e.rule) for e in errors] == [("kind", "unknown-kind")]


def test_metadata_rules(real: CrdSchemas) -> None:
    obj = copy.deepcopy(VALID[3])
    obj["metadata"] = {
        "generateName": "c-",
        "labels": {"bad key": "x", "ok": "not ok!"},
        "annotations": {"a": 1},
        "extra": True,
    }
    assert _paths(real.validate(obj)) == {
        "metadata.labels[bad key]": "metadata",
        "metadata.labels[ok]": "metadata",
        "metadata.annotations[a]": "type",
        "metadata.extra": "unknown-field",
    }
    obj["metadata"] = {"name": "UPPER"}
    assert _paths(real.validate(obj)) == {"metadata.name": "metadata"}
    obj["metadata"] = {}
    assert _paths(real.validate(obj)) == {"metadata.name": "required"}


def test_nulls_are_stripped_and_defaults_applied(real: CrdSchemas) -> None:
    obj = {
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
        "kind": "BootstrapKubeconfig",
        "metadata": {"name": "bk"},
        "spec": {
            "apiserver": "https://10.0.0.1:6443",
            "certificate-authority-data": "Q0E=",
            "insecure-skip-tls-verify": None,
        },
    }
    original = copy.deepcopy(obj)
    assert real.validate(obj) == []
    defaulted = real.apply_defaults(obj)
    assert defaulted["spec"]["insecure-skip-tls-verify"] is False and obj == original
    assert defaulted["metadata"] == obj["metadata"] and defaulted["metadata"] is not obj["metadata"]


def _synthetic(schema: dict[str, Any]) -> CrdSchemas:
    return CrdSchemas.from_crd_objects(
        [
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": "widgets.example.com"},
                "spec": {
                    "group": "example.com",
                    "scope": "Cluster",
                    "names": {"kind": "Widget", "plural": "widgets"},
                    "versions": [
                        {
                            "name": "v1",
                            "served": True,
                            "storage": True,
                            "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": schema}}},
                        }
                    ],
                },
            }
        ]
    )


def _widget(spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec}


def test_preserve_unknown_fields_stops_unknown_checks() -> None:
    schemas = _synthetic(
        {
            "type": "object",
            "properties": {
                "free": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {"known": {"type": "object", "properties": {"n": {"type": "integer"}}}},
                }
            },
        }
    )
    assert schemas.validate(_widget({"free": {"anything": {"deep": [1, 2]}, "known": {"n": 1}}})) == []
    assert _paths(schemas.validate(_widget({"free": {"known": {"n": 1, "x": 2}}}))) == {
        "spec.free.known.x": "unknown-field"
    }


def test_nullable() -> None:
    schemas = _synthetic(
        {
            "type": "object",
            "required": ["must"],
            "properties": {
                "maybe": {"type": "string", "nullable": True},
                "must": {"type": "string"},
                "list": {"type": "array", "items": {"type": "string"}},
                "nlist": {"type": "array", "items": {"type": "string", "nullable": True}},
            },
        }
    )
    assert schemas.validate(_widget({"maybe": None, "must": "x", "nlist": [None]})) == []
    assert _paths(schemas.validate(_widget({"must": None, "list": ["a", None]}))) == {
        "spec.must": "required",
        "spec.list[1]": "nullable",
    }
    assert schemas.apply_defaults(_widget({"maybe": None, "must": None}))["spec"] == {"maybe": None}


def test_additional_properties_and_sets() -> None:
    schemas = _synthetic(
        {
            "type": "object",
            "properties": {
                "counts": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
                "closed": {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False},
                "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set", "maxItems": 3},
            },
        }
    )
    errors = schemas.validate(
        _widget({"counts": {"x": 1, "y": -1, "z": "no"}, "closed": {"a": "ok", "b": 1}, "tags": ["a", "b", "a", "c"]})
    )
    assert _paths(errors) == {
        "spec.counts[y]": "minimum",
        "spec.counts[z]": "type",
        "spec.closed.b": "unknown-field",
        "spec.tags": "maxItems",
        "spec.tags[2]": "x-kubernetes-list-type",
    }


def test_combinators_and_bounds() -> None:
    schemas = _synthetic(
        {
            "type": "object",
            "properties": {
                "either": {"type": "string", "anyOf": [{"pattern": "^a"}, {"pattern": "^b"}]},
                "one": {"type": "integer", "oneOf": [{"minimum": 5}, {"maximum": 10}]},
                "never": {"type": "string", "not": {"enum": ["bad"]}},
                "all": {"type": "string", "allOf": [{"minLength": 2}, {"maxLength": 3}]},
                "excl": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
                "props": {
                    "type": "object",
                    "minProperties": 1,
                    "maxProperties": 1,
                    "additionalProperties": {"type": "string"},
                },
            },
        }
    )
    assert (
        schemas.validate(
            _widget({"either": "bee", "one": 11, "never": "good", "all": "abc", "excl": 0.5, "props": {"k": "v"}})
        )
        == []
    )
    errors = schemas.validate(
        _widget({"either": "cat", "one": 7, "never": "bad", "all": "abcd", "excl": 0, "props": {}})
    )
    assert _paths(errors) == {
        "spec.either": "anyOf",
        "spec.one": "oneOf",
        "spec.never": "not",
        "spec.all": "maxLength",
        "spec.excl": "minimum",
        "spec.props": "minProperties",
    }


def test_embedded_resource() -> None:
    schemas = _synthetic(
        {
            "type": "object",
            "properties": {
                "inner": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "x-kubernetes-preserve-unknown-fields": True,
                }
            },
        }
    )
    assert (
        schemas.validate(
            _widget({"inner": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b"}}})
        )
        == []
    )
    assert _paths(schemas.validate(_widget({"inner": {"kind": "ConfigMap", "metadata": {"name": "X!"}}}))) == {
        "spec.inner.apiVersion": "x-kubernetes-embedded-resource",
        "spec.inner.metadata.name": "metadata",
    }


def test_nested_defaults_apply_inside_defaults() -> None:
    schemas = _synthetic(
        {
            "type": "object",
            "properties": {
                "outer": {
                    "type": "object",
                    "default": {},
                    "properties": {
                        "port": {"type": "integer", "default": 6443},
                        "items": {
                            "type": "array",
                            "items": {"type": "object", "properties": {"on": {"type": "boolean", "default": True}}},
                        },
                    },
                }
            },
        }
    )
    assert schemas.apply_defaults(_widget({}))["spec"] == {"outer": {"port": 6443}}
    assert schemas.apply_defaults(_widget({"outer": {"items": [{}, {"on": False}]}}))["spec"]["outer"] == {
        "items": [{"on": True}, {"on": False}],
        "port": 6443,
    }


def test_from_dirs_reads_multi_document_yaml(tmp_path: Path) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"kind": "Gadget", "plural": "gadgets"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                },
                {"name": "v0", "served": False, "storage": False},
            ],
        },
    }
    import yaml

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "gadgets.yml").write_text(yaml.safe_dump_all([{"kind": "ConfigMap"}, crd]))
    schemas = CrdSchemas.from_dirs([tmp_path])
    assert [(r.kind, r.version, r.status_subresource) for r in schemas.resources()] == [("Gadget", "v1", True)]
