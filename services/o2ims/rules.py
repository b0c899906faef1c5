"""The event rules of the PR state machine: host preparation, CAPI objects, the cluster, deadlines.

Each rule takes a ``Tx`` and either changes the record through it (moving state, sending jobs,
releasing leases) or marks the event ignored with the reason. Guards live here: an event must
answer the PR's *current* job (its causation id is the job's id, or at least not an earlier
job's), requests must be newer than the last request applied, and cluster observations must
be newer than the last one seen. Pure: no I/O.
"""

from __future__ import annotations

from typing import TypeVar

from shared.payloads import (
    CapiApplied,
    CapiFailed,
    ClusterSummary,
    ClusterTransition,
    HostprepDone,
    HostprepFailed,
    HostProgress,
    MessageFailed,
    Payload,
    PrDeadline,
    PrStage,
)

from .effects import Tx, describe_failure
from .record import ConditionType, Job, Observed, PrRecord, infrastructure_resource_id, node_cluster_id

P = TypeVar("P", bound=Payload)


def payload(tx: Tx, cls: type[P]) -> P:
    p = tx.event.payload
    if not isinstance(p, cls):
        raise TypeError(f"event {tx.event.kind} carries {type(p).__name__}, expected {cls.__name__}")
    return p


def answers(tx: Tx, job: Job | None) -> bool:
    """The event answers ``job``: caused by it, or by nothing we sent earlier (e.g. a watch)."""
    if job is None:
        return False
    cause = tx.event.causation_id
    return cause is None or cause == job.id or cause not in tx.rec.past_jobs


def newer_request(tx: Tx) -> bool:
    return tx.fresh or tx.event.at > tx.rec.request_at


# ── host preparation ───────────────────────────────────────────────────────────────────


def _progress(tx: Tx) -> bool:
    p = payload(tx, HostProgress)
    job = tx.rec.hostprep_job
    if not answers(tx, job) or job is None or p.host_id not in job.hosts:
        tx.ignore("progress of a host outside the current job")
        return False
    tx.host(p.host_id, step=p.step, status=p.status, detail=p.detail)
    return True


def hostprep_started(tx: Tx) -> None:
    if _progress(tx):
        n = len(tx.rec.hostprep_job.hosts) if tx.rec.hostprep_job else 0
        tx.move("progressing", "hostprep", message=f"preparing {n} hosts")


def note_host_progress(tx: Tx) -> None:
    before = tx.rec.hosts
    if _progress(tx) and tx.rec.hosts == before:
        tx.ignore("no news")


def hostprep_finished(tx: Tx) -> None:
    job = tx.rec.hostprep_job
    done = payload(tx, HostprepDone)
    if not answers(tx, job) or job is None or job.action != "prepare":
        return tx.ignore("not the current preparation job")
    if not set(job.hosts) <= set(done.hosts):
        return tx.ignore("does not cover the job's hosts")
    for host_id in job.hosts:
        tx.host(host_id, status="ready", detail=None)
    tx.update(hostprep_job=job.model_copy(update={"confirmed": True}))
    tx.condition("HostsPrepared", "True", "HostsReady", f"{len(job.hosts)} hosts ready")
    if tx.rec.fulfilled_once:
        tx.condition("ResourcesApplied", "Unknown", "Scaling", "re-applying with the new workers")
        tx.send_capi("scale")
        tx.move("progressing", "scaling", message=f"scaling to {len(tx.spec.workers)} workers")
        return None
    tx.condition("ResourcesApplied", "Unknown", "Applying", "applying the Cluster API objects")
    tx.send_capi("apply")
    tx.move("progressing", "apply", message="applying the Cluster API objects")
    return None


def failure_of(tx: Tx) -> tuple[str, str, str | None, str | None]:
    """(reason, message, host, step) of a failed job, from the worker's event or the bus's."""
    p = tx.event.payload
    if isinstance(p, HostprepFailed):
        text = describe_failure(
            p.host_id, p.step, p.exit_code, p.message + (f"; {p.stderr_tail}" if p.stderr_tail else "")
        )
        return p.reason, text, p.host_id, p.step
    if isinstance(p, CapiFailed):
        return p.reason, p.message, None, None
    if isinstance(p, MessageFailed):
        return p.reason, f"the job was rejected by {p.consumer}: {p.error}", None, None
    return "Failed", "failed", None, None


