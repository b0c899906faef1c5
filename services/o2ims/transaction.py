"""``Tx``, the transaction of one decision: how it changes a PR record and which commands it emits.

A ``Tx`` starts from the record read from KV and the event being decided, and every rule of
the transition table (``table``) speaks through it: ``update`` changes fields (typed, and
validated, so a misspelt field or an invalid value raises), ``move`` changes state/stage (recording
history, publishing ``PrStatus`` and arming the next stage's deadline), ``send_hostprep`` /
``send_capi`` queue jobs, ``release`` queues lease releases. Commands get deterministic ids
from the record's command counter, so deciding the same event on the same record revision
always yields the same messages. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypedDict, Unpack

from services.o2ims.events import Event
from services.o2ims.policy import Policy
from services.o2ims.record import (
    Command,
    Condition,
    ConditionStatus,
    ConditionType,
    HistoryEntry,
    HostStatus,
    Job,
    OutboxPayload,
    PrRecord,
    RecordChanges,
    roles,
)
from shared.kinds import CapiAction, HostprepAction
from shared.messages import derive_id
from shared.models import ClusterSpec, HostRef
from shared.payloads import CapiJob, HostprepJob, PrDeadline, PrStage, PrState, PrStatus
from shared.subjects import capi_job, hostprep_job, o2ims_status, timer


class HostChanges(TypedDict, total=False):
    """The fields of ``HostStatus`` a rule may change (the role follows the spec)."""

    step: str | None
    status: str
    detail: str | None
    resource_id: str | None
    released: bool
    leaving: bool
    claimed: bool | None
    claimed_at: datetime | None
    quarantined: bool
    version: str | None


@dataclass
class Tx:
    """A decision in the making: the evolving record and the commands it will publish."""

    rec: PrRecord
    event: Event
    now: datetime
    policy: Policy
    #: True when ``rec`` is a provisional record for a PR that had none.
    fresh: bool = False
    commands: list[Command] = field(default_factory=list)
    #: Set when the event leaves the record as it is (the rule's reason, for logs and tests).
    ignored: str | None = None

    # -- record -----------------------------------------------------------------------------

    def update(self, **changes: Unpack[RecordChanges]) -> None:
        """Change record fields; raises ``ValidationError`` for an unknown field or an invalid value."""
        self.rec = self.rec.changed(**changes)

    def ignore(self, why: str) -> None:
        self.ignored = why

    @property
    def spec(self) -> ClusterSpec:
        if self.rec.spec is None:  # only tombstones of spec-less deletes, which no rule extends
            raise ValueError(f"PR {self.rec.pr_id} has no spec")
        return self.rec.spec

    def condition(self, ctype: ConditionType, status: ConditionStatus, reason: str, message: str = "") -> None:
        old = self.rec.condition(ctype)
        # Like Kubernetes conditions: the time changes only when the status does.
        at = old.at if old is not None and old.status == status else self.now
        new = Condition(type=ctype, status=status, reason=reason, message=message, at=at)
        others = tuple(c for c in self.rec.conditions if c.type != ctype)
        self.update(conditions=(*others, new))

    def host(self, host_id: str, **changes: Unpack[HostChanges]) -> None:
        """Change one host's status (validated like ``update``), creating it in its spec role."""
        current = self.rec.hosts.get(host_id)
        if current is None:
            role = roles(self.rec.spec).get(host_id, "worker") if self.rec.spec else "worker"
            current = HostStatus(role=role)
        self.update(hosts={**self.rec.hosts, host_id: current.evolve(**changes)})

    def track_spec_hosts(self) -> None:
        """Give every host of the spec a status entry (new hosts start ``pending``)."""
        hosts = dict(self.rec.hosts)
        for host_id, role in roles(self.spec).items():
            old = hosts.get(host_id)
            hosts[host_id] = HostStatus(role=role) if old is None or old.released else old.evolve(role=role)
        self.update(hosts=hosts)

    # -- commands ---------------------------------------------------------------------------

    def _command(
        self,
        subject: str | None,
        payload: OutboxPayload | None,
        release: tuple[str, ...] = (),
        quarantine: tuple[str, ...] = (),
        quarantine_reason: str = "",
    ) -> Command:
        n = self.rec.cmd_seq + 1
        self.update(cmd_seq=n)
        cmd = Command(
            id=str(derive_id("o2ims", self.rec.pr_id, n)),
            at=self.now,
            causation_id=self.event.message_id or None,
            subject=subject,
            payload=payload,
            release=release,
            quarantine=quarantine,
            quarantine_reason=quarantine_reason,
        )
        self.commands.append(cmd)
        return cmd

    def _retire(self, job: Job | None) -> tuple[str, ...]:
        past = self.rec.past_jobs + ((job.id,) if job else ())
        return past[-self.policy.past_jobs_limit :]

    def send_hostprep(self, action: HostprepAction, hosts: tuple[HostRef, ...]) -> None:
        spec = self.spec
        payload = HostprepJob(
            pr_id=self.rec.pr_id,
            action=action,
            cluster=spec.name,
            namespace=spec.namespace,
            k8s_version=spec.k8s_version,
            hosts=tuple(h.host_id for h in hosts),
        )
        cmd = self._command(hostprep_job(self.rec.pr_id), payload)
        job = Job(id=cmd.id, action=action, hosts=tuple(h.host_id for h in hosts))
        self.update(past_jobs=self._retire(self.rec.hostprep_job), hostprep_job=job)

    def send_capi(
        self, action: CapiAction, spec: ClusterSpec | None = None, *, workers_version: str | None = None
    ) -> None:
        """Queue a capi_renderer job for ``spec`` (default: the PR's; a swap first applies an interim one).

        ``workers_version``: an upgrade's control-plane step, the workers staying at that version."""
        spec = spec or self.spec
        job_payload = CapiJob(pr_id=self.rec.pr_id, action=action, spec=spec, workers_version=workers_version)
        cmd = self._command(capi_job(self.rec.pr_id), job_payload)
        requested = self.rec.capi_requested or action != "delete"
        job = Job(id=cmd.id, action=action, hosts=tuple(h.host_id for h in spec.workers))
        self.update(past_jobs=self._retire(self.rec.capi_job), capi_job=job, capi_requested=requested)

    def release(self, host_ids: list[str]) -> None:
        """Queue the release of these hosts' leases (only leases this PR holds are touched)."""
        if not host_ids:
            return
        self._command(None, None, release=tuple(sorted(host_ids)))
        for host_id in host_ids:
            self.host(host_id, released=True)

    def quarantine(self, host_ids: list[str], reason: str) -> None:
        """Queue the quarantine of these hosts (their reset failed): leased to no one until an operator clears them."""
        if not host_ids:
            return
        self._command(None, None, quarantine=tuple(sorted(host_ids)), quarantine_reason=reason)
        for host_id in host_ids:
            self.host(host_id, released=True, quarantined=True, leaving=False)

    # -- transitions ------------------------------------------------------------------------

    def move(
        self,
        state: PrState,
        stage: PrStage | None = None,
        *,
        reason: str | None = None,
        message: str = "",
        keep_deadline: bool = False,
    ) -> None:
        """Change state/stage: history entry, ``PrStatus``, and the new stage's deadline (unless
        ``keep_deadline``: the next step of the same stage, under the deadline the stage started with)."""
        rec = self.rec
        seq = rec.seq + 1
        entry = HistoryEntry(
            seq=seq,
            at=self.now,
            event=self.event.kind,
            from_state=None if self.fresh else rec.state,
            from_stage=None if self.fresh else rec.stage,
            to_state=state,
            to_stage=stage,
            reason=reason,
        )
        # Host preparation keeps one deadline from acceptance (pending) to the last host ready.
        keeps_deadline = keep_deadline or (
            not self.fresh and rec.state == "pending" and (state, stage) == ("progressing", "hostprep")
        )
        deadline, deadline_seq = rec.deadline, rec.deadline_seq
        seconds = None if keeps_deadline else self.policy.deadline_for(state, stage)
        if not keeps_deadline:
            deadline = self.now + timedelta(seconds=seconds) if seconds is not None else None
            deadline_seq = rec.deadline_seq + 1 if seconds is not None else rec.deadline_seq
        self.update(
            state=state,
            stage=stage,
            reason=reason,
            message=message or None,
            seq=seq,
            stage_entered_at=self.now,
            updated_at=self.now,
            deadline=deadline,
            deadline_seq=deadline_seq,
            history=(*rec.history, entry)[-self.policy.history_limit :],
        )
        self.fresh = False
        self._command(o2ims_status(rec.pr_id), self.status())
        if seconds is not None and deadline is not None:
            armed = PrDeadline(pr_id=rec.pr_id, seq=deadline_seq, state=state, stage=stage, deadline=deadline)
            self._command(timer(rec.pr_id), armed)

    def status(self) -> PrStatus:
        rec = self.rec
        return PrStatus(
            pr_id=rec.pr_id,
            fpr=rec.fpr,
            cluster=rec.cluster,
            state=rec.state,
            stage=rec.stage,
            reason=rec.reason,
            message=rec.message,
            node_cluster_id=rec.node_cluster_id,
            at=self.now,
            seq=rec.seq,
        )

    def result(self) -> PrRecord | None:
        """The record to write, or None when the event changed nothing."""
        if self.ignored is not None and not self.commands:
            return None
        self.update(outbox=(*self.rec.outbox, *self.commands), updated_at=self.now)
        return self.rec
