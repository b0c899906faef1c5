"""The identities the simulated providers write as: BYOH's controller manager is its own service account.

BYOH's ByoHost webhook accepts updates only from ``system:serviceaccount:byoh-system:byoh-controller-manager``
and from the host's own agent, so the simulated BYOH controllers cannot share the admin's client. Like a
provider installed in the management cluster, they authenticate with a service-account token Secret in
``byoh-system`` (created on first start, reused afterwards), which the emulator maps to that user.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from shared.errors import TemporaryError
from shared.kube import KubeClient

BYOH_NAMESPACE = "byoh-system"
BYOH_ACCOUNT = "byoh-controller-manager"
SERVICE_ACCOUNT_TOKEN_TYPE = "kubernetes.io/service-account-token"  # noqa: S105 - a type name
SERVICE_ACCOUNT_NAME_ANNOTATION = "kubernetes.io/service-account.name"


async def _ensure(client: KubeClient, obj: dict[str, Any]) -> dict[str, Any]:
    found = await client.get(obj["apiVersion"], obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace"))
    if found is not None:
        return found
    try:
        return await client.create(obj)
    except TemporaryError as exc:
        if exc.reason != "AlreadyExists":
            raise
    found = await client.get(obj["apiVersion"], obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace"))
    if found is None:
        raise TemporaryError(f"{obj['kind']} {obj['metadata']['name']} vanished", reason="Conflict")
    return found


async def service_account_client(client: KubeClient, namespace: str, account: str) -> KubeClient:
    """A client on the same server authenticated as ``system:serviceaccount:<namespace>:<account>``."""
    await _ensure(client, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    token = secrets.token_urlsafe(32)
    secret = await _ensure(
        client,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": SERVICE_ACCOUNT_TOKEN_TYPE,
            "metadata": {
                "name": f"{account}-token",
                "namespace": namespace,
                "annotations": {SERVICE_ACCOUNT_NAME_ANNOTATION: account},
            },
            "data": {"token": base64.b64encode(token.encode()).decode()},
        },
    )
    stored = base64.b64decode(str((secret.get("data") or {}).get("token") or "")).decode()
    cluster: dict[str, Any] = {"server": client.server}
    ca = await client.ca_data()
    if ca:
        cluster["certificate-authority-data"] = ca
    user = f"system:serviceaccount:{namespace}:{account}"
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "management", "cluster": cluster}],
        "users": [{"name": user, "user": {"token": stored}}],
        "contexts": [{"name": "management", "context": {"cluster": "management", "user": user}}],
        "current-context": "management",
    }
    return await KubeClient.from_kubeconfig_dict(kubeconfig)
