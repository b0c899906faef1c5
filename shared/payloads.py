"""The payload of every message type on the bus, one frozen pydantic model each.

Each model's ``type`` literal is the envelope ``type`` that carries it; ``shared.messages``
lists every one in its discriminated union ``AnyPayload`` (a test checks none is missing).
Payloads carry ids, names, states and reasons, never credentials. A contract change here shows
up in the JSON-schema snapshot test.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from shared.kinds import CapiAction, Decision, FprPhase, HostprepAction, HostStepStatus, Operation, PrCommand
from shared.kinds import PrStage as PrStage  # noqa: PLC0414 - re-exported for modules importing it from here
from shared.kinds import PrState as PrState  # noqa: PLC0414 - re-exported for modules importing it from here
from shared.models import ClusterSpec, HostRef


class Value(BaseModel):
    """A frozen value inside a payload (not a message of its own)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Payload(Value):
    #: The message type; every concrete payload narrows it to a literal.
    type: str


# ── generic ────────────────────────────────────────────────────────────────────────────


class MessageFailed(Payload):
    """Published by the bus when a consumer terminates a message (permanent or exhausted)."""

    type: Literal["message.failed"] = "message.failed"
    consumer: str
    subject: str
    message_id: str | None = None
    message_type: str | None = None
    reason: str
    error: str
    path: str | None = None
    deliveries: int


# ── FOCOM ──────────────────────────────────────────────────────────────────────────────


#: A PR id is UUIDv5(PR_ID_NAMESPACE, "<fpr>/<cluster>"): a replayed request maps to the same PR.
PR_ID_NAMESPACE = uuid.UUID("0b7e9c52-4f0e-5d8a-9c1e-6a2f3b4c5d6e")


def pr_id_for(fpr: str, cluster: str) -> str:
    """The deterministic ProvisioningRequest id of ``cluster`` requested by the FOCOM request ``fpr``."""
    return str(uuid.uuid5(PR_ID_NAMESPACE, f"{fpr}/{cluster}"))


class HostSelection(Value):
    hostId: str


class TemplateHosts(Value):
    masters: tuple[HostSelection, ...] = Field(min_length=1)
    workers: tuple[HostSelection, ...] = ()


class FocomRequest(Payload):
    """A FOCOM provisioning request (also the spec of the FocomProvisioningRequest CR)."""

    type: Literal["focom.request"] = "focom.request"
    name: str
    operation: Operation = "create"
    #: Strict: ``"yes"`` or ``1`` is a mistake to report, not a ``true`` to guess.
    allClusters: StrictBool | None = None
    clusterNames: tuple[str, ...] | None = None
    templateName: str | None = None
    templateVersion: str | None = None
    templateParameters: dict[str, Any] | None = None
    #: For ``scale``: the cluster's new worker list, or a target count filled from free hosts.
    workers: tuple[HostSelection, ...] | None = None
    targetWorkerCount: StrictInt | None = Field(default=None, ge=0)


class FocomDecision(Payload):
    """An approver's decision on a FOCOM request waiting in ``PendingApproval`` (published on ``focom.requests``).

    ``approve`` carries the request out (feasibility is checked again: hosts taken meanwhile fail it with the
    conflict); ``reject`` removes the pending request, which never leased or prepared anything.
    """

    type: Literal["focom.decision"] = "focom.decision"
    name: str = Field(min_length=1, max_length=63)
    decision: Decision
    #: Who decided (the token subject, or ``o2ctl``), for the record and the status message.
    by: str = Field("", max_length=253)


class PlannedCluster(Value):
    """What an approved request would create for one cluster: its hosts, the leases approval takes."""

    cluster: str
    pr_id: str
    control_plane: tuple[str, ...]
    workers: tuple[str, ...] = ()


class ChildStatus(Value):
    cluster: str
    pr_id: str
    state: str
    stage: str | None = None
    reason: str | None = None
    message: str | None = None


class FprStatus(Payload):
    type: Literal["focom.status"] = "focom.status"
    name: str
    phase: FprPhase
    message: str = ""
    children: tuple[ChildStatus, ...] = ()
    updated_at: datetime
    #: The operation being carried out and how many accepted requests changed this FPR so far.
    operation: Operation | None = None
    generation: int = 0
    #: The plan of a request waiting in ``PendingApproval`` (empty otherwise).
    plan: tuple[PlannedCluster, ...] = ()


# ── O2IMS ──────────────────────────────────────────────────────────────────────────────


class PrRequest(Payload):
    """A command to O2IMS for one cluster: create, update (scale/parameters) or delete."""

    type: Literal["o2ims.request"] = "o2ims.request"
    pr_id: str
    fpr: str
    operation: PrCommand
    template_name: str = "byoh-workload-cluster"
    template_version: str = "v1.0.0"
    spec: ClusterSpec | None = None


