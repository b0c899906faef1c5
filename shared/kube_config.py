"""How a service reaches its Kubernetes API: the kubeconfig file its settings name, else the pod's own
service account (in-cluster), the way client-go's ``InClusterConfig`` does it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shared.errors import PermanentError
from shared.kube import KubeClient

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def in_cluster_kubeconfig(sa_dir: Path = SERVICE_ACCOUNT_DIR, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A kubeconfig for the pod's service account (the client reads the token and CA from their files)."""
    env = os.environ if env is None else env
    host = env.get("KUBERNETES_SERVICE_HOST", "kubernetes.default.svc")
    port = env.get("KUBERNETES_SERVICE_PORT", "443")
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    cluster = {"server": server, "certificate-authority": str(sa_dir / "ca.crt")}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "in-cluster",
        "clusters": [{"name": "in-cluster", "cluster": cluster}],
        "users": [{"name": "sa", "user": {"tokenFile": str(sa_dir / "token")}}],
        "contexts": [{"name": "in-cluster", "context": {"cluster": "in-cluster", "user": "sa"}}],
    }


async def connect(
    kubeconfig: Path | None, *, setting: str, timeout: float = 15.0, sa_dir: Path = SERVICE_ACCOUNT_DIR
) -> KubeClient:
    """A client from ``kubeconfig`` when set, else in-cluster; ``setting`` names the variable in errors.

    Outside a pod with no kubeconfig set, this fails at once saying which setting to give, instead of a
    client that fails later on a missing token file.
    """
    if kubeconfig is not None:
        return await KubeClient.from_kubeconfig(kubeconfig.expanduser(), timeout=timeout)
    if not (sa_dir / "token").is_file():
        raise PermanentError(
            f"no kubeconfig set ({setting}) and no in-cluster service account ({sa_dir / 'token'} is missing)",
            reason="InvalidKubeconfig",
        )
    return await KubeClient.from_kubeconfig_dict(in_cluster_kubeconfig(sa_dir), timeout=timeout)
