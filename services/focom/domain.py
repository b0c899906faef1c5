"""focom's pure logic: the FPR record, planning create/scale/delete, status roll-up and the FPR phase.

Nothing here does I/O. Handlers load the record, call a ``plan_*`` function (what should be, and
which commands follow), write the record with a revision check, then publish. The phase is a
function of the children, read as a table (DESIGN §4)::

    any wanted child failed (since our last command) ........ Failed  (naming clusters and reasons)
    any child being deleted and not yet gone ................ Deleting
    every child deleted ..................................... Deleted
    every wanted child fulfilled ............................ Synced
    otherwise, the last operation was scale ................. Scaling
    otherwise, the last operation was upgrade ............... Upgrading
    otherwise ............................................... Creating

A child is *settled* once o2ims reported on it after our latest command for it; an unsettled child
counts as in progress whatever its previous state, so a scale of a fulfilled cluster reads
``Scaling`` until o2ims has seen the update.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, assert_never

from pydantic import BaseModel, ConfigDict

from shared.errors import InputError
from shared.kinds import FprPhase, Operation, PrCommand
from shared.models import ClusterSpec
from shared.payloads import ChildStatus, FprStatus, PlannedCluster, PrRequest, PrStatus, pr_id_for


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Child(_Record):
    """One cluster of an FPR: what we want of it, our last command, and what o2ims last said."""

    cluster: str
    pr_id: str
    desired: Literal["present", "absent"] = "present"
    command: PrCommand = "create"
    #: The FPR generation in which ``command`` was decided (part of its message id).
    command_gen: int
    #: When ``command`` was decided; o2ims reports from before it do not settle the child.
    since: datetime
    state: str = "pending"
    stage: str | None = None
    reason: str | None = None
    message: str | None = None
    at: datetime | None = None
    seq: int = 0
    #: Every host of the cluster's current spec (control plane first), i.e. the leases it holds.
    hosts: tuple[str, ...] = ()
    spec_digest: str = ""

    @property
    def settled(self) -> bool:
        return self.at is not None and self.at >= self.since


class FprRecord(_Record):
    """The ``fpr`` bucket record of one FOCOM request (key = its name)."""

    name: str
    generation: int = 0
    operation: Operation = "create"
    #: Digest of the last accepted request together with the specs it resolved to.
    digest: str = ""
    children: dict[str, Child] = {}
    phase: FprPhase = "Pending"
    message: str = ""
    created_at: datetime
    updated_at: datetime
    #: Under change control: the create request waiting for approval (its fields) and its plan. Nothing is
    #: leased or prepared while it waits; approval carries it out like a new request (checked again).
    pending: dict[str, Any] | None = None
    plan: tuple[PlannedCluster, ...] = ()

    @property
    def awaiting_approval(self) -> bool:
        """A request held for approval that was never carried out (also after a failed approval)."""
        return self.pending is not None and self.generation == 0


def hold(
    record: FprRecord | None, name: str, request: dict[str, Any], plan: tuple[PlannedCluster, ...], now: datetime
) -> FprRecord:
    """The record of a create request waiting for approval (a re-submission replaces the waiting request)."""
    hosts = sum(len(c.control_plane) + len(c.workers) for c in plan)
    message = f"waiting for approval: {len(plan)} cluster(s), {hosts} host(s)"
    if record is None:
        record = FprRecord(name=name, created_at=now, updated_at=now)
    return record.model_copy(
        update={"pending": request, "plan": plan, "phase": "PendingApproval", "message": message, "updated_at": now}
    )


def approved(record: FprRecord | None) -> FprRecord | None:
    """The record as approval starts carrying it out: the waiting request and its plan are done with."""
    if record is None or record.pending is None:
        return record
    return record.model_copy(update={"pending": None, "plan": ()})


def approval_failed(record: FprRecord, why: str, now: datetime) -> FprRecord:
    """Approval could not carry the request out (hosts taken meanwhile, say): it stays, Failed, approvable again."""
    if not record.awaiting_approval:
        return record
    return record.model_copy(update={"phase": "Failed", "message": f"approval failed: {why}"[:1000], "updated_at": now})


@dataclass(frozen=True)
class Plan:
    """The outcome of a request: the record to write, leases to hold, commands to publish."""

    record: FprRecord
    #: host id → PR id, for every host the wanted children use (idempotent for hosts already held).
    leases: dict[str, str] = field(default_factory=dict)
    commands: tuple[PrRequest, ...] = ()
    #: True when the request had already been accepted: only re-publish, change nothing.
    replay: bool = False


def digest(value: Any) -> str:
    """A short stable digest of a JSON-able value (128 bits: collisions are not a concern here)."""
    raw = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def spec_digest(spec: ClusterSpec) -> str:
    return digest(spec.model_dump(mode="json"))


def request_digest(request: Mapping[str, Any], specs: Iterable[ClusterSpec]) -> str:
    return digest({"request": request, "specs": sorted(spec_digest(s) for s in specs)})


def _command(record: FprRecord, child: Child, specs: Mapping[str, ClusterSpec]) -> PrRequest:
    spec = specs.get(child.cluster) if child.command != "delete" else None
    return PrRequest(pr_id=child.pr_id, fpr=record.name, operation=child.command, spec=spec)


def pending_commands(record: FprRecord, specs: Mapping[str, ClusterSpec]) -> tuple[PrRequest, ...]:
    """The commands decided in the record's current generation (re-published on a replay)."""
    chosen = [c for c in record.children.values() if c.command_gen == record.generation]
    return tuple(_command(record, c, specs) for c in sorted(chosen, key=lambda c: c.cluster))


