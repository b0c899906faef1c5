"""Every object the chart renders is a valid Kubernetes object.

Built-in kinds are validated with ``kubernetes-validate`` in strict mode (unknown fields rejected)
against the chart's oldest supported Kubernetes and the newest known one. The ServiceMonitor is a
Prometheus Operator CRD the tests do not ship: it is validated, with the same CRD-schema validator
the sandbox API emulator uses (``shared.crd_schema``), against a partial CRD covering the fields
this chart writes. The embedded NATS configuration is checked by the real ``nats-server -t``.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from shared.crd_schema import CrdSchemas
from shared.natsserver import find_nats_server
from tests.deploy.chart import AUTH_VARIANTS, FULL_VALUES, KUBE_VERSIONS, RELEASE, merge, production_values, render

SCENARIOS: dict[str, dict[str, Any] | None] = {
    "default": None,
    "production": None,  # filled lazily from the file
    "full": FULL_VALUES,
    "per-service": merge(FULL_VALUES, AUTH_VARIANTS[0]),
    "none-trial": merge(FULL_VALUES, AUTH_VARIANTS[1]),
    "external-management": {
        "managementCluster": {"kubeconfigSecret": "mgmt", "kubeconfigKey": "config"},
        "inventory": {"existingSecret": "inventory"},
        "cni": {"existingConfigMap": "cni", "names": ["calico", "cilium"]},
        "ssh": {
            "existingSecret": "ssh",
            "existingSecretHasPassphrase": True,
            "hostKeys": {"existingSecret": "hk", "existingSecretKeys": ["pinned_host_keys.yaml"]},
        },
        "focomTemplates": {"existingConfigMap": "tpl"},
        "image": {"digest": "sha256:" + "ab" * 32},
        "imagePullSecrets": [{"name": "regcred"}],
        "nats": {"embedded": {"persistence": {"enabled": True, "storageClassName": "fast"}}},
        "services": {
            "capiRenderer": {
                "settings": {"crd_source": "files", "crd_dirs": ["/crds"]},
                "extraVolumes": [{"name": "crds", "configMap": {"name": "crds"}}],
                "extraVolumeMounts": [{"name": "crds", "mountPath": "/crds"}],
                "env": [{"name": "EXTRA", "value": "1"}],
            }
        },
    },
}

_DURATION = "^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
_MONITORING_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "scope": "Namespaced",
        "names": {
            "kind": "ServiceMonitor",
            "plural": "servicemonitors",
            "singular": "servicemonitor",
            "listKind": "ServiceMonitorList",
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "apiVersion": {"type": "string"},
                            "kind": {"type": "string"},
                            "metadata": {"type": "object"},
                            "spec": {
                                "type": "object",
                                "required": ["selector"],
                                "properties": {
                                    "selector": {
                                        "type": "object",
                                        "properties": {
                                            "matchLabels": {
                                                "type": "object",
                                                "additionalProperties": {"type": "string"},
                                            },
                                            "matchExpressions": {
                                                "type": "array",
                                                "items": {
                                                    "type": "object",
                                                    "required": ["key", "operator"],
                                                    "properties": {
                                                        "key": {"type": "string"},
                                                        "operator": {"type": "string"},
                                                        "values": {"type": "array", "items": {"type": "string"}},
                                                    },
                                                },
                                            },
                                        },
                                    },
                                    "namespaceSelector": {
                                        "type": "object",
                                        "properties": {
                                            "any": {"type": "boolean"},
                                            "matchNames": {"type": "array", "items": {"type": "string"}},
                                        },
                                    },
                                    "endpoints": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "properties": {
                                                "port": {"type": "string"},
                                                "path": {"type": "string"},
                                                "interval": {"type": "string", "pattern": _DURATION},
                                                "scrapeTimeout": {"type": "string", "pattern": _DURATION},
                                                "scheme": {"type": "string", "enum": ["http", "https"]},
                                            },
                                        },
                                    },
                                },
                            },
                        },
                    }
                },
            }
        ],
    },
}


def _values(name: str) -> dict[str, Any] | None:
    return production_values() if name == "production" else SCENARIOS[name]


def _validate_builtin(obj: dict[str, Any], version: str) -> None:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path)
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        pytest.fail(f"{name} invalid for Kubernetes {version} at {where}: {exc.message}")


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_every_rendered_object_validates(scenario: str) -> None:
    rendered = render(_values(scenario))
    monitoring = CrdSchemas([_MONITORING_CRD])
    assert rendered.objects
    for obj in rendered.objects:
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            errors = monitoring.validate(obj, strict=True)
            assert errors == [], [str(e) for e in errors]
            continue
        for version in KUBE_VERSIONS:
            _validate_builtin(obj, version)


def test_validation_catches_a_broken_object() -> None:
    # The check above must be able to fail: an unknown field and a wrong type are reported.
    deployment = render().of_kind("Deployment")[0]
    deployment["spec"]["replica"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSIONS[-1], strict=True)
    monitor = render(production_values()).of_kind("ServiceMonitor")[0]
    monitor["spec"]["endpoints"][0]["interval"] = "soon"
    assert CrdSchemas([_MONITORING_CRD]).validate(monitor, strict=True)


@pytest.mark.parametrize("persistence", [False, True])
def test_embedded_nats_config_is_accepted_by_nats_server(tmp_path: Path, persistence: bool) -> None:
    rendered = render({"nats": {"embedded": {"persistence": {"enabled": persistence}}}})
    conf = rendered.get("ConfigMap", f"{RELEASE}-focom-o2ims-nats")["data"]["nats.conf"]
    path = tmp_path / "nats.conf"
    path.write_text(conf.replace("/data", str(tmp_path / "store")), encoding="utf-8")
    # -t only parses and checks the configuration; no server is started.
    users = rendered.get("Secret", f"{RELEASE}-focom-o2ims-nats-users")["data"]
    env = {f"NATS_PASSWORD_{k.upper()}": base64.b64decode(v).decode() for k, v in users.items()}
    env["POD_NAME"] = "nats-0"
    result = subprocess.run(
        [str(find_nats_server()), "-c", str(path), "-t"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    sts = rendered.get("StatefulSet", f"{RELEASE}-focom-o2ims-nats")
    claims = sts["spec"].get("volumeClaimTemplates", [])
    assert bool(claims) is persistence
