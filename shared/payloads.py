"""The payload of every message type on the bus, one frozen pydantic model each.

Each model's ``type`` literal is the envelope ``type`` that carries it; ``shared.messages``
lists every one in its discriminated union ``AnyPayload`` (a test checks none is missing).
Payloads carry ids, names, states and reasons, never credentials, and never addresses a receiver
would act on: a hostprep job names its hosts by id, and hostprep looks everything else up in its
own inventory. Every payload is untrusted input: models are strict (unknown fields refused) and
every string field has a constrained type from ``shared.fields`` (identifiers: ASCII patterns and
length limits; text: no control characters). A contract change here shows up in the JSON-schema
snapshot test. The hostprep and capi_renderer payloads are defined in ``shared.job_payloads`` and
re-exported here, so every payload is importable from this module.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StrictBool, StrictInt

from shared.fields import (
    MAX_HOSTS,
    ClusterName,
    ClusterNameOrEmpty,
    DurableName,
    FprName,
    HostId,
    K8sVersion,
    Line,
    MessageType,
    MessageUuid,
    Namespace,
    ObjectName,
    PrId,
    Reason,
    StepName,
    Subject,
    TemplateName,
    TemplateVersion,
    Text,
    Token,
    printable,
)
from shared.job_payloads import (
    CapiApplied,
    CapiDeleted,
    CapiFailed,
    CapiJob,
    HostFailure,
    HostprepDone,
    HostprepFailed,
    HostprepJob,
    HostProgress,
    ObjectRef,
)
from shared.kinds import Decision, FprPhase, Operation, PrCommand, PrStage, PrState
from shared.models import ClusterSpec
from shared.payload_base import Payload, Value

#: Explicit re-exports (the bases, the job payloads, the PR kinds) keep every payload importable from here.
__all__ = [
    "PR_ID_NAMESPACE",
    "ByoHostSummary",
    "CapiApplied",
    "CapiDeleted",
    "CapiFailed",
    "CapiJob",
    "ChildStatus",
    "ClusterSummary",
    "ClusterTransition",
    "FocomDecision",
    "FocomRequest",
    "FprStatus",
    "HostFailure",
    "HostProgress",
    "HostSelection",
    "HostprepDone",
    "HostprepFailed",
    "HostprepJob",
    "MessageFailed",
    "ObjectRef",
    "Payload",
    "PlannedCluster",
    "PrDeadline",
    "PrRequest",
    "PrStage",
    "PrState",
    "PrStatus",
    "TemplateHosts",
    "TemplateParameters",
    "Value",
    "pr_id_for",
]


# ── generic ────────────────────────────────────────────────────────────────────────────


class MessageFailed(Payload):
    """Published by the bus when a consumer terminates a message (permanent or exhausted)."""

    type: Literal["message.failed"] = "message.failed"
    consumer: DurableName
    subject: Subject
    message_id: MessageUuid | None = None
    message_type: MessageType | None = None
    reason: Reason
    error: Text
    path: Line | None = None
    deliveries: int = Field(ge=0)

    @classmethod
    def about(
        cls,
        *,
        consumer: str,
        subject: str,
        message_id: str | None,
        message_type: str | None,
        reason: str,
        error: str,
        path: str | None,
        deliveries: int,
    ) -> MessageFailed:
        """The failure of a message whose subject, error and path may hold anything its sender wrote.

        The foreign parts are made printable and cut to fit, so the report itself is always valid.
        """
        ascii_subject = printable(subject, 200, single_line=True).encode("ascii", "backslashreplace").decode()
        return cls(
            consumer=consumer,
            subject=ascii_subject.replace(" ", "_")[:256] or "_",
            message_id=message_id,
            message_type=message_type,
            reason=reason,
            error=printable(error),
            path=printable(path, 256, single_line=True) if path is not None else None,
            deliveries=deliveries,
        )


# ── FOCOM ──────────────────────────────────────────────────────────────────────────────


#: A PR id is UUIDv5(PR_ID_NAMESPACE, "<fpr>/<cluster>"): a replayed request maps to the same PR.
PR_ID_NAMESPACE = uuid.UUID("0b7e9c52-4f0e-5d8a-9c1e-6a2f3b4c5d6e")


def pr_id_for(fpr: str, cluster: str) -> str:
    """The deterministic ProvisioningRequest id of ``cluster`` requested by the FOCOM request ``fpr``."""
    return str(uuid.uuid5(PR_ID_NAMESPACE, f"{fpr}/{cluster}"))


#: Bounds of free-form template parameters: nesting, members per object/array, characters per string.
_PARAM_DEPTH, _PARAM_ITEMS, _PARAM_STRING = 8, 20_000, 1024
_FORBIDDEN = set(
    map(chr, [*range(0x00, 0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A)])
)


def _json_strings_clean(value: Any, depth: int = 0) -> None:
    if depth > _PARAM_DEPTH:
        raise ValueError(f"nested deeper than {_PARAM_DEPTH} levels")
    if isinstance(value, str):
        if len(value) > _PARAM_STRING:
            raise ValueError(f"a string longer than {_PARAM_STRING} characters")
        if not _FORBIDDEN.isdisjoint(value):
            raise ValueError("a string holds a control character")
    elif isinstance(value, dict):
        if len(value) > _PARAM_ITEMS:
            raise ValueError(f"an object with more than {_PARAM_ITEMS} members")
        for key, item in value.items():
            _json_strings_clean(key, depth + 1)
            _json_strings_clean(item, depth + 1)
    elif isinstance(value, list | tuple):
        if len(value) > _PARAM_ITEMS:
            raise ValueError(f"an array with more than {_PARAM_ITEMS} items")
        for item in value:
            _json_strings_clean(item, depth + 1)


def _clean_parameters(value: dict[str, Any]) -> dict[str, Any]:
    _json_strings_clean(value)
    return value


#: Template parameters are checked in depth by the template; here only their shape and characters.
TemplateParameters = Annotated[dict[str, Any], AfterValidator(_clean_parameters)]


class HostSelection(Value):
    hostId: HostId


class TemplateHosts(Value):
    masters: tuple[HostSelection, ...] = Field(min_length=1)
    workers: tuple[HostSelection, ...] = ()


class FocomRequest(Payload):
    """A FOCOM provisioning request (also the spec of the FocomProvisioningRequest CR)."""

    type: Literal["focom.request"] = "focom.request"
    name: FprName
    operation: Operation = "create"
    #: Strict: ``"yes"`` or ``1`` is a mistake to report, not a ``true`` to guess.
    allClusters: StrictBool | None = None
    clusterNames: tuple[ClusterName, ...] | None = Field(default=None, max_length=10_000)
    templateName: TemplateName | None = None
    templateVersion: TemplateVersion | None = None
    templateParameters: TemplateParameters | None = None
    #: For ``scale``: the cluster's new worker list, or a target count filled from free hosts.
    workers: tuple[HostSelection, ...] | None = Field(default=None, max_length=MAX_HOSTS)
    targetWorkerCount: StrictInt | None = Field(default=None, ge=0)


class FocomDecision(Payload):
    """An approver's decision on a FOCOM request waiting in ``PendingApproval`` (published on ``focom.requests``).

    ``approve`` carries the request out (feasibility is checked again: hosts taken meanwhile fail it with the
    conflict); ``reject`` removes the pending request, which never leased or prepared anything.
    """

    type: Literal["focom.decision"] = "focom.decision"
    name: FprName
    decision: Decision
    #: Who decided (the token subject, or ``o2ctl``), for the record and the status message.
    by: Line = ""


class PlannedCluster(Value):
    """What an approved request would create for one cluster: its hosts, the leases approval takes."""

    cluster: ClusterName
    pr_id: PrId
    control_plane: tuple[HostId, ...] = Field(max_length=MAX_HOSTS)
    workers: tuple[HostId, ...] = Field(default=(), max_length=MAX_HOSTS)


class ChildStatus(Value):
    cluster: ClusterName
    pr_id: PrId
    state: StepName
    stage: StepName | None = None
    reason: Reason | None = None
    message: Text | None = None


class FprStatus(Payload):
    type: Literal["focom.status"] = "focom.status"
    name: FprName
    phase: FprPhase
    message: Text = ""
    children: tuple[ChildStatus, ...] = Field(default=(), max_length=10_000)
    updated_at: datetime
    #: The operation being carried out and how many accepted requests changed this FPR so far.
    operation: Operation | None = None
    generation: int = Field(default=0, ge=0)
    #: The plan of a request waiting in ``PendingApproval`` (empty otherwise).
    plan: tuple[PlannedCluster, ...] = Field(default=(), max_length=10_000)


# ── O2IMS ──────────────────────────────────────────────────────────────────────────────


class PrRequest(Payload):
    """A command to O2IMS for one cluster: create, update (scale/parameters) or delete."""

    type: Literal["o2ims.request"] = "o2ims.request"
    pr_id: PrId
    fpr: FprName
    operation: PrCommand
    template_name: TemplateName = "byoh-workload-cluster"
    template_version: TemplateVersion = "v1.0.0"
    spec: ClusterSpec | None = None


class PrStatus(Payload):
    type: Literal["o2ims.status"] = "o2ims.status"
    pr_id: PrId
    fpr: FprName
    #: Empty once a deleted PR's record no longer names its cluster.
    cluster: ClusterNameOrEmpty
    state: PrState
    stage: PrStage | None = None
    reason: Reason | None = None
    message: Text | None = None
    node_cluster_id: MessageUuid | None = None
    at: datetime
    #: The PR's transition number (increases by one per transition): consumers drop older ones.
    seq: int = Field(default=0, ge=0)


class PrDeadline(Payload):
    """A stage deadline o2ims sends itself on ``timers.o2ims.<pr>``; it is redelivered until due."""

    type: Literal["o2ims.deadline"] = "o2ims.deadline"
    pr_id: PrId
    #: The record's deadline number when armed: a timer for an earlier deadline is stale.
    seq: int = Field(ge=0)
    state: PrState
    stage: PrStage | None = None
    deadline: datetime


# ── status_watcher ─────────────────────────────────────────────────────────────────────


class ClusterSummary(Payload):
    """The truthful state of one workload cluster (DESIGN §6)."""

    type: Literal["k8s.cluster.status"] = "k8s.cluster.status"
    namespace: Namespace
    #: Any Cluster status_watcher sees (not only ours), so any Kubernetes object name.
    name: ObjectName
    #: From the Cluster's ``o2ims.oran.org/pr-id`` label, so O2IMS can route without a lookup.
    pr_id: PrId | None = None
    exists: StrictBool = True
    phase: Line | None = None
    control_plane_initialized: StrictBool = False
    control_plane_ready: int = Field(default=0, ge=0)
    control_plane_desired: int = Field(default=0, ge=0)
    workers_ready: int = Field(default=0, ge=0)
    workers_desired: int = Field(default=0, ge=0)
    machines: dict[ObjectName, Line] = Field(default_factory=dict, max_length=MAX_HOSTS)
    #: The version the KubeadmControlPlane asks for (``spec.version``), and how many of its Machines run it
    #: (Running with a node, not being deleted); likewise for the MachineDeployments' ``template.spec.version``.
    #: A rollout is over when every Machine of the role is at its version.
    control_plane_version: K8sVersion | None = None
    control_plane_updated: int = Field(default=0, ge=0)
    workers_version: K8sVersion | None = None
    workers_updated: int = Field(default=0, ge=0)
    #: Machine name → its ``spec.version`` (the kubelet version CAPI bootstraps it with).
    machine_versions: dict[ObjectName, K8sVersion] = Field(default_factory=dict, max_length=MAX_HOSTS)
    cni_applied: StrictBool = False
    kubeconfig_present: StrictBool = False
    ready: StrictBool = False
    failure: Text | None = None
    #: The first unmet readiness requirement (DESIGN §6), for progress details; None when ready or failed.
    waiting_for: Text | None = None


class ClusterTransition(Payload):
    """Explicit edge events: the cluster became ready, or failed."""

    type: Literal["cluster.ready", "cluster.failed"]
    namespace: Namespace
    name: ObjectName
    pr_id: PrId | None = None
    #: For ``cluster.failed``: the failure as status_watcher describes it.
    reason: Text | None = None


class ByoHostSummary(Payload):
    type: Literal["k8s.byohost.status"] = "k8s.byohost.status"
    namespace: Namespace
    name: ObjectName
    host_id: HostId | None = None
    #: The ``o2ims.oran.org/k8s-version`` label the agent registered with (the host's installed version).
    k8s_version: K8sVersion | None = None
    exists: StrictBool = True
    registered: StrictBool = False
    free: StrictBool = False
    claimed_by: Token | None = None
    bootstrap_condition: Line | None = None
    #: Set when the host's bootstrap failed (``CloudInitExecutionFailed``), with the agent's message.
    failure: Text | None = None
