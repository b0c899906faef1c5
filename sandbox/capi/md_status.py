"""The status the simulated MachineDeployment controller writes, in the v1beta1 or v1beta2 shape.

``updatedReplicas`` (v1beta1) / ``upToDateReplicas`` (v1beta2) count the Machines of the current
template's MachineSet, ``versions`` counts Machines per ``spec.version``; a rollout shows as
``RollingOut`` True and ``MachinesUpToDate`` False (v1beta2), and new Machines held back by the
MachineSet preflight as ``MachineSetReady`` False ``PreflightCheckFailed`` (v1beta1) or in the
``ScalingUp`` message (v1beta2), worded as CAPI words them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.capi.machines import machine_ready
from sandbox.capi.rollout import version_counts
from sandbox.capi.shapes import Conditions, Obj, selector_string
from shared.objects import CLUSTER_NAME_LABEL, DEPLOYMENT_NAME_LABEL, dig, meta


@dataclass
class MdView:
    """What the controller found: live Machines of the current (``new``) and earlier (``old``) templates."""

    cluster: str
    live: list[Obj]
    new: list[Obj]
    old: list[Obj]
    desired: int
    #: Why new Machines are held back (a failed MachineSet preflight check), if they are.
    blocked: str | None = None


def md_status(md: Obj, view: MdView, *, v1beta2: bool) -> dict[str, Any]:
    name = str(meta(md)["name"])
    desired, replicas = view.desired, len(view.live)
    ready = sum(1 for m in view.live if machine_ready(m))
    unavailable = max(desired - ready, 0)
    up_to_date = len(view.new)
    if replicas < desired:
        phase = "ScalingUp"
    elif replicas > desired:
        phase = "ScalingDown"
    else:
        phase = "Running" if ready == desired else "ScalingUp"
    selector = selector_string({CLUSTER_NAME_LABEL: view.cluster, DEPLOYMENT_NAME_LABEL: name})
    conds = Conditions(dig(md, "status", "conditions"), v1beta2=v1beta2)
    available = ready >= desired
    status: dict[str, Any] = {
        "replicas": replicas,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "phase": phase,
        "selector": selector,
    }
    rollout = ""
    if view.old:
        rollout = f"Rolling out {len(view.old)} not up-to-date replicas"
    if not v1beta2:
        conds.set(
            "Available",
            available,
            "WaitingForAvailableMachines",
            f"{ready} of {desired} machines available",
            "Warning",
        )
        if view.blocked:
            conds.set("MachineSetReady", False, "PreflightCheckFailed", f"{name}: {view.blocked}", "Warning")
        else:
            conds.set("MachineSetReady", ready == replicas and replicas == desired, "WaitingForMachines")
        conds.summary("Ready", "Available", "MachineSetReady")
        status.update(updatedReplicas=up_to_date, unavailableReplicas=unavailable)
    else:
        conds.set("Available", available, v1beta2_reason="Available" if available else "NotAvailable")
        all_ready = ready == replicas
        conds.set("MachinesReady", all_ready, v1beta2_reason="Ready" if all_ready else "NotReady")
        conds.replica_set_v1beta2(replicas, desired, rollout=rollout)
        if view.blocked:
            message = f"Scaling up MachineSet to {desired} replicas (actual {len(view.new)})\n* {view.blocked}"
            conds.set("ScalingUp", True, message=message, v1beta2_reason="ScalingUp")
        status.update(
            upToDateReplicas=up_to_date,
            deprecated={
                "v1beta1": {
                    "readyReplicas": ready,
                    "availableReplicas": ready,
                    "updatedReplicas": up_to_date,
                    "unavailableReplicas": unavailable,
                }
            },
        )
    status["conditions"] = conds.build()
    versions = version_counts(view.live)
    if versions:
        status["versions"] = versions
    if meta(md).get("generation") is not None:
        status["observedGeneration"] = meta(md)["generation"]
    return status
