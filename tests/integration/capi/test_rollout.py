"""Version upgrades on the simulators: KCP and MachineDeployment rollouts, and the MachineSet preflight.

Every state of the Machines and of the KCP is recorded (resourceVersion order), so the tests check
the order CAPI promises: with ``maxSurge: 1`` the new control-plane Machine is ready before the old
one goes; with ``maxSurge: 0`` an old one goes before a new one comes, never more than ``replicas``
at once; no new worker while the control plane is upgrading or at an older minor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from sandbox.capi import CapiSimulators, HostAgent
from shared.kube import KubeClient
from shared.objects import dig
from tests.integration.capi.clusterset import HOST_ID, cluster_set
from tests.integration.capi.support import INFRA, Recorder, condition, wait_for

CORE = "cluster.x-k8s.io/v1beta1"
KCP = "controlplane.cluster.x-k8s.io/v1beta1"
CP_LABEL = "cluster.x-k8s.io/control-plane"
OLD, NEW = "v1.30.2", "v1.31.2"

Hosts = Callable[..., Awaitable[list[HostAgent]]]
Obj = dict[str, Any]


async def kubelet_at_machine_version(
    role: str, ignored: frozenset[str], version: str | None, control_plane: bool
) -> str | None:
    return version  # hosts that were given the Machine's packages


async def _apply(client: KubeClient, objects: list[Obj]) -> None:
    for obj in objects:
        await client.apply(obj, field_manager="test")


def _template(name: str, hosts: tuple[str, ...]) -> Obj:
    selector = {"matchExpressions": [{"key": HOST_ID, "operator": "In", "values": list(hosts)}]}
    return {
        "apiVersion": INFRA,
        "kind": "ByoMachineTemplate",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"template": {"spec": {"selector": selector}}},
    }


async def _upgrade_control_plane(client: KubeClient, template: str) -> None:
    patch = {"spec": {"version": NEW, "machineTemplate": {"infrastructureRef": {"name": template}}}}
    await client.patch(KCP, "KubeadmControlPlane", "c1-control-plane", "default", patch)


def _kcp_done(replicas: int) -> Callable[[Obj | None], bool]:
    def done(kcp: Obj | None) -> bool:
        status = (kcp or {}).get("status") or {}
        return (
            status.get("version") == NEW
            and status.get("updatedReplicas") == replicas
            and status.get("replicas") == replicas
            and status.get("readyReplicas") == replicas
        )

    return done


def _machines(state: dict[tuple[str, str], Obj | None], *, control_plane: bool) -> list[Obj]:
    return [
        o
        for (kind, _), o in state.items()
        if kind == "Machine" and o is not None and (CP_LABEL in (o["metadata"].get("labels") or {})) == control_plane
    ]


def _live(machines: list[Obj]) -> list[Obj]:
    return [m for m in machines if not m["metadata"].get("deletionTimestamp")]


async def test_single_control_plane_rolls_out_with_a_surge_machine_first(
    capi_sim: CapiSimulators, fake_hosts: Hosts, capi_client: KubeClient
) -> None:
    await fake_hosts(4, on_bootstrap=kubelet_at_machine_version)
    await _apply(capi_client, cluster_set(cp_hosts=("h1",), worker_hosts=("h2", "h3"), workers=2))
    await wait_for(capi_client, KCP, "KubeadmControlPlane", "c1-control-plane", _kcp_done_at(OLD, 1))
    recorder = Recorder(capi_client, [(CORE, "Machine"), (KCP, "KubeadmControlPlane")], seed=True)
    await recorder.start()

    # The new template selects only the spare host, as a single control plane's upgrade does.
    await capi_client.apply(_template("c1-control-plane-v2", ("h4",)), field_manager="test")
    await _upgrade_control_plane(capi_client, "c1-control-plane-v2")
    kcp = await wait_for(capi_client, KCP, "KubeadmControlPlane", "c1-control-plane", _kcp_done(1))
    await recorder.stop()

    assert dig(kcp, "status", "versions") == [{"version": NEW, "replicas": 1}]
    assert (condition(kcp, "MachinesSpecUpToDate") or {}).get("status") == "True"
    states = recorder.states()
    first_deleting = next(
        i
        for i, s in enumerate(states)
        if any(m["metadata"].get("deletionTimestamp") for m in _machines(s, control_plane=True))
    )
    at_delete = _machines(states[first_deleting], control_plane=True)
    new_ready = [m for m in at_delete if dig(m, "spec", "version") == NEW and dig(m, "status", "nodeRef")]
    assert len(new_ready) == 1, "maxSurge 1: the new Machine is ready before the old one is deleted"
    assert len(at_delete) == 2 and max(len(_live(_machines(s, control_plane=True))) for s in states) == 2
    # While both ran, the KCP reported the lowest version and a rollout in progress.
    during = [s.get(("KubeadmControlPlane", "c1-control-plane")) for s in states[:first_deleting]]
    rolling = [
        k
        for k in during
        if k and (condition(k, "MachinesSpecUpToDate") or {}).get("reason") == "RollingUpdateInProgress"
    ]
    assert rolling and all(dig(k, "status", "version") == OLD for k in during if k)
    (machine,) = [m for m in _live(_machines(states[-1], control_plane=True))]
    assert dig(machine, "status", "nodeRef", "name") == "host-4"
    bm = await capi_client.get(INFRA, "ByoMachine", machine["metadata"]["name"], "default")
    assert dig(bm, "metadata", "annotations", "cluster.x-k8s.io/cloned-from-name") == "c1-control-plane-v2"
    assert dig(machine, "status", "nodeInfo", "kubeletVersion") == NEW


def _kcp_done_at(version: str, replicas: int) -> Callable[[Obj | None], bool]:
    def done(kcp: Obj | None) -> bool:
        status = (kcp or {}).get("status") or {}
        return status.get("version") == version and status.get("readyReplicas") == replicas

    return done


async def test_three_control_planes_with_max_surge_zero_scale_in_first(
    capi_sim: CapiSimulators, fake_hosts: Hosts, capi_client: KubeClient
) -> None:
    await fake_hosts(4, on_bootstrap=kubelet_at_machine_version)
    objects = cluster_set(cp_hosts=("h1", "h2", "h3"), worker_hosts=("h4",), workers=1)
    for obj in objects:
        if obj["kind"] == "KubeadmControlPlane":
            obj["spec"]["rolloutStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0}}
    await _apply(capi_client, objects)
    await wait_for(capi_client, KCP, "KubeadmControlPlane", "c1-control-plane", _kcp_done_at(OLD, 3))
    recorder = Recorder(capi_client, [(CORE, "Machine"), (KCP, "KubeadmControlPlane")], seed=True)
    await recorder.start()

    # Same hosts, new template: each released host is claimed again by the next new Machine.
    await capi_client.apply(_template("c1-control-plane-v2", ("h1", "h2", "h3")), field_manager="test")
    await _upgrade_control_plane(capi_client, "c1-control-plane-v2")
    await wait_for(capi_client, KCP, "KubeadmControlPlane", "c1-control-plane", _kcp_done(3), timeout=90)
    await recorder.stop()

    states = recorder.states()
    assert max(len(_live(_machines(s, control_plane=True))) for s in states) == 3, "maxSurge 0 never surges"
    firsts = [
        i
        for i, s in enumerate(states)
        if any(dig(m, "spec", "version") == NEW for m in _machines(s, control_plane=True))
    ]
    before_new = _machines(states[firsts[0]], control_plane=True)
    assert len(_live(before_new)) == 3 and len([m for m in before_new if dig(m, "spec", "version") == OLD]) <= 2
    final = _live(_machines(states[-1], control_plane=True))
    assert sorted(dig(m, "status", "nodeRef", "name") for m in final) == ["host-1", "host-2", "host-3"]
    assert all(dig(m, "spec", "version") == NEW for m in final)


async def test_max_surge_zero_needs_three_replicas(capi_sim: CapiSimulators, capi_client: KubeClient) -> None:
    objects = cluster_set(cp_hosts=("h1",))
    kcp = next(o for o in objects if o["kind"] == "KubeadmControlPlane")
    kcp["spec"]["rolloutStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0}}
    with pytest.raises(Exception, match="replica count needs to be at least 3") as caught:
        await capi_client.apply(kcp, field_manager="test")
    assert getattr(caught.value, "reason", "") == "Invalid"


async def test_workers_roll_out_after_the_control_plane_one_at_a_time(
    capi_sim: CapiSimulators, fake_hosts: Hosts, capi_client: KubeClient
) -> None:
    await fake_hosts(4, on_bootstrap=kubelet_at_machine_version)
    objects = cluster_set(cp_hosts=("h1",), worker_hosts=("h2", "h3"), workers=2)
    for obj in objects:
        if obj["kind"] == "MachineDeployment":
            obj["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    await _apply(capi_client, objects)
    await wait_for(capi_client, CORE, "MachineDeployment", "c1-md-0", lambda o: dig(o, "status", "readyReplicas") == 2)
    recorder = Recorder(capi_client, [(CORE, "Machine"), (KCP, "KubeadmControlPlane")], seed=True)
    await recorder.start()

    # Workers first: the preflight holds new workers back (their minor would exceed the control plane's).
    await capi_client.patch(
        CORE, "MachineDeployment", "c1-md-0", "default", {"spec": {"template": {"spec": {"version": NEW}}}}
    )
    md = await wait_for(
        capi_client,
        CORE,
        "MachineDeployment",
        "c1-md-0",
        lambda o: (condition(o, "MachineSetReady") or {}).get("reason") == "PreflightCheckFailed",
    )
    assert "KubernetesVersionSkew" in str(condition(md, "MachineSetReady"))

    # Then the control plane (spare host h4); the held-back worker follows once it is stable.
    await capi_client.apply(_template("c1-control-plane-v2", ("h4",)), field_manager="test")
    await _upgrade_control_plane(capi_client, "c1-control-plane-v2")
    md = await wait_for(
        capi_client,
        CORE,
        "MachineDeployment",
        "c1-md-0",
        lambda o: (
            dig(o, "status", "updatedReplicas") == 2
            and dig(o, "status", "readyReplicas") == 2
            and dig(o, "status", "replicas") == 2
        ),
        timeout=90,
    )
    await recorder.stop()
    assert dig(md, "status", "versions") == [{"version": NEW, "replicas": 2}]

    for state in recorder.states():
        kcp = state.get(("KubeadmControlPlane", "c1-control-plane")) or {}
        workers = _machines(state, control_plane=False)
        new_workers = [m for m in workers if dig(m, "spec", "version") == NEW]
        # maxSurge 0 / maxUnavailable 1: never more than 2 workers, never fewer than 1 ready.
        assert len(_live(workers)) <= 2
        assert len([m for m in _live(workers) if dig(m, "status", "nodeRef")]) >= 1
        if new_workers:
            assert dig(kcp, "status", "version") == NEW, "a new worker only once the control plane is upgraded"


async def test_v1beta2_rollout_conditions_on_the_kcp_and_its_machines(
    capi_sim_factory: Callable[..., Awaitable[CapiSimulators]], fake_hosts: Hosts, capi_client: KubeClient
) -> None:
    core, kcp_av = "cluster.x-k8s.io/v1beta2", "controlplane.cluster.x-k8s.io/v1beta2"
    await capi_sim_factory(core_version="v1beta2")
    await fake_hosts(4, on_bootstrap=kubelet_at_machine_version)
    await _apply(capi_client, cluster_set(cp_hosts=("h1",), worker_hosts=("h2", "h3"), core="v1beta2"))
    await wait_for(capi_client, kcp_av, "KubeadmControlPlane", "c1-control-plane", _kcp_done_at(OLD, 1))
    recorder = Recorder(capi_client, [(core, "Machine"), (kcp_av, "KubeadmControlPlane")], seed=True)
    await recorder.start()

    await capi_client.apply(_template("c1-control-plane-v2", ("h4",)), field_manager="test")
    patch = {
        "spec": {"version": NEW, "machineTemplate": {"spec": {"infrastructureRef": {"name": "c1-control-plane-v2"}}}}
    }
    await capi_client.patch(kcp_av, "KubeadmControlPlane", "c1-control-plane", "default", patch)
    kcp = await wait_for(
        capi_client,
        kcp_av,
        "KubeadmControlPlane",
        "c1-control-plane",
        lambda o: (
            dig(o, "status", "version") == NEW
            and dig(o, "status", "upToDateReplicas") == 1
            and dig(o, "status", "replicas") == 1
        ),
    )
    await recorder.stop()
    assert (condition(kcp, "RollingOut") or {}).get("reason") == "NotRollingOut"
    assert (condition(kcp, "MachinesUpToDate") or {}).get("status") == "True"
    states = recorder.states()
    kcps = [s.get(("KubeadmControlPlane", "c1-control-plane")) or {} for s in states]
    rolling = [k for k in kcps if (condition(k, "RollingOut") or {}).get("status") == "True"]
    assert rolling and "Version v1.30.2, v1.31.2 required" in str(condition(rolling[0], "RollingOut"))
    stale = [
        m
        for s in states
        for m in _machines(s, control_plane=True)
        if (condition(m, "UpToDate") or {}).get("reason") == "NotUpToDate"
    ]
    assert stale and all(dig(m, "spec", "version") == OLD for m in stale)
    # The Cluster sums up its control plane from the KCP's own counts.
    await wait_for(
        capi_client,
        core,
        "Cluster",
        "c1",
        lambda o: (
            dig(o, "status", "controlPlane", "versions") == [{"version": NEW, "replicas": 1}]
            and dig(o, "status", "controlPlane", "upToDateReplicas") == 1
            and dig(o, "status", "workers", "versions") == [{"version": OLD, "replicas": 2}]
        ),
    )
