"""The same cluster with the core objects written and reported in v1beta2 shapes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sandbox.capi import CapiSimulators, HostAgent
from shared.kube import KubeClient
from shared.objects import dig
from tests.integration.capi.clusterset import cluster_set
from tests.integration.capi.support import condition, is_true, wait_for, wait_list

CORE = "cluster.x-k8s.io/v1beta2"
KCP = "controlplane.cluster.x-k8s.io/v1beta2"
CRS = "addons.cluster.x-k8s.io/v1beta2"


async def test_v1beta2_status_shapes(
    capi_sim_factory: Callable[..., Awaitable[CapiSimulators]],
    fake_hosts: Callable[..., Awaitable[list[HostAgent]]],
    capi_client: KubeClient,
) -> None:
    await capi_sim_factory(core_version="v1beta2")
    await fake_hosts(3)
    for obj in cluster_set(core="v1beta2"):
        await capi_client.apply(obj, field_manager="test")

    cluster = await wait_for(capi_client, CORE, "Cluster", "c1", lambda o: is_true(o, "Available"), timeout=90)
    assert dig(cluster, "status", "initialization") == {
        "infrastructureProvisioned": True,
        "controlPlaneInitialized": True,
    }
    assert dig(cluster, "status", "phase") == "Provisioned"
    assert dig(cluster, "status", "controlPlane", "readyReplicas") == 1
    assert dig(cluster, "status", "workers", "readyReplicas") == 2
    assert "infrastructureReady" not in cluster["status"]
    available = condition(cluster, "Available")
    assert available is not None and available["reason"] == "Available" and "severity" not in available

    kcp = await capi_client.get(KCP, "KubeadmControlPlane", "c1-control-plane", "default")
    assert dig(kcp, "status", "initialization", "controlPlaneInitialized") is True
    assert "initialized" not in kcp["status"] and "ready" not in kcp["status"]
    assert dig(kcp, "status", "availableReplicas") == 1 and dig(kcp, "status", "upToDateReplicas") == 1

    md = await wait_for(
        capi_client, CORE, "MachineDeployment", "c1-md-0", lambda o: dig(o, "status", "availableReplicas") == 2
    )
    assert is_true(md, "Available")
    assert dig(md, "status", "deprecated", "v1beta1", "readyReplicas") == 2

    machines = await wait_list(
        capi_client,
        CORE,
        "Machine",
        lambda ms: len(ms) == 3 and all(dig(m, "status", "phase") == "Running" for m in ms),
    )
    for machine in machines:
        assert set(dig(machine, "status", "nodeRef")) == {"name"}
        assert dig(machine, "status", "initialization") == {
            "bootstrapDataSecretCreated": True,
            "infrastructureProvisioned": True,
        }
        assert dig(machine, "spec", "infrastructureRef", "apiGroup") == "infrastructure.cluster.x-k8s.io"

    crs = await wait_for(capi_client, CRS, "ClusterResourceSet", "c1-crs-0", lambda o: is_true(o, "ResourcesApplied"))
    assert condition(crs, "ResourcesApplied")["reason"] == "Applied"