def _replay(record: FprRecord, specs: Mapping[str, ClusterSpec]) -> Plan:
    leases = {h: c.pr_id for c in record.children.values() if c.desired == "present" for h in c.hosts}
    return Plan(record, leases, pending_commands(record, specs), replay=True)


def _advance(
    record: FprRecord, operation: Operation, req_digest: str, children: dict[str, Child], now: datetime
) -> FprRecord:
    out = record.model_copy(
        update={
            "generation": record.generation + 1,
            "operation": operation,
            "digest": req_digest,
            "children": children,
            "updated_at": now,
        }
    )
    return with_phase(out)


def _new_child(name: str, spec: ClusterSpec, gen: int, command: PrCommand, now: datetime) -> Child:
    return Child(
        cluster=spec.name,
        pr_id=pr_id_for(name, spec.name),
        command=command,
        command_gen=gen,
        since=now,
        hosts=tuple(h.host_id for h in spec.all_hosts),
        spec_digest=spec_digest(spec),
    )


def plan_create(record: FprRecord | None, name: str, specs: list[ClusterSpec], req_digest: str, now: datetime) -> Plan:
    """Create the clusters not yet in the FPR; clusters already there must be unchanged."""
    by_name = {s.name: s for s in specs}
    if record is None:
        record = FprRecord(name=name, created_at=now, updated_at=now)
    elif record.digest == req_digest and record.operation == "create":
        return _replay(record, by_name)
    gen = record.generation + 1
    children = dict(record.children)
    for spec in specs:
        current = children.get(spec.name)
        if current is None or (current.desired == "absent" and current.state == "deleted" and current.settled):
            children[spec.name] = _new_child(name, spec, gen, "create", now)
        elif current.desired == "absent":
            raise InputError(
                f"$.clusterNames [cluster-deleting]: cluster {spec.name!r} of {name!r} is being "
                "deleted; create it again once the FPR reports Deleted",
                path="$.clusterNames",
                reason="ClusterDeleting",
            )
        elif current.spec_digest != spec_digest(spec):
            raise InputError(
                f"$ [cluster-exists]: cluster {spec.name!r} of {name!r} exists with a different "
                "spec; use operation 'scale' to change its workers",
                path="$",
                reason="ClusterExists",
            )
    new = _advance(record, "create", req_digest, children, now)
    leases = {h: c.pr_id for c in children.values() if c.desired == "present" for h in c.hosts}
    return Plan(new, leases, pending_commands(new, by_name))


def plan_scale(
    record: FprRecord, new_specs: list[ClusterSpec], req_digest: str, now: datetime, operation: Operation = "scale"
) -> Plan:
    """Send an update for every targeted cluster whose spec changes (its worker list for a scale; its version,
    and a single control plane's host, for an upgrade)."""
    by_name = {s.name: s for s in new_specs}
    if record.digest == req_digest and record.operation == operation:
        return _replay(record, by_name)
    gen = record.generation + 1
    children = dict(record.children)
    for spec in new_specs:
        current = children[spec.name]
        if current.spec_digest == spec_digest(spec):
            continue
        children[spec.name] = current.model_copy(
            update={
                "command": "update",
                "command_gen": gen,
                "since": now,
                "hosts": tuple(h.host_id for h in spec.all_hosts),
                "spec_digest": spec_digest(spec),
            }
        )
    new = _advance(record, operation, req_digest, children, now)
    leases = {h: children[s.name].pr_id for s in new_specs for h in children[s.name].hosts}
    return Plan(new, leases, pending_commands(new, by_name))


def plan_delete(record: FprRecord, clusters: list[str], req_digest: str, now: datetime) -> Plan:
    """Ask o2ims to delete every targeted cluster not already being deleted."""
    if record.digest == req_digest and record.operation == "delete":
        return _replay(record, {})
    gen = record.generation + 1
    children = dict(record.children)
    for cluster in clusters:
        current = children[cluster]
        if current.desired == "absent":
            continue
        children[cluster] = current.model_copy(
            update={"desired": "absent", "command": "delete", "command_gen": gen, "since": now}
        )
    new = _advance(record, "delete", req_digest, children, now)
    return Plan(new, {}, pending_commands(new, {}))