class PrStatus(Payload):
    type: Literal["o2ims.status"] = "o2ims.status"
    pr_id: str
    fpr: str
    cluster: str
    state: PrState
    stage: PrStage | None = None
    reason: str | None = None
    message: str | None = None
    node_cluster_id: str | None = None
    at: datetime
    #: The PR's transition number (increases by one per transition): consumers drop older ones.
    seq: int = 0


class PrDeadline(Payload):
    """A stage deadline o2ims sends itself on ``timers.o2ims.<pr>``; it is redelivered until due."""

    type: Literal["o2ims.deadline"] = "o2ims.deadline"
    pr_id: str
    #: The record's deadline number when armed: a timer for an earlier deadline is stale.
    seq: int
    state: PrState
    stage: PrStage | None = None
    deadline: datetime


# ── hostprep ───────────────────────────────────────────────────────────────────────────


class HostprepJob(Payload):
    type: Literal["hostprep.job"] = "hostprep.job"
    pr_id: str
    action: HostprepAction
    cluster: str
    namespace: str = "default"
    k8s_version: str
    hosts: tuple[HostRef, ...] = Field(min_length=1)
    purge_packages: bool = False


class HostProgress(Payload):
    type: Literal["hostprep.host.progress"] = "hostprep.host.progress"
    pr_id: str
    host_id: str
    step: str
    status: HostStepStatus
    detail: str | None = None


class HostprepDone(Payload):
    type: Literal["hostprep.job.done"] = "hostprep.job.done"
    pr_id: str
    action: HostprepAction
    hosts: tuple[str, ...]


class HostFailure(BaseModel):
    """Why one host of a hostprep job failed (an item of ``HostprepFailed.failures``, not a message)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host_id: str
    step: str | None = None
    reason: str
    message: str
    exit_code: int | None = None
    stderr_tail: str | None = None


class HostprepFailed(Payload):
    type: Literal["hostprep.job.failed"] = "hostprep.job.failed"
    pr_id: str
    action: HostprepAction
    host_id: str | None = None
    step: str | None = None
    exit_code: int | None = None
    stderr_tail: str | None = None
    reason: str
    message: str
    #: Every failed host (the fields above repeat the first one); hosts not listed here nor in
    #: ``ready_hosts`` were not reached.
    failures: tuple[HostFailure, ...] = ()
    ready_hosts: tuple[str, ...] = ()


# ── capi_renderer ──────────────────────────────────────────────────────────────────────


class ObjectRef(Value):
    api_version: str
    kind: str
    namespace: str | None = None
    name: str


class CapiJob(Payload):
    type: Literal["capi.job"] = "capi.job"
    pr_id: str
    action: CapiAction
    spec: ClusterSpec


class CapiApplied(Payload):
    type: Literal["capi.applied"] = "capi.applied"
    pr_id: str
    action: Literal["apply", "scale"]
    objects: tuple[ObjectRef, ...]


class CapiDeleted(Payload):
    type: Literal["capi.deleted"] = "capi.deleted"
    pr_id: str
    cluster: str
    namespace: str
    gone: bool


class CapiFailed(Payload):
    type: Literal["capi.failed"] = "capi.failed"
    pr_id: str
    action: CapiAction
    reason: str
    message: str


# ── status_watcher ─────────────────────────────────────────────────────────────────────


class ClusterSummary(Payload):
    """The truthful state of one workload cluster (DESIGN §6)."""

    type: Literal["k8s.cluster.status"] = "k8s.cluster.status"
    namespace: str
    name: str
    #: From the Cluster's ``o2ims.oran.org/pr-id`` label, so O2IMS can route without a lookup.
    pr_id: str | None = None
    exists: bool = True
    phase: str | None = None
    control_plane_initialized: bool = False
    control_plane_ready: int = 0
    control_plane_desired: int = 0
    workers_ready: int = 0
    workers_desired: int = 0
    machines: dict[str, str] = Field(default_factory=dict)
    cni_applied: bool = False
    kubeconfig_present: bool = False
    ready: bool = False
    failure: str | None = None
    #: The first unmet readiness requirement (DESIGN §6), for progress details; None when ready or failed.
    waiting_for: str | None = None


class ClusterTransition(Payload):
    """Explicit edge events: the cluster became ready, or failed."""

    type: Literal["cluster.ready", "cluster.failed"]
    namespace: str
    name: str
    pr_id: str | None = None
    reason: str | None = None


class ByoHostSummary(Payload):
    type: Literal["k8s.byohost.status"] = "k8s.byohost.status"
    namespace: str
    name: str
    host_id: str | None = None
    exists: bool = True
    registered: bool = False
    free: bool = False
    claimed_by: str | None = None
    bootstrap_condition: str | None = None
    #: Set when the host's bootstrap failed (``CloudInitExecutionFailed``), with the agent's message.
    failure: str | None = None

