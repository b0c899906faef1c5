"""Kubeconfig documents pointing at the emulator (CA data inline, bearer token user)."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

CLUSTER_NAME = "sandbox"


def build(url: str, ca_pem: bytes, token: str, *, user: str = "admin", namespace: str = "default") -> dict[str, Any]:
    context = f"{user}@{CLUSTER_NAME}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CLUSTER_NAME,
                "cluster": {"server": url, "certificate-authority-data": base64.b64encode(ca_pem).decode()},
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": CLUSTER_NAME, "user": user, "namespace": namespace}}],
        "current-context": context,
        "preferences": {},
    }


def write(path: Path, config: dict[str, Any]) -> Path:
    """Write ``config`` readable by the owner only (it carries a token)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.safe_dump(config, fh, sort_keys=False)
    os.replace(tmp, path)
    return path