def hostprep_failed(tx: Tx) -> None:
    job = tx.rec.hostprep_job
    if not answers(tx, job) or job is None or job.action != "prepare":
        return tx.ignore("not the current preparation job")
    reason, message, host_id, step = failure_of(tx)
    if host_id is not None and host_id not in job.hosts:
        return tx.ignore("failure of a host outside the current job")
    if host_id is not None:
        tx.host(host_id, status="failed", step=step, detail=message[:300])
    tx.condition("HostsPrepared", "False", reason, message)
    tx.move("failed", "hostprep", reason=reason, message=message)
    return None


# ── CAPI objects and the cluster ───────────────────────────────────────────────────────


def ready_for_spec(rec: PrRecord, *, counts_required: bool) -> bool:
    """The watcher says ready and, when it gave counts, they are the spec's own."""
    o, spec = rec.observed, rec.spec
    if o is None or spec is None or not o.exists or not o.ready or o.failure:
        return False
    if o.counts is None:
        return not counts_required
    cp_ready, cp_desired, w_ready, w_desired = o.counts
    n_cp, n_w = len(spec.control_plane), len(spec.workers)
    return cp_ready == cp_desired == n_cp and w_ready == w_desired == n_w


def _waiting(rec: PrRecord) -> str:
    o = rec.observed
    return f"waiting for the cluster: {o.waiting_for}" if o and o.waiting_for else "waiting for the cluster to be ready"


def fulfil(tx: Tx) -> None:
    spec = tx.spec
    cid = tx.rec.node_cluster_id or node_cluster_id(tx.rec.pr_id, spec.name)
    tx.update(node_cluster_id=cid, fulfilled_once=True)
    for host in spec.all_hosts:
        tx.host(host.host_id, resource_id=infrastructure_resource_id(cid, host.host_id))
    in_spec = {h.host_id for h in spec.all_hosts}
    tx.release([h for h, st in tx.rec.hosts.items() if h not in in_spec and not st.released])
    tx.condition("ClusterProvisioned", "True", "ClusterReady", f"cluster {spec.name} is ready")
    tx.move(
        "fulfilled",
        message=f"cluster {spec.name} ready: {len(spec.control_plane)} control-plane, {len(spec.workers)} workers",
    )


def resources_applied(tx: Tx) -> None:
    job = tx.rec.capi_job
    payload(tx, CapiApplied)
    if not answers(tx, job) or job is None or job.action == "delete" or job.confirmed:
        return tx.ignore("not an unconfirmed apply/scale job")
    tx.update(capi_job=job.model_copy(update={"confirmed": True}))
    tx.condition("ResourcesApplied", "True", "Applied", f"Cluster API objects {job.action} done")
    if tx.rec.phase == "progressing/apply":
        if ready_for_spec(tx.rec, counts_required=False):
            return fulfil(tx)
        tx.move("progressing", "provisioning", message=_waiting(tx.rec))
    elif ready_for_spec(tx.rec, counts_required=True):
        fulfil(tx)
    return None


def observe(tx: Tx) -> None:
    """Record what the watcher saw; in provisioning/scaling, a ready cluster fulfils the PR."""
    old = tx.rec.observed
    if old is not None and tx.event.at < old.at:
        return tx.ignore("older than the last observation")
    p = tx.event.payload
    if isinstance(p, ClusterSummary):
        new = Observed(
            at=tx.event.at, exists=p.exists, ready=p.ready, failure=p.failure, phase=p.phase,
            waiting_for=p.waiting_for, machines=dict(p.machines),
            counts=(p.control_plane_ready, p.control_plane_desired, p.workers_ready, p.workers_desired),
        )  # fmt: skip
    else:
        base = old or Observed(at=tx.event.at)
        new = base.model_copy(update={"at": tx.event.at, "ready": True, "exists": True, "failure": None})
    if old is not None and old.model_copy(update={"at": new.at}) == new:
        return tx.ignore("no news")
    tx.update(observed=new)
    if _done_waiting(tx.rec):
        fulfil(tx)
    return None


