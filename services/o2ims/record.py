"""The ProvisioningRequest record kept in the ``pr`` KV bucket, and the commands it carries.

One record per PR is the system of record: the requested spec, state and stage, the stage
deadline, conditions, per-host status, provisioned resource ids, the transition history, and
the *outbox*: commands a transition decided but that may not have been published yet (they
are published after the write and removed once out, so a crash in between loses nothing).
Pure data and small pure helpers; no I/O.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal, Self, TypedDict, Unpack

from pydantic import BaseModel, ConfigDict, Field

from shared.models import ClusterSpec, HostRef
from shared.payloads import CapiJob, HostprepJob, PrDeadline, PrStage, PrState, PrStatus

#: Namespace of the provisioned resource ids (O2IMS ``nodeClusterId`` and infrastructure resource ids).
RESOURCE_ID_NAMESPACE = uuid.UUID("3b0c7d1e-52a4-4f8e-9c61-2d7e5a90b4c3")

ConditionType = Literal[
    "HostsPrepared", "ResourcesApplied", "ClusterProvisioned", "ResourcesDeleted", "HostsTornDown", "LeasesReleased"
]
ConditionStatus = Literal["True", "False", "Unknown"]
HostRole = Literal["control-plane", "worker"]

#: Every command an outbox can hold that goes on the bus.
OutboxPayload = Annotated[HostprepJob | CapiJob | PrStatus | PrDeadline, Field(discriminator="type")]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def _evolved(self, changes: dict[str, object]) -> Self:
        """A copy with ``changes`` applied and validated: an unknown field or a bad value raises.

        (``model_copy(update=...)`` would accept both silently.) Only the changed fields are
        validated, each as an assignment to a fresh copy: validating the whole record again would
        re-run every nested model's own checks (a ``ClusterSpec``'s address rules), many times per
        decision. Nested values that are already model instances are taken as they are.
        """
        new = self.model_copy()
        validator = type(self).__pydantic_validator__
        for name, value in changes.items():
            validator.validate_assignment(new, name, value)
        return new

    def evolve(self, **changes: object) -> Self:
        return self._evolved(changes)


class Condition(_Frozen):
    type: ConditionType
    status: ConditionStatus
    reason: str
    message: str = ""
    at: datetime


class HostStatus(_Frozen):
    role: HostRole
    #: Last step reported by hostprep, and its status (``checking`` … ``ready``, ``failed``).
    step: str | None = None
    status: str = "pending"
    detail: str | None = None
    #: O2IMS infrastructure resource id, assigned when the cluster is provisioned.
    resource_id: str | None = None
    #: The host left the cluster (scale-down or delete) and its lease was released.
    released: bool = False
    #: The host left the spec (scale-down, swap) and still holds its lease until it is reset.
    leaving: bool = False
    #: Its ByoHost as status_watcher last saw it: claimed by a Machine (True), unclaimed or gone (False),
    #: never seen (None); ``claimed_at`` orders the observations by the watcher's clock.
    claimed: bool | None = None
    claimed_at: datetime | None = None
    #: Its reset failed: the lease is kept (quarantined) instead of released.
    quarantined: bool = False
    #: During an upgrade: the version label its ByoHost was last seen with (None: not seen since it began).
    version: str | None = None


class Observed(_Frozen):
    """What status_watcher last said about the cluster, ordered by the watcher's own clock."""

    at: datetime
    exists: bool = True
    ready: bool = False
    failure: str | None = None
    phase: str | None = None
    waiting_for: str | None = None
    #: (control-plane ready, control-plane desired, workers ready, workers desired); None when only
    #: an edge event (``cluster.ready``) was seen, which carries no counts.
    counts: tuple[int, int, int, int] | None = None
    machines: dict[str, str] = Field(default_factory=dict)
    #: The versions the control plane and the workers are asked to run, and how many of their Machines do.
    control_plane_version: str | None = None
    control_plane_updated: int = 0
    workers_version: str | None = None
    workers_updated: int = 0
    #: Machine name → its Kubernetes version.
    machine_versions: dict[str, str] = Field(default_factory=dict)


class Upgrade(_Frozen):
    """A Kubernetes upgrade under way (kept until the PR is fulfilled at the new version)."""

    from_version: str
    to_version: str
    #: When the request that started it was received (observations are ordered by the same clock).
    started_at: datetime
    #: Hosts hostprep re-prepared at ``to_version`` after the rollout released them.
    upgraded: tuple[str, ...] = ()
    #: The id of this upgrade's hostprep job (``upgrade`` or ``teardown``) while it runs; one at a time.
    host_job: str | None = None
    #: The single control plane's old host, leaving once the new one on the spare runs.
    moved: tuple[str, ...] = ()


class Job(_Frozen):
    """The job o2ims last sent to hostprep or capi_renderer (its id is the envelope id)."""

    id: str
    action: str
    #: hostprep: the job's hosts; a capi scale: the worker hosts of the spec it applied.
    hosts: tuple[str, ...] = ()
    #: The job's success was reported (``capi.applied`` for an apply/scale).
    confirmed: bool = False


class Queued(_Frozen):
    """A create/update that arrived while a flow was running; started when the flow settles."""

    operation: Literal["create", "update"]
    spec: ClusterSpec
    at: datetime
    message_id: str


class HistoryEntry(_Frozen):
    seq: int
    at: datetime
    event: str
    from_state: PrState | None
    from_stage: PrStage | None
    to_state: PrState
    to_stage: PrStage | None
    reason: str | None = None


