"""The status the simulated KubeadmControlPlane controller writes, in the v1beta1 or v1beta2 shape.

As upstream: ``version`` is the lowest ``spec.version`` among the control-plane Machines (so it
stays at the old version until the last old Machine is gone), ``versions`` counts Machines per
version, ``updatedReplicas`` / ``upToDateReplicas`` count Machines that need no rollout, and a
rollout shows as ``MachinesSpecUpToDate`` False ``RollingUpdateInProgress`` (v1beta1) or
``RollingOut`` True / ``MachinesUpToDate`` False (v1beta2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.capi.machines import alive, machine_ready
from sandbox.capi.rollout import lowest_version, version_counts
from sandbox.capi.shapes import Conditions, Obj, selector_string
from shared.objects import CLUSTER_NAME_LABEL, CONTROL_PLANE_LABEL, dig, meta, name_of


@dataclass
class KcpView:
    """What the controller found: the cluster name, every Machine (deleting ones too), and the outdated ones."""

    cluster: str
    machines: list[Obj]
    desired: int
    initialized: bool
    #: Machine name -> why it needs a rollout.
    outdated: dict[str, list[str]]


def rollout_message(view: KcpView) -> str:
    reasons = sorted({r for rs in view.outdated.values() for r in rs})
    lines = [f"Rolling out {len(view.outdated)} not up-to-date replicas", *(f"* {r}" for r in reasons)]
    return "\n".join(lines)


def kcp_status(kcp: Obj, view: KcpView, *, v1beta2: bool) -> dict[str, Any]:
    live = alive(view.machines)
    replicas = len(live)
    ready = sum(1 for m in live if machine_ready(m))
    up_to_date = sum(1 for m in live if name_of(m) not in view.outdated)
    desired, initialized = view.desired, view.initialized
    selector = selector_string({CLUSTER_NAME_LABEL: view.cluster, CONTROL_PLANE_LABEL: ""})
    conds = Conditions(dig(kcp, "status", "conditions"), v1beta2=v1beta2)
    scaling = "ScalingUp" if replicas < desired else "ScalingDown" if replicas > desired else ""
    resized = not scaling and ready == replicas
    status: dict[str, Any] = {"replicas": replicas, "readyReplicas": ready, "selector": selector}
    if not v1beta2:
        conds.set("Available", initialized, "WaitingForKubeadmInit")
        conds.set("CertificatesAvailable", True)
        conds.set("MachinesCreated", replicas > 0, "WaitingForMachines")
        conds.set("MachinesReady", ready == replicas and replicas > 0, "WaitingForNodeRef")
        conds.set(
            "MachinesSpecUpToDate",
            not view.outdated,
            "RollingUpdateInProgress",
            f"Rolling {len(view.outdated)} replicas with outdated spec ({up_to_date} replicas up to date)",
            "Warning",
        )
        conds.set(
            "Resized",
            resized,
            scaling or "WaitingForMachines",
            f"scaling to {desired} replicas (actual {replicas})",
            "Warning" if scaling else "Info",
        )
        conds.summary("Ready", "Available", "CertificatesAvailable", "MachinesReady", "MachinesSpecUpToDate", "Resized")
        status.update(
            initialized=initialized,
            # Upstream: ready once an API server answered during provisioning; never reset.
            ready=bool(dig(kcp, "status", "ready")) or (initialized and ready > 0),
            updatedReplicas=up_to_date,
            unavailableReplicas=replicas - ready,
        )
    else:
        available = initialized and ready > 0
        conds.set("Available", available, v1beta2_reason="Available" if available else "NotAvailable")
        conds.set("Initialized", initialized, v1beta2_reason="Initialized" if initialized else "NotInitialized")
        conds.set("CertificatesAvailable", True, v1beta2_reason="Available")
        healthy = ready == replicas and replicas > 0
        for ctype in ("EtcdClusterHealthy", "ControlPlaneComponentsHealthy"):
            conds.set(ctype, healthy, v1beta2_reason="Healthy" if healthy else "NotHealthy")
        conds.set("MachinesReady", healthy, v1beta2_reason="Ready" if healthy else "NotReady")
        conds.replica_set_v1beta2(replicas, desired, rollout=rollout_message(view) if view.outdated else "")
        status.update(
            initialization={"controlPlaneInitialized": initialized},
            availableReplicas=ready,
            upToDateReplicas=up_to_date,
            deprecated={
                "v1beta1": {
                    "readyReplicas": ready,
                    "updatedReplicas": up_to_date,
                    "unavailableReplicas": replicas - ready,
                }
            },
        )
    status["conditions"] = conds.build()
    # Upstream: the lowest version among the Machines (deleting ones included), once there is one.
    version = lowest_version(dig(m, "spec", "version") for m in view.machines)
    if version:
        status["version"] = version
    versions = version_counts(view.machines)
    if versions:
        status["versions"] = versions
    if meta(kcp).get("generation") is not None:
        status["observedGeneration"] = meta(kcp)["generation"]
    return status
