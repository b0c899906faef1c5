"""Scaling a MachineDeployment down on the simulators: CAPI's deletion priority decides which host leaves.

Whatever the MachineDeployment's deletion policy, the Machine annotated ``cluster.x-k8s.io/delete-machine``
goes and the other workers keep their Machines. The agent frees the leaving host's ByoHost but does not
reset it (``--skip-installation``), and each Machine reports its version and its node's kubelet version.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from sandbox.capi import CapiSimulators, HostAgent
from sandbox.capi.machines import DELETE_POLICIES
from shared.kube import KubeClient
from shared.objects import dig
from tests.integration.capi.clusterset import cluster_set
from tests.integration.capi.support import INFRA, wait_list

CORE = "cluster.x-k8s.io/v1beta1"
WORKER = "!cluster.x-k8s.io/control-plane"


def _worker_hosts(machines: list[dict[str, Any]]) -> dict[str, str]:
    """host name → Machine name, for Running workers."""
    return {
        dig(m, "status", "nodeRef", "name"): m["metadata"]["name"]
        for m in machines
        if dig(m, "status", "phase") == "Running"
    }


@pytest.mark.parametrize("policy", DELETE_POLICIES)
async def test_the_annotated_worker_leaves_whatever_the_deletion_policy(
    capi_sim: CapiSimulators,
    fake_hosts: Callable[..., Awaitable[list[HostAgent]]],
    capi_client: KubeClient,
    policy: str,
) -> None:
    async def on_bootstrap(role: str, ignored: frozenset[str], version: str | None, control_plane: bool) -> str | None:
        return "v1.30.2"

    agents = await fake_hosts(4, on_bootstrap=on_bootstrap)
    objects = cluster_set(worker_hosts=("h2", "h3", "h4"), workers=3)
    for obj in objects:
        if obj["kind"] == "MachineDeployment":
            obj["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"deletePolicy": policy}}
        await capi_client.apply(obj, field_manager="test")
    machines = await wait_list(
        capi_client, CORE, "Machine", lambda ms: len(_worker_hosts(ms)) == 3, label_selector=WORKER
    )
    before = _worker_hosts(machines)
    assert all(dig(m, "spec", "version") == "v1.30.2" for m in machines)
    assert all(dig(m, "status", "nodeInfo", "kubeletVersion") == "v1.30.2" for m in machines)

    # host-3 is the middle one by name and by age: no policy would pick it by itself every time.
    leaving = before["host-3"]
    await capi_client.patch(
        CORE, "Machine", leaving, "default", {"metadata": {"annotations": {"cluster.x-k8s.io/delete-machine": ""}}}
    )
    await capi_client.patch(CORE, "MachineDeployment", "c1-md-0", "default", {"spec": {"replicas": 2}})
    after = _worker_hosts(await wait_list(capi_client, CORE, "Machine", lambda ms: len(ms) == 2, label_selector=WORKER))
    assert after == {h: m for h, m in before.items() if h != "host-3"}

    hosts = await wait_list(
        capi_client,
        INFRA,
        "ByoHost",
        lambda hs: any(h["metadata"]["name"] == "host-3" and not dig(h, "status", "machineRef") for h in hs),
    )
    freed = next(h for h in hosts if h["metadata"]["name"] == "host-3")
    assert "cluster.x-k8s.io/cluster-name" not in freed["metadata"]["labels"]
    assert agents[2].history == ["join", "release"]  # released, never reset
    assert [a.history for a in agents if a.hostname in ("host-2", "host-4")] == [["join"], ["join"]]
