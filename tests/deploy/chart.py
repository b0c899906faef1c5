"""Rendering and linting the Helm chart through the Helm v4 SDK (``helm_python``), no helm binary needed."""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "focom-o2ims"
PRODUCTION_VALUES = CHART / "values-production.yaml"
RELEASE = "o2"
NAMESPACE = "focom-o2ims"
#: Kubernetes versions the rendered objects are validated against: the chart's floor and the newest known.
KUBE_VERSIONS = ("1.27", "1.37")

#: values key -> the Python module (and NATS role) of the service.
MODULES = {
    "focom": "focom",
    "o2ims": "o2ims",
    "hostprep": "hostprep",
    "capiRenderer": "capi_renderer",
    "statusWatcher": "status_watcher",
}
#: values key -> the component name used in object names and labels.
COMPONENTS = {
    "focom": "focom",
    "o2ims": "o2ims",
    "hostprep": "hostprep",
    "capiRenderer": "capi-renderer",
    "statusWatcher": "status-watcher",
}


@dataclass
class Rendered:
    objects: list[dict[str, Any]]
    notes: str
    sources: dict[str, str] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [o for o in self.objects if o["kind"] == kind and o["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
        return found[0]

    def deployment(self, key: str) -> dict[str, Any]:
        return self.get("Deployment", f"{RELEASE}-focom-o2ims-{COMPONENTS[key]}")

    def container(self, key: str) -> dict[str, Any]:
        containers = self.deployment(key)["spec"]["template"]["spec"]["containers"]
        assert len(containers) == 1
        return containers[0]

    def env(self, key: str) -> dict[str, dict[str, Any]]:
        """Environment of a service's container: name -> the EnvVar (duplicates are an error)."""
        items = self.container(key).get("env", [])
        names = [e["name"] for e in items]
        assert len(names) == len(set(names)), f"duplicate env vars in {key}: {names}"
        return {e["name"]: e for e in items}


@functools.cache
def _chart() -> helm.Chart:
    # Loaded once per test session; the handle lives until the interpreter exits.
    return helm.Chart.load(str(CHART))


def load_values(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@functools.cache
def _render_cached(values_json: str, namespace: str) -> Rendered:
    values = json.loads(values_json)
    out = _chart().render(values, name=RELEASE, namespace=namespace, is_install=True)
    objects: list[dict[str, Any]] = []
    notes = ""
    for path in sorted(out):
        if path.endswith("NOTES.txt"):
            notes = out[path]
            continue
        for doc in yaml.safe_load_all(out[path]):
            if doc:
                objects.append(doc)
        # One "kind:" line per document: a missing "---" would glue two objects into one.
        starts = sum(1 for line in out[path].splitlines() if line.startswith("kind:"))
        assert starts == sum(1 for doc in yaml.safe_load_all(out[path]) if doc), f"{path}: documents run together"
    return Rendered(objects=objects, notes=notes, sources=dict(out))


def render(values: dict[str, Any] | None = None, *, namespace: str = NAMESPACE) -> Rendered:
    """The chart rendered for ``values`` (merged over values.yaml by Helm); objects are fresh copies."""
    rendered = _render_cached(json.dumps(values or {}, sort_keys=True), namespace)
    return copy.deepcopy(rendered)


def lint(values: dict[str, Any] | None = None) -> dict[str, Any]:
    return helm.lint(str(CHART), values, strict=True, namespace=NAMESPACE, kube_version="v1.30.0")


def merge(base: dict[str, Any], *overrides: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of values dicts (later wins), as Helm coalesces ``-f`` files."""
    out = copy.deepcopy(base)
    for override in overrides:
        for key, value in override.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merge(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
    return out


def production_values() -> dict[str, Any]:
    return load_values(PRODUCTION_VALUES)


#: An inventory without passwords (keys only), valid for focom.
INVENTORY = {
    "k8s_version": "v1.31.4",
    "namespace": "edge",
    "hosts": [
        {"host_id": "h1", "host_name": "node-1", "host_ip": "10.0.0.11", "ssh_key_file": "/etc/focom-o2ims/ssh/h1"},
        {"host_id": "h2", "host_name": "node-2", "host_ip": "10.0.0.12"},
    ],
    "clusters": [
        {
            "cluster_name": "c1",
            "cluster_masters": [{"host_id": "h1"}],
            "cluster_workers": [{"host_id": "h2"}],
            "control_plane_endpoint": "10.0.0.100",
        }
    ],
}

#: Every optional feature on, with inline material: together with AUTH_VARIANTS it reaches every env var.
FULL_VALUES: dict[str, Any] = {
    "nats": {
        "url": "nats://nats.nats.svc:4222",
        "embedded": {"enabled": False},
        "auth": {"method": "creds", "existingSecret": "nats-creds"},
        "tls": {"enabled": True, "existingSecret": "nats-tls", "clientCertificate": True},
    },
    "settings": {"stream_replicas": 3, "drain_timeout": 30},
    "inventory": {"content": INVENTORY},
    "focomTemplates": {"templates": {"lab": {"name": "lab", "version": "v1", "parameters": {"type": "object"}}}},
    "cni": {"manifests": {"calico": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: calico-system\n"}},
    "ssh": {
        "privateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
        "passphrase": "pass",
        "hostKeys": {
            "knownHosts": "10.0.0.11 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA\n",
            "pinned": {"h2": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB"},
        },
    },
    "managementCluster": {"namespaces": ["edge", "core"]},
    "metrics": {"serviceMonitor": {"enabled": True}},
    "services": {
        "focom": {"crNamespace": "requests", "settings": {"ssh_preflight": True}},
        "o2ims": {"mirror": {"enabled": True}},
        "hostprep": {"settings": {"management_api_url": "https://10.0.0.1:6443"}},
        "statusWatcher": {"settings": {"probe_workload": True}},
    },
}

#: The NATS auth methods not in FULL_VALUES (each renders its own env vars).
AUTH_VARIANTS: list[dict[str, Any]] = [
    {"nats": {"auth": {"method": "perService", "existingSecret": ""}}},
    {"nats": {"auth": {"method": "none", "existingSecret": "", "trialInsecureOpenBus": True}}},
]