class Command(_Frozen):
    """One effect of a transition: publish ``payload`` on ``subject``, or release (or quarantine) host leases.

    ``id`` is the envelope id (deterministic: derived from the PR and the command number), so
    publishing the same command twice is dropped by the stream's duplicate window.
    """

    id: str
    at: datetime
    causation_id: str | None = None
    subject: str | None = None
    payload: OutboxPayload | None = None
    release: tuple[str, ...] = ()
    #: Hosts whose teardown failed: their leases go to quarantine instead of back to the pool.
    quarantine: tuple[str, ...] = ()
    quarantine_reason: str = ""


class PrRecord(_Frozen):
    pr_id: str
    fpr: str
    template_name: str = "byoh-workload-cluster"
    template_version: str = "v1.0.0"
    #: None only for the tombstone of a delete that named no spec.
    spec: ClusterSpec | None
    #: A new incarnation starts when a create arrives for a tombstoned PR.
    incarnation: int = 1
    #: Bumped by every accepted spec change.
    generation: int = 1
    state: PrState
    stage: PrStage | None = None
    reason: str | None = None
    message: str | None = None
    deadline: datetime | None = None
    #: Numbers the deadlines; a timer carrying an older number is stale.
    deadline_seq: int = 0
    stage_entered_at: datetime
    #: Transition counter (also ``PrStatus.seq``).
    seq: int = 0
    #: Command counter, source of deterministic command ids.
    cmd_seq: int = 0
    #: When the bus received the newest request applied: older requests are replays or overtaken.
    request_at: datetime
    conditions: tuple[Condition, ...] = ()
    hosts: dict[str, HostStatus] = Field(default_factory=dict)
    #: Hosts that left the spec and are not reset yet (their addresses, for the reset job).
    leaving: tuple[HostRef, ...] = ()
    node_cluster_id: str | None = None
    hostprep_job: Job | None = None
    capi_job: Job | None = None
    #: Ids of earlier jobs of this PR: events caused by them are stale.
    past_jobs: tuple[str, ...] = ()
    #: CAPI objects may exist (an apply/scale was sent in this incarnation).
    capi_requested: bool = False
    #: The cluster reached ``fulfilled`` at least once in this incarnation (later flows are day-2).
    fulfilled_once: bool = False
    observed: Observed | None = None
    queued: Queued | None = None
    #: The Kubernetes upgrade under way (None: none).
    upgrade: Upgrade | None = None
    history: tuple[HistoryEntry, ...] = ()
    outbox: tuple[Command, ...] = ()
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None
    #: The deletion is decided: the lease releases and quarantines in the outbox go first, and only once they
    #: are done is the tombstone written and ``deleted`` published (``deletion.complete``, driven by the engine).
    tombstone_pending: bool = False

    @property
    def phase(self) -> str:
        return phase_name(self.state, self.stage)

    @property
    def cluster(self) -> str:
        return self.spec.name if self.spec else ""

    def spec_hosts(self) -> dict[str, HostRef]:
        return {h.host_id: h for h in self.spec.all_hosts} if self.spec else {}

    def condition(self, ctype: ConditionType) -> Condition | None:
        return next((c for c in self.conditions if c.type == ctype), None)

    def without_commands(self, ids: set[str]) -> PrRecord:
        return self.changed(outbox=tuple(c for c in self.outbox if c.id not in ids))

    def changed(self, **changes: Unpack[RecordChanges]) -> PrRecord:
        """A copy with ``changes``: the keys are checked by mypy, keys and values again at run time."""
        return self._evolved(dict(changes))


class RecordChanges(TypedDict, total=False):
    """The fields of ``PrRecord`` a transition may change, with their types (kept equal by a test)."""

    pr_id: str
    fpr: str
    template_name: str
    template_version: str
    spec: ClusterSpec | None
    incarnation: int
    generation: int
    state: PrState
    stage: PrStage | None
    reason: str | None
    message: str | None
    deadline: datetime | None
    deadline_seq: int
    stage_entered_at: datetime
    seq: int
    cmd_seq: int
    request_at: datetime
    conditions: tuple[Condition, ...]
    hosts: dict[str, HostStatus]
    leaving: tuple[HostRef, ...]
    node_cluster_id: str | None
    hostprep_job: Job | None
    capi_job: Job | None
    past_jobs: tuple[str, ...]
    capi_requested: bool
    fulfilled_once: bool
    observed: Observed | None
    queued: Queued | None
    upgrade: Upgrade | None
    history: tuple[HistoryEntry, ...]
    outbox: tuple[Command, ...]
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    tombstone_pending: bool


def phase_name(state: PrState | None, stage: PrStage | None) -> str:
    """``progressing/hostprep`` style names: the rows of the transition table.

    Only ``progressing`` and ``deleting`` have stages that matter to the table; ``failed``
    keeps the stage it failed in for the reader, but behaves the same whatever it is.
    """
    if state is None:
        return "absent"
    return f"{state}/{stage}" if stage and state in ("progressing", "deleting") else state


def node_cluster_id(pr_id: str, cluster: str) -> str:
    return str(uuid.uuid5(RESOURCE_ID_NAMESPACE, f"node-cluster\x1f{pr_id}\x1f{cluster}"))


def infrastructure_resource_id(cluster_id: str, host_id: str) -> str:
    return str(uuid.uuid5(RESOURCE_ID_NAMESPACE, f"host\x1f{cluster_id}\x1f{host_id}"))


def roles(spec: ClusterSpec) -> dict[str, HostRole]:
    out: dict[str, HostRole] = {h.host_id: "control-plane" for h in spec.control_plane}
    out.update({h.host_id: "worker" for h in spec.workers})
    return out
