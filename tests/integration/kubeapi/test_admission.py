"""The validating webhooks the emulator runs: BYOH's ByoHost rule and CAPI's KubeadmControlPlane rules."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.capi.identity import BYOH_ACCOUNT, BYOH_NAMESPACE, service_account_client
from shared.errors import PermanentError
from shared.kube import KubeClient

INFRA = "infrastructure.cluster.x-k8s.io/v1beta1"
KCP = "controlplane.cluster.x-k8s.io/v1beta1"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
async def admin(kubeconfig: Path) -> AsyncIterator[KubeClient]:
    async with await KubeClient.from_kubeconfig(kubeconfig) as client:
        yield client


async def host_client(admin: KubeClient, kubeconfig: Path, hostname: str, token_id: str) -> KubeClient:
    """A client holding a host agent's credential (a bootstrap token labelled with its host)."""
    secret = "0123456789abcdef"
    await admin.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "bootstrap.kubernetes.io/token",
            "metadata": {
                "name": f"bootstrap-token-{token_id}",
                "namespace": "kube-system",
                "labels": {"sandbox.focom-o2ims.io/byoh-host": hostname},
            },
            "data": {
                "token-id": _b64(token_id),
                "token-secret": _b64(secret),
                "usage-bootstrap-authentication": _b64("true"),
                "auth-extra-groups": _b64("byoh:hosts"),
            },
        }
    )
    config = yaml.safe_load(kubeconfig.read_text())
    for user in config["users"]:
        user["user"] = {"token": f"{token_id}.{secret}"}
    return await KubeClient.from_kubeconfig_dict(config)


def _host(name: str) -> dict[str, Any]:
    return {"apiVersion": INFRA, "kind": "ByoHost", "metadata": {"name": name, "namespace": "default"}, "spec": {}}


async def _denied(call: Any) -> PermanentError:
    with pytest.raises(PermanentError) as caught:
        await call
    return caught.value


async def test_only_the_byoh_controller_and_the_hosts_own_agent_update_a_byohost(
    admin: KubeClient, kubeconfig: Path
) -> None:
    own = await host_client(admin, kubeconfig, "node-1", "aaaaaa")
    other = await host_client(admin, kubeconfig, "node-10", "bbbbbb")
    controller = await service_account_client(admin, BYOH_NAMESPACE, BYOH_ACCOUNT)
    try:
        await own.create(_host("node-1"))
        labels = {"metadata": {"labels": {"o2ims.oran.org/k8s-version": "v1.31.2"}}}
        err = await _denied(admin.patch(INFRA, "ByoHost", "node-1", "default", labels))
        assert err.reason == "Forbidden"
        assert 'admission webhook "vbyohost.kb.io" denied the request: admin is not a valid agent username' in str(err)
        err = await _denied(other.patch(INFRA, "ByoHost", "node-1", "default", labels))
        assert "byoh:host:node-10 cannot create/update resource node-1" in str(err)
        status = {"status": {"hostinfo": {"osname": "linux"}}}
        await _denied(admin.patch(INFRA, "ByoHost", "node-1", "default", status, subresource="status"))

        patched = await own.patch(INFRA, "ByoHost", "node-1", "default", labels)
        assert patched["metadata"]["labels"] == {"o2ims.oran.org/k8s-version": "v1.31.2"}
        claim = {
            "status": {"machineRef": {"apiVersion": INFRA, "kind": "ByoMachine", "name": "m", "namespace": "default"}}
        }
        await controller.patch(INFRA, "ByoHost", "node-1", "default", claim, subresource="status")

        # Claimed: nobody may delete it, not even the admin.
        err = await _denied(admin.delete(INFRA, "ByoHost", "node-1", "default"))
        assert err.reason == "Forbidden" and "cannot delete ByoHost when MachineRef is assigned" in str(err)
        await own.patch(INFRA, "ByoHost", "node-1", "default", {"status": {"machineRef": None}}, subresource="status")
        await admin.delete(INFRA, "ByoHost", "node-1", "default")
        assert await admin.get(INFRA, "ByoHost", "node-1", "default") is None
    finally:
        for client in (own, other, controller):
            await client.close()


def _kcp(replicas: int, max_surge: Any, version: str = "v1.30.2") -> dict[str, Any]:
    return {
        "apiVersion": KCP,
        "kind": "KubeadmControlPlane",
        "metadata": {"name": "c1-control-plane", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "version": version,
            "rolloutStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": max_surge}},
            "machineTemplate": {
                "infrastructureRef": {"apiVersion": INFRA, "kind": "ByoMachineTemplate", "name": "c1-control-plane"}
            },
            "kubeadmConfigSpec": {},
        },
    }


async def test_kcp_scale_in_rollouts_need_three_replicas_and_versions_move_one_minor(admin: KubeClient) -> None:
    err = await _denied(admin.apply(_kcp(1, 0), field_manager="test"))
    assert err.reason == "Invalid"
    assert (
        "spec.rolloutStrategy.rollingUpdate: Required value: when KubeadmControlPlane is configured to scale-in"
        in str(err)
    )
    assert "replica count needs to be at least 3" in str(err)
    err = await _denied(admin.apply(_kcp(3, 2), field_manager="test"))
    assert "value must be 1 or 0" in str(err)

    await admin.apply(_kcp(3, 0), field_manager="test")
    err = await _denied(admin.apply(_kcp(3, 0, "v1.32.0"), field_manager="test"))
    assert "cannot update Kubernetes version from v1.30.2 to v1.32.0" in str(err)
    updated = await admin.apply(_kcp(3, 0, "v1.31.9"), field_manager="test")
    assert updated["spec"]["version"] == "v1.31.9"
    # Scaling a maxSurge 0 control plane below 3 is refused as well.
    err = await _denied(admin.apply(_kcp(1, 0, "v1.31.9"), field_manager="test"))
    assert "replica count needs to be at least 3" in str(err)
