"""Simulated BYOH BootstrapKubeconfig controller: a bootstrap token Secret and a kubeconfig in the status.

Like upstream it acts once per object (skipped when ``status.bootstrapKubeconfigData``
is set): one token per BootstrapKubeconfig, valid for ``bootstrap_token_ttl``.
The emulator authenticates requests carrying such tokens.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import structlog
import yaml

from sandbox.capi.options import BOOTSTRAP_TOKEN_TYPE
from sandbox.capi.runtime import Controller
from sandbox.capi.shapes import Obj, suffix
from shared.objects import deleting, dig, name_of, timestamp

log = structlog.get_logger(__name__)

_USER = "tls-bootstrap-token-user"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def bootstrap_kubeconfig(server: str, ca_data: str, token: str, *, insecure: bool = False) -> str:
    cluster: Obj = {"server": server, "certificate-authority-data": ca_data}
    if insecure:
        cluster["insecure-skip-tls-verify"] = True
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "default-cluster", "cluster": cluster}],
        "users": [{"name": _USER, "user": {"token": token}}],
        "contexts": [{"name": f"{_USER}@kubernetes", "context": {"cluster": "default-cluster", "user": _USER}}],
        "current-context": f"{_USER}@kubernetes",
    }
    return yaml.safe_dump(config, sort_keys=False)


class BootstrapKubeconfigController(Controller):
    kind = "BootstrapKubeconfig"
    identity = "byoh"  # BYOH objects are written as BYOH's controller manager

    async def reconcile(self, namespace: str, name: str) -> float | None:
        bkc = self.ctx.get(self.kind, namespace, name)
        if bkc is None or deleting(bkc) or dig(bkc, "status", "bootstrapKubeconfigData"):
            return None
        wait = self.ctx.wait_step("bootstrap-kubeconfig", bkc, self.ctx.options.bootstrap_kubeconfig_delay)
        if wait:
            return wait
        spec = bkc.get("spec") or {}
        token_id, token_secret = suffix(6), suffix(16)
        expires = datetime.now(UTC) + timedelta(seconds=self.ctx.options.bootstrap_token_ttl)
        data = {
            "token-id": token_id,
            "token-secret": token_secret,
            "expiration": timestamp(expires),
            "usage-bootstrap-authentication": "true",
            "usage-bootstrap-signing": "true",
            "auth-extra-groups": "system:bootstrappers:byoh",
            "description": f"bootstrap token for BootstrapKubeconfig {namespace}/{name}",
        }
        await self.ctx.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"},
                "type": BOOTSTRAP_TOKEN_TYPE,
                "data": {k: _b64(v) for k, v in data.items()},
            }
        )
        kubeconfig = bootstrap_kubeconfig(
            str(spec.get("apiserver", "")),
            str(spec.get("certificate-authority-data", "")),
            f"{token_id}.{token_secret}",
            insecure=bool(spec.get("insecure-skip-tls-verify")),
        )
        await self.ctx.patch_status(bkc, {"bootstrapKubeconfigData": kubeconfig})
        log.info("bootstrap_kubeconfig_issued", namespace=namespace, name=name_of(bkc))
        return None