# ── roll-up ────────────────────────────────────────────────────────────────────────────


def _newer(child: Child, status: PrStatus) -> bool:
    if child.at is None:
        return True
    if status.seq and child.seq:
        return status.seq > child.seq
    return status.at >= child.at


def _clip(text: str | None, limit: int) -> str | None:
    # The whole FPR (up to a thousand children) is one KV value; keep each child small.
    return text if text is None or len(text) <= limit else text[: limit - 3] + "..."


def apply_status(record: FprRecord, status: PrStatus, now: datetime) -> FprRecord:
    """Fold one o2ims status into the record (older or foreign reports change nothing)."""
    child = next((c for c in record.children.values() if c.pr_id == status.pr_id), None)
    if child is None or not _newer(child, status):
        return record
    updated = child.model_copy(
        update={
            "state": status.state,
            "stage": status.stage,
            "reason": _clip(status.reason, 120),
            "message": _clip(status.message, 300),
            "at": status.at,
            "seq": status.seq or child.seq,
        }
    )
    if updated == child:
        return record
    out = record.model_copy(update={"children": {**record.children, child.cluster: updated}, "updated_at": now})
    return with_phase(out)


def apply_refusal(record: FprRecord, pr_id: str, reason: str, error: str, now: datetime) -> FprRecord:
    """o2ims refused our command for ``pr_id`` (a ``message.failed``): the child failed."""
    child = next((c for c in record.children.values() if c.pr_id == pr_id), None)
    if child is None or (child.state == "failed" and child.settled):
        return record
    updated = child.model_copy(
        update={
            "state": "failed",
            "stage": None,
            "reason": _clip(reason, 120),
            "message": _clip(error, 300),
            "at": max(now, child.since),
        }
    )
    out = record.model_copy(update={"children": {**record.children, child.cluster: updated}, "updated_at": now})
    return with_phase(out)


def compute_phase(record: FprRecord) -> tuple[FprPhase, str]:
    """The FPR phase and a one-line message (the table in the module docstring)."""
    children = sorted(record.children.values(), key=lambda c: c.cluster)
    if not children:
        return ("Deleted", "no clusters") if record.operation == "delete" else ("Pending", "no clusters yet")
    failed = [c for c in children if c.settled and c.state == "failed"]
    if failed:
        why = "; ".join(
            f"cluster {c.cluster} failed: {c.reason or 'unknown'}" + (f" ({c.message})" if c.message else "")
            for c in failed
        )
        return "Failed", why[:1000]
    removing = [c for c in children if c.desired == "absent"]
    gone = [c for c in removing if c.settled and c.state == "deleted"]
    if len(gone) == len(children):
        return "Deleted", f"{len(gone)} cluster(s) deleted"
    if len(gone) < len(removing):
        return "Deleting", f"{len(removing) - len(gone)} of {len(removing)} cluster(s) being deleted"
    wanted = [c for c in children if c.desired == "present"]
    done = [c for c in wanted if c.settled and c.state == "fulfilled"]
    if len(done) == len(wanted):
        return "Synced", f"{len(done)} cluster(s) fulfilled"
    # By name, not ``c not in done``: comparing whole children made every report cost O(clusters²).
    done_names = {c.cluster for c in done}
    busy = ", ".join(
        f"{c.cluster}: {c.state}{f'/{c.stage}' if c.stage else ''}" for c in wanted if c.cluster not in done_names
    )
    return busy_phase(record.operation), f"{len(done)}/{len(wanted)} fulfilled; {busy}"[:1000]


def busy_phase(operation: Operation) -> FprPhase:
    """The phase of an FPR whose wanted clusters are not all fulfilled yet, by its last operation."""
    match operation:
        case "create":
            return "Creating"
        case "scale":
            return "Scaling"
        case "delete":
            # Only clusters kept by the request remain wanted; they are still being created.
            return "Creating"
        case "upgrade":
            return "Upgrading"
        case _:
            assert_never(operation)


def with_phase(record: FprRecord) -> FprRecord:
    phase, message = compute_phase(record)
    if phase == record.phase and message == record.message:
        return record
    return record.model_copy(update={"phase": phase, "message": message})


def child_status(c: Child) -> ChildStatus:
    if not c.settled:
        return ChildStatus(cluster=c.cluster, pr_id=c.pr_id, state="pending", message=f"{c.command} requested")
    return ChildStatus(
        cluster=c.cluster, pr_id=c.pr_id, state=c.state, stage=c.stage, reason=c.reason, message=c.message
    )


def status_of(record: FprRecord) -> FprStatus:
    children = tuple(child_status(c) for c in sorted(record.children.values(), key=lambda c: c.cluster))
    return FprStatus(
        name=record.name,
        phase=record.phase,
        message=record.message,
        children=children,
        updated_at=record.updated_at,
        operation=record.operation,
        generation=record.generation,
        plan=record.plan,
    )
