"""Every closed set of the system, named once: operations, phases, states, stages and job actions.

Payloads, records and handlers all use these types. Each set is a ``Literal`` (what pydantic
validates and what the JSON schemas show) with a tuple of its members for iteration. Every
dispatch over a set is a ``match`` whose last case is ``assert_never``, so adding a member here
makes mypy name every place that does not handle it yet::

    match operation:
        case "create": ...
        case "scale": ...
        case "delete": ...
        case "upgrade": ...
        case _:
            assert_never(operation)

Lookups keyed by a set (deadlines by stage, say) are typed by the set and tested to cover it.
"""

from __future__ import annotations

from typing import Literal, get_args

#: What a FOCOM request asks of its clusters (the FPR's ``operation``). ``upgrade``: move fulfilled clusters to
#: the Kubernetes version the inventory or the template now names.
Operation = Literal["create", "scale", "delete", "upgrade"]
OPERATIONS: tuple[Operation, ...] = get_args(Operation)

#: An approver's answer to a request waiting in ``PendingApproval``.
Decision = Literal["approve", "reject"]
DECISIONS: tuple[Decision, ...] = get_args(Decision)

#: What focom asks o2ims of one cluster (``PrRequest.operation``): a spec change is an ``update``.
PrCommand = Literal["create", "update", "delete"]
PR_COMMANDS: tuple[PrCommand, ...] = get_args(PrCommand)

#: The phase of a FOCOM request (FPR), rolled up from its clusters. ``PendingApproval``: accepted for review
#: under change control (``O2_FOCOM_REQUIRE_APPROVAL``); nothing is leased or prepared until it is approved.
FprPhase = Literal[
    "Pending",
    "PendingApproval",
    "Validating",
    "Creating",
    "Scaling",
    "Upgrading",
    "Synced",
    "Failed",
    "Deleting",
    "Deleted",
]
FPR_PHASES: tuple[FprPhase, ...] = get_args(FprPhase)

#: The state of a ProvisioningRequest (one cluster).
PrState = Literal["pending", "progressing", "fulfilled", "failed", "deleting", "deleted"]
PR_STATES: tuple[PrState, ...] = get_args(PrState)

#: Where a progressing or deleting PR is (a failed PR keeps the stage it failed in). ``teardown``: hosts
#: leaving the cluster (scaled down, swapped out, or all of them on delete) are reset before their leases
#: are released. A Kubernetes upgrade rolls the control plane first (``upgrade-control-plane``: the
#: KubeadmControlPlane rollout), then the workers (``upgrade-workers``: the MachineDeployment rollout),
#: each host re-prepared at the new version as the rollout frees it.
PrStage = Literal[
    "hostprep",
    "apply",
    "provisioning",
    "scaling",
    "teardown",
    "capi-delete",
    "upgrade-control-plane",
    "upgrade-workers",
]
PR_STAGES: tuple[PrStage, ...] = get_args(PrStage)

#: A capi_renderer job: apply the whole render, re-apply with a new worker set, roll the cluster to a new
#: Kubernetes version (versioned machine templates, one rollout step at a time), or delete.
CapiAction = Literal["apply", "scale", "upgrade", "delete"]
CAPI_ACTIONS: tuple[CapiAction, ...] = get_args(CapiAction)

#: A hostprep job: prepare hosts, reset hosts that left a cluster (kubeadm reset, agent state removed), or
#: upgrade hosts a version rollout released (reset, target packages, ByoHost registered again under the
#: target version's label).
HostprepAction = Literal["prepare", "teardown", "upgrade"]
HOSTPREP_ACTIONS: tuple[HostprepAction, ...] = get_args(HostprepAction)

#: The status of one host's step in a hostprep progress report.
HostStepStatus = Literal["checking", "running", "done", "skipped", "failed", "ready"]
HOST_STEP_STATUSES: tuple[HostStepStatus, ...] = get_args(HostStepStatus)
