"""Rules of the cluster as status_watcher sees it: observations, readiness, failure, loss. Pure.

Observations are ordered by the watcher's own clock. In provisioning (and scaling, once the
scale is applied) a cluster ready with the spec's counts fulfils the PR; a failed or vanished
cluster fails it.
"""

from __future__ import annotations

from services.o2ims.record import Observed, PrRecord, infrastructure_resource_id, node_cluster_id
from services.o2ims.rules.guards import newer_observation
from services.o2ims.transaction import Tx
from shared.payloads import ClusterSummary, ClusterTransition, PrStage


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


def waiting_message(rec: PrRecord) -> str:
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


def observe(tx: Tx) -> None:
    """Record what the watcher saw; in provisioning/scaling, a ready cluster fulfils the PR."""
    if not newer_observation(tx):
        return tx.ignore("older than the last observation")
    old = tx.rec.observed
    p = tx.event.payload
    if isinstance(p, ClusterSummary):
        new = Observed(
            at=tx.event.at, exists=p.exists, ready=p.ready, failure=p.failure, phase=p.phase,
            waiting_for=p.waiting_for, machines=dict(p.machines),
            counts=(p.control_plane_ready, p.control_plane_desired, p.workers_ready, p.workers_desired),
        )  # fmt: skip
    else:
        base = old or Observed(at=tx.event.at)
        new = base.evolve(at=tx.event.at, ready=True, exists=True, failure=None)
    if old is not None and old.evolve(at=new.at) == new:
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
    if not newer_observation(tx):
        return tx.ignore("older than the last observation")
    tx.update(observed=observed)
    tx.condition("ClusterProvisioned", "False", reason, text)
    stage: PrStage | None = tx.rec.stage if tx.rec.state == "progressing" else None
    tx.move("failed", stage, reason=reason, message=text)
    return None


def failed(tx: Tx) -> None:
    p = tx.event.payload
    why = p.failure if isinstance(p, ClusterSummary) else p.reason if isinstance(p, ClusterTransition) else None
    text = f"cluster {tx.rec.cluster} failed: {why or 'reported failed'}"
    base = tx.rec.observed or Observed(at=tx.event.at)
    _fail_cluster(tx, "ClusterFailed", text, base.evolve(at=tx.event.at, failure=why, ready=False))


def gone(tx: Tx) -> None:
    text = f"cluster {tx.rec.cluster} disappeared from the management cluster"
    _fail_cluster(tx, "ClusterGone", text, Observed(at=tx.event.at, exists=False))
