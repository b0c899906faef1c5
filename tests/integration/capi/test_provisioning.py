"""A BYOH v1beta1 cluster set on the emulator with three fake hosts comes up, then deletes and frees the hosts."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

import yaml

from sandbox.capi import CapiSimulators, HostAgent
from shared.kube import KubeClient
from shared.objects import dig
from tests.integration.capi.clusterset import cluster_set
from tests.integration.capi.support import INFRA, Recorder, condition, is_true, wait_for, wait_list

CORE = "cluster.x-k8s.io/v1beta1"
KCP = "controlplane.cluster.x-k8s.io/v1beta1"
CRS = "addons.cluster.x-k8s.io/v1beta1"


async def _apply(client: KubeClient, objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        await client.apply(obj, field_manager="test")


async def test_cluster_comes_up_then_deletion_releases_hosts(
    capi_sim: CapiSimulators, fake_hosts: Callable[..., Awaitable[list[HostAgent]]], capi_client: KubeClient
) -> None:
    agents = await fake_hosts(3)
    hosts, _ = await capi_client.list(INFRA, "ByoHost", "default")
    assert {h["metadata"]["name"] for h in hosts} == {"host-1", "host-2", "host-3"}
    assert all(condition(h, "K8sNodeBootstrapSucceeded")["reason"] == "WaitingForMachineRefToBeAssigned" for h in hosts)

    recorder = Recorder(capi_client, [(CORE, "Cluster"), (KCP, "KubeadmControlPlane")])
    await recorder.start()
    await _apply(capi_client, cluster_set())

    cluster = await wait_for(capi_client, CORE, "Cluster", "c1", lambda o: is_true(o, "Ready"))
    await wait_for(
        capi_client,
        CORE,
        "MachineDeployment",
        "c1-md-0",
        lambda o: dig(o, "status", "readyReplicas") == 2 and dig(o, "status", "phase") == "Running",
    )
    kcp = await wait_for(
        capi_client,
        KCP,
        "KubeadmControlPlane",
        "c1-control-plane",
        lambda o: dig(o, "status", "readyReplicas") == 1 and bool(dig(o, "status", "ready")),
    )
    crs = await wait_for(capi_client, CRS, "ClusterResourceSet", "c1-crs-0", lambda o: is_true(o, "ResourcesApplied"))
    await recorder.stop()

    assert cluster is not None and kcp is not None and crs is not None
    assert dig(cluster, "status", "phase") == "Provisioned"
    assert dig(cluster, "status", "infrastructureReady") is True
    assert dig(cluster, "status", "controlPlaneReady") is True
    assert is_true(cluster, "ControlPlaneInitialized")
    assert dig(cluster, "spec", "controlPlaneEndpoint") == {"host": "10.0.0.100", "port": 6443}
    assert dig(kcp, "status", "initialized") is True
    assert dig(kcp, "status", "replicas") == 1 and dig(kcp, "status", "version") == "v1.30.2"

    machines, _ = await capi_client.list(CORE, "Machine", "default", label_selector="cluster.x-k8s.io/cluster-name=c1")
    assert len(machines) == 3
    assert all(dig(m, "status", "phase") == "Running" and dig(m, "status", "nodeRef", "name") for m in machines)
    nodes: dict[str, set[str]] = {"cp": set(), "worker": set()}
    for m in machines:
        role = "cp" if "cluster.x-k8s.io/control-plane" in m["metadata"]["labels"] else "worker"
        nodes[role].add(dig(m, "status", "nodeRef", "name"))
        assert dig(m, "spec", "providerID").startswith(f"byoh://{dig(m, 'status', 'nodeRef', 'name')}/")
    # Each machine sits on the host its template's selector pins (host-N carries host-id hN).
    assert nodes == {"cp": {"host-1"}, "worker": {"host-2", "host-3"}}
    assert agents[0].history == ["init"]
    assert agents[1].history == ["join"] and agents[2].history == ["join"]

    secret = await capi_client.get("v1", "Secret", "c1-kubeconfig", "default")
    assert secret is not None and secret["type"] == "cluster.x-k8s.io/secret"
    assert secret["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"] == "c1"
    kubeconfig = yaml.safe_load(base64.b64decode(secret["data"]["value"]))
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://10.0.0.100:6443"
    assert kubeconfig["current-context"] == "c1-admin@c1"

    # The trap: the Cluster said Provisioned while the control plane was not initialised yet.
    assert any(
        dig(s.get(("Cluster", "c1")), "status", "phase") == "Provisioned"
        and not dig(s.get(("KubeadmControlPlane", "c1-control-plane")), "status", "initialized")
        for s in recorder.states()
    )

    await capi_client.delete(CORE, "Cluster", "c1", "default")
    await wait_for(capi_client, CORE, "Cluster", "c1", lambda o: o is None)
    released = await wait_list(
        capi_client,
        INFRA,
        "ByoHost",
        lambda hs: (
            len(hs) == 3
            and all(
                "cluster.x-k8s.io/cluster-name" not in (h["metadata"].get("labels") or {})
                and not dig(h, "status", "machineRef")
                and not dig(h, "spec", "bootstrapSecret")
                and condition(h, "K8sNodeBootstrapSucceeded")["reason"] == "WaitingForMachineRefToBeAssigned"
                for h in hs
            )
        ),
    )
    assert all(h["metadata"]["labels"]["o2ims.oran.org/host-id"] for h in released)
    for kind, api in (
        ("Machine", CORE),
        ("ByoMachine", INFRA),
        ("MachineDeployment", CORE),
        ("KubeadmControlPlane", KCP),
        ("ByoCluster", INFRA),
    ):
        assert (await capi_client.list(api, kind, "default"))[0] == [], kind
    # Released, not reset (--skip-installation): the hosts keep their node state until someone resets them.
    assert all(agent.history[-1] == "release" and "reset" not in agent.history for agent in agents)
