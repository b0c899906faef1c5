"""``profileData`` of a deployment manager: the admin credentials of a cluster, from its kubeconfig Secret.

Only the ``<cluster>-kubeconfig`` Secret of a cluster we provisioned is read, one object by name,
only for an ``admin`` token that asked for ``all_fields``. Its contents go to that response only;
they are never logged, cached or put into an error.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any

import structlog
import yaml

from shared.errors import ServiceError
from shared.kube import KubeClient

log = structlog.get_logger(__name__)


class ProfileReader:
    def __init__(self, kubeconfig: Path | None, timeout: float) -> None:
        self.kubeconfig = kubeconfig
        self.timeout = timeout
        self._client: KubeClient | None = None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def profile(self, cluster: str, namespace: str) -> dict[str, str] | None:
        """The admin profile of ``cluster``, or None when it cannot be read (reason logged, never the data)."""
        if self.kubeconfig is None:
            return None
        try:
            if self._client is None:
                self._client = await KubeClient.from_kubeconfig(self.kubeconfig, timeout=self.timeout)
            secret = await self._client.get("v1", "Secret", f"{cluster}-kubeconfig", namespace)
        except ServiceError as exc:
            log.warning("profile_unreadable", cluster=cluster, reason=exc.reason)
            return None
        if secret is None:
            return None
        return _from_secret(secret)


def _b64(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    try:
        return base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""


def _from_secret(secret: dict[str, Any]) -> dict[str, str] | None:
    raw = _b64((secret.get("data") or {}).get("value"))
    try:
        config = yaml.safe_load(raw) if raw else None
    except yaml.YAMLError:
        config = None
    if not isinstance(config, dict):
        return None
    clusters = config.get("clusters") or [{}]
    users = config.get("users") or [{}]
    cluster = (clusters[0] or {}).get("cluster") or {}
    user_entry = users[0] or {}
    user = user_entry.get("user") or {}
    return {
        "cluster_api_endpoint": str(cluster.get("server", "")),
        "cluster_ca_cert": _b64(cluster.get("certificate-authority-data")),
        "admin_user": str(user_entry.get("name", "")),
        "admin_client_cert": _b64(user.get("client-certificate-data")),
        "admin_client_key": _b64(user.get("client-key-data")),
    }
