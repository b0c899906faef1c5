"""Simulated CABPK output: the cloud-config a KubeadmConfig would render for ``kubeadm init`` or ``join``.

Only what the BYOH agent reads is produced (``write_files`` and ``runcmd``), from
the KubeadmControlPlane's ``kubeadmConfigSpec`` or the KubeadmConfigTemplate's
spec: their files and pre/post commands, plus a small kubeadm configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import yaml

Role = Literal["init", "join"]

INIT_CONFIG = "/run/kubeadm/kubeadm.yaml"
JOIN_CONFIG = "/run/kubeadm/kubeadm-join-config.yaml"
_SENTINEL = "echo success > /run/cluster-api/bootstrap-success.complete"
#: The join token is a placeholder: the sandbox has no workload API server to join.
_PLACEHOLDER_TOKEN = "abcdef.0123456789abcdef"  # noqa: S105


def _kubeadm_config(
    role: Role, spec: Mapping[str, Any], cluster: str, version: str | None, endpoint: str, control_plane: bool
) -> str:
    if role == "init":
        docs: list[dict[str, Any]] = [
            {
                "apiVersion": "kubeadm.k8s.io/v1beta4",
                "kind": "ClusterConfiguration",
                "clusterName": cluster,
                "controlPlaneEndpoint": endpoint,
                "kubernetesVersion": version or "",
            },
            {
                "apiVersion": "kubeadm.k8s.io/v1beta4",
                "kind": "InitConfiguration",
                "nodeRegistration": dict((spec.get("initConfiguration") or {}).get("nodeRegistration") or {}),
            },
        ]
    else:
        join = dict(spec.get("joinConfiguration") or {})
        docs = [
            {
                "apiVersion": "kubeadm.k8s.io/v1beta4",
                "kind": "JoinConfiguration",
                "discovery": {
                    "bootstrapToken": {
                        "apiServerEndpoint": endpoint,
                        "token": _PLACEHOLDER_TOKEN,
                        "unsafeSkipCAVerification": True,
                    }
                },
                "nodeRegistration": dict(join.get("nodeRegistration") or {}),
            }
        ]
        if control_plane:
            # As CABPK renders a control-plane join: kubeadm then also runs the control-plane static pods.
            docs[0]["controlPlane"] = dict(join.get("controlPlane") or {"localAPIEndpoint": {}})
    return yaml.safe_dump_all(docs, sort_keys=False)


def cloud_config(
    role: Role,
    spec: Mapping[str, Any] | None,
    *,
    cluster: str,
    version: str | None,
    endpoint: str,
    control_plane: bool = False,
) -> str:
    """The bootstrap data Secret's ``value``."""
    spec = spec or {}
    files = [
        {k: f[k] for k in ("path", "owner", "permissions", "encoding", "content") if k in f}
        for f in spec.get("files") or []
        if isinstance(f, Mapping) and "path" in f
    ]
    config_path = INIT_CONFIG if role == "init" else JOIN_CONFIG
    files.append(
        {
            "path": config_path,
            "owner": "root:root",
            "permissions": "0640",
            "content": _kubeadm_config(role, spec, cluster, version, endpoint, control_plane),
        }
    )
    runcmd = [
        *[str(c) for c in spec.get("preKubeadmCommands") or []],
        f"kubeadm {role} --config {config_path} && {_SENTINEL}",
        *[str(c) for c in spec.get("postKubeadmCommands") or []],
    ]
    body = yaml.safe_dump({"write_files": files, "runcmd": runcmd}, sort_keys=False)
    return f"## template: jinja\n#cloud-config\n{body}"


def role_of(data: str) -> Role | None:
    """Whether a cloud-config runs ``kubeadm init`` or ``kubeadm join`` (what the agent reports)."""
    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError:
        return None
    commands = doc.get("runcmd") if isinstance(doc, dict) else None
    for command in commands or []:
        text = " ".join(command) if isinstance(command, list) else str(command)
        if "kubeadm init" in text:
            return "init"
        if "kubeadm join" in text:
            return "join"
    return None


def _kubeadm_configs(data: str) -> list[Any]:
    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError:
        return []
    configs: list[Any] = []
    for item in (doc.get("write_files") if isinstance(doc, dict) else None) or []:
        if not isinstance(item, Mapping) or item.get("path") not in (INIT_CONFIG, JOIN_CONFIG):
            continue
        try:
            configs.extend(yaml.safe_load_all(str(item.get("content") or "")))
        except yaml.YAMLError:
            continue
    return configs


def runs_control_plane(data: str) -> bool:
    """Whether the node this cloud-config sets up runs the control plane (``kubeadm init`` or a control-plane join)."""
    if role_of(data) == "init":
        return True
    return any(
        isinstance(c, Mapping) and c.get("kind") == "JoinConfiguration" and c.get("controlPlane") is not None
        for c in _kubeadm_configs(data)
    )


def ignored_preflight_errors(data: str) -> frozenset[str]:
    """The ``nodeRegistration.ignorePreflightErrors`` of the kubeadm configuration a cloud-config writes."""
    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError:
        return frozenset()
    ignored: set[str] = set()
    for item in (doc.get("write_files") if isinstance(doc, dict) else None) or []:
        if not isinstance(item, Mapping) or item.get("path") not in (INIT_CONFIG, JOIN_CONFIG):
            continue
        try:
            configs = list(yaml.safe_load_all(str(item.get("content") or "")))
        except yaml.YAMLError:
            continue
        for config in configs:
            registration = config.get("nodeRegistration") if isinstance(config, Mapping) else None
            errors = registration.get("ignorePreflightErrors") if isinstance(registration, Mapping) else None
            ignored.update(str(e) for e in errors or [] if isinstance(errors, list))
    return frozenset(ignored)