def _done_waiting(rec: PrRecord) -> bool:
    """Provisioning ends when the cluster is ready; scaling also needs the scale applied and counts."""
    if rec.phase == "progressing/provisioning":
        return ready_for_spec(rec, counts_required=False)
    if rec.phase == "progressing/scaling":
        return rec.capi_job is not None and rec.capi_job.confirmed and ready_for_spec(rec, counts_required=True)
    return False


def _fail_cluster(tx: Tx, reason: str, text: str, observed: Observed) -> None:
    old = tx.rec.observed
    if old is not None and tx.event.at < old.at:
        return tx.ignore("older than the last observation")
    tx.update(observed=observed)
    tx.condition("ClusterProvisioned", "False", reason, text)
    stage: PrStage | None = tx.rec.stage if tx.rec.state == "progressing" else None
    tx.move("failed", stage, reason=reason, message=text)
    return None


def cluster_failed(tx: Tx) -> None:
    p = tx.event.payload
    why = p.failure if isinstance(p, ClusterSummary) else p.reason if isinstance(p, ClusterTransition) else None
    text = f"cluster {tx.rec.cluster} failed: {why or 'reported failed'}"
    base = tx.rec.observed or Observed(at=tx.event.at)
    _fail_cluster(
        tx, "ClusterFailed", text, base.model_copy(update={"at": tx.event.at, "failure": why, "ready": False})
    )


def cluster_gone(tx: Tx) -> None:
    text = f"cluster {tx.rec.cluster} disappeared from the management cluster"
    _fail_cluster(tx, "ClusterGone", text, Observed(at=tx.event.at, exists=False))


def capi_failed(tx: Tx) -> None:
    job = tx.rec.capi_job
    if not answers(tx, job) or job is None or job.action == "delete":
        return tx.ignore("not the current apply/scale job")
    reason, message, _, _ = failure_of(tx)
    tx.condition("ResourcesApplied", "False", reason, message)
    stage: PrStage | None = tx.rec.stage if tx.rec.state == "progressing" else None
    tx.move("failed", stage, reason=reason, message=message)
    return None


# ── deadlines ──────────────────────────────────────────────────────────────────────────


def deadline_due(tx: Tx) -> bool:
    d = payload(tx, PrDeadline)
    rec = tx.rec
    if d.seq != rec.deadline_seq or rec.deadline is None or tx.now < rec.deadline:
        tx.ignore("stale or not yet due")
        return False
    return True


def _not_ready_hosts(rec: PrRecord) -> str:
    job = rec.hostprep_job
    hosts = job.hosts if job else ()
    late = [
        f"{h} (at {st.step})" if (st := rec.hosts.get(h)) and st.step else h
        for h in hosts
        if (rec.hosts.get(h) is None or rec.hosts[h].status != "ready")
    ]
    return ", ".join(late) or "none reported"


def timed_out(tx: Tx) -> None:
    if not deadline_due(tx):
        return
    rec = tx.rec
    stage: PrStage = rec.stage or "hostprep"
    seconds = tx.policy.deadline_for(rec.state, rec.stage) or 0.0
    what: dict[str, tuple[str, ConditionType, str]] = {
        "hostprep": ("HostprepTimedOut", "HostsPrepared", f"hosts not ready: {_not_ready_hosts(rec)}"),
        "apply": ("ApplyTimedOut", "ResourcesApplied", "capi_renderer never confirmed the apply"),
        "provisioning": ("ProvisioningTimedOut", "ClusterProvisioned", _waiting(rec)),
        "scaling": ("ScalingTimedOut", "ClusterProvisioned", _waiting(rec)),
        "capi-delete": ("DeletionTimedOut", "ResourcesDeleted", "the Cluster is still present"),
    }
    reason, ctype, detail = what[stage]
    message = f"stage {stage} passed its deadline ({seconds:g}s): {detail}"
    tx.condition(ctype, "False", reason, message)
    tx.move("failed", stage, reason=reason, message=message)
