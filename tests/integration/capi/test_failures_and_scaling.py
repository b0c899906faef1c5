"""Injected failures (bootstrap, never-initialising control plane) and MachineDeployment scaling."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from sandbox.capi import CapiSimulators, HostAgent
from shared.kube import KubeClient
from shared.objects import dig
from tests.integration.capi.clusterset import cluster_set
from tests.integration.capi.support import INFRA, condition, is_true, wait_for, wait_list

CORE = "cluster.x-k8s.io/v1beta1"
KCP = "controlplane.cluster.x-k8s.io/v1beta1"
CLUSTER_LABEL = "cluster.x-k8s.io/cluster-name"
BYOMACHINE_LABEL = "byoh.infrastructure.cluster.x-k8s.io/byomachine-name"

Hosts = Callable[..., Awaitable[list[HostAgent]]]


async def _apply(client: KubeClient, **kwargs: object) -> None:
    for obj in cluster_set(**kwargs):  # type: ignore[arg-type]
        await client.apply(obj, field_manager="test")


@pytest.mark.capi_options(fail_bootstrap_hosts=["host-2"])
async def test_bootstrap_failure_shows_on_host_and_machine(
    capi_sim: CapiSimulators, fake_hosts: Hosts, capi_client: KubeClient
) -> None:
    await fake_hosts(3)
    await _apply(capi_client)
    host = await wait_for(
        capi_client,
        INFRA,
        "ByoHost",
        "host-2",
        lambda o: (condition(o, "K8sNodeBootstrapSucceeded") or {}).get("reason") == "CloudInitExecutionFailed",
    )
    cond = condition(host, "K8sNodeBootstrapSucceeded")
    assert cond is not None and cond["status"] == "False" and cond["severity"] == "Error"
    machine_name = host["metadata"]["labels"][BYOMACHINE_LABEL]
    machine = await wait_for(
        capi_client,
        CORE,
        "Machine",
        machine_name,
        lambda o: (condition(o, "InfrastructureReady") or {}).get("reason") == "CloudInitExecutionFailed",
    )
    assert dig(machine, "status", "phase") == "Provisioning"
    assert not dig(machine, "status", "nodeRef")
    assert condition(machine, "Ready")["status"] == "False"
    md = await wait_for(
        capi_client, CORE, "MachineDeployment", "c1-md-0", lambda o: dig(o, "status", "readyReplicas") == 1
    )
    assert dig(md, "status", "phase") == "ScalingUp"
    assert dig(md, "status", "unavailableReplicas") == 1


@pytest.mark.capi_options(never_initialize_clusters=["c1"])
async def test_never_initialising_control_plane(
    capi_sim: CapiSimulators, fake_hosts: Hosts, capi_client: KubeClient
) -> None:
    await fake_hosts(3)
    await _apply(capi_client)
    # The init node ran kubeadm init but its node never appears: the control plane stays uninitialised.
    host = await wait_for(capi_client, INFRA, "ByoHost", "host-1", lambda o: is_true(o, "K8sNodeBootstrapSucceeded"))
    bm_name = host["metadata"]["labels"][BYOMACHINE_LABEL]
    await wait_for(
        capi_client,
        INFRA,
        "ByoMachine",
        bm_name,
        lambda o: (condition(o, "BYOHostReady") or {}).get("reason") == "WaitingForNode",
    )
    kcp = await capi_client.get(KCP, "KubeadmControlPlane", "c1-control-plane", "default")
    assert not dig(kcp, "status", "initialized")
    assert condition(kcp, "Available")["status"] == "False"
    cluster = await wait_for(capi_client, CORE, "Cluster", "c1", lambda o: dig(o, "status", "phase") == "Provisioned")
    assert not is_true(cluster, "ControlPlaneInitialized") and not is_true(cluster, "Ready")
    # Workers never get join data, so they stay Pending and claim no host.
    workers = await wait_list(
        capi_client,
        CORE,
        "Machine",
        lambda ms: len(ms) == 2 and all(dig(m, "status", "phase") for m in ms),
        label_selector="cluster.x-k8s.io/deployment-name",
    )
    assert all(dig(m, "status", "phase") == "Pending" for m in workers)
    free = await capi_client.get(INFRA, "ByoHost", "host-2", "default")
    assert CLUSTER_LABEL not in (free["metadata"].get("labels") or {})


async def test_scale_workers_up_to_a_new_host_and_back_down(
    capi_sim: CapiSimulators, fake_hosts: Hosts, capi_client: KubeClient
) -> None:
    await fake_hosts(3)
    await _apply(capi_client, worker_hosts=("h2", "h3", "h4"))
    await wait_for(
        capi_client,
        CORE,
        "MachineDeployment",
        "c1-md-0",
        lambda o: dig(o, "status", "readyReplicas") == 2 and dig(o, "status", "phase") == "Running",
    )

    await fake_hosts(1, host_ids=["h4"], names=["host-4"])
    await capi_client.patch(CORE, "MachineDeployment", "c1-md-0", "default", {"spec": {"replicas": 3}})
    await wait_for(
        capi_client,
        CORE,
        "MachineDeployment",
        "c1-md-0",
        lambda o: dig(o, "status", "readyReplicas") == 3 and dig(o, "status", "phase") == "Running",
    )
    host4 = await capi_client.get(INFRA, "ByoHost", "host-4", "default")
    assert host4["metadata"]["labels"][CLUSTER_LABEL] == "c1"
    assert is_true(host4, "K8sNodeBootstrapSucceeded")

    await capi_client.patch(CORE, "MachineDeployment", "c1-md-0", "default", {"spec": {"replicas": 2}})
    md = await wait_for(
        capi_client,
        CORE,
        "MachineDeployment",
        "c1-md-0",
        lambda o: dig(o, "status", "replicas") == 2 and dig(o, "status", "readyReplicas") == 2,
    )
    assert dig(md, "status", "phase") == "Running"

    def free(hs: list[dict[str, object]]) -> list[dict[str, object]]:
        return [h for h in hs if CLUSTER_LABEL not in (dig(h, "metadata", "labels") or {})]

    hosts = await wait_list(
        capi_client, INFRA, "ByoHost", lambda hs: len(free(hs)) == 1 and not dig(free(hs)[0], "status", "machineRef")
    )
    assert len(hosts) == 4
    machines = await wait_list(
        capi_client, CORE, "Machine", lambda ms: len(ms) == 2, label_selector="cluster.x-k8s.io/deployment-name"
    )
    assert all(dig(m, "status", "phase") == "Running" for m in machines)


async def test_a_claim_cut_between_its_two_writes_is_completed(
    capi_sim: CapiSimulators, fake_hosts: Hosts, capi_client: KubeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The claim writes the host's labels, then its status.machineRef. A controller stopped between the two
    # (the emulator restarted, say) must finish the claim later, or the host waits for a machineRef forever.
    (byomachines,) = (c for c in capi_sim.controllers if c.kind == "ByoMachine")
    real = byomachines.ctx.patch_status
    cut: list[str] = []

    async def patch_status(obj: dict[str, object], status: dict[str, object]) -> dict[str, object]:
        if obj.get("kind") == "ByoHost" and status.get("machineRef") and not cut:
            cut.append(str(dig(obj, "metadata", "name")))
            raise ConnectionResetError("stopped between the two writes of a claim")
        return await real(obj, status)

    monkeypatch.setattr(byomachines.ctx, "patch_status", patch_status)
    await fake_hosts(3)
    await _apply(capi_client)
    for name in ("host-1", "host-2", "host-3"):
        await wait_for(capi_client, INFRA, "ByoHost", name, lambda o: is_true(o, "K8sNodeBootstrapSucceeded"))
    assert len(cut) == 1, "no claim was cut"
    host = await capi_client.get(INFRA, "ByoHost", cut[0], "default")
    assert dig(host, "status", "machineRef", "name") == host["metadata"]["labels"][BYOMACHINE_LABEL]
