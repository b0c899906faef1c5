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
    spec = rec.spec
    if spec is None:
        return False
    return ready_with(rec, len(spec.control_plane), len(spec.workers), counts_required=counts_required)


def ready_with(rec: PrRecord, control_plane: int, workers: int, *, counts_required: bool = True) -> bool:
    """The watcher says ready with these counts (when it gave counts) and no Machine is still being deleted."""
    o = rec.observed
    if o is None or not o.exists or not o.ready or o.failure:
        return False
    if o.counts is None:
        return not counts_required
    cp_ready, cp_desired, w_ready, w_desired = o.counts
    settled = "Deleting" not in o.machines.values()
    return settled and cp_ready == cp_desired == control_plane and w_ready == w_desired == workers


def waiting_message(rec: PrRecord) -> str:
    o = rec.observed
    return f"waiting for the cluster: {o.waiting_for}" if o and o.waiting_for else "waiting for the cluster to be ready"


def fulfil(tx: Tx) -> None:
    spec = tx.spec
    cid = tx.rec.node_cluster_id or node_cluster_id(tx.rec.pr_id, spec.name)
    tx.update(node_cluster_id=cid, fulfilled_once=True)
    for host in spec.all_hosts:
        tx.host(host.host_id, resource_id=infrastructure_resource_id(cid, host.host_id))
    tx.condition("ClusterProvisioned", "True", "ClusterReady", f"cluster {spec.name} is ready")
    tx.move(
        "fulfilled",
        message=f"cluster {spec.name} ready: {len(spec.control_plane)} control-plane, {len(spec.workers)} workers",
    )


def record_observation(tx: Tx) -> bool:
    """Keep what the watcher saw (ordered by its clock); False (ignored) when it is old or no news."""
    if not newer_observation(tx):
        tx.ignore("older than the last observation")
        return False
    old = tx.rec.observed
    p = tx.event.payload
    if isinstance(p, ClusterSummary):
        new = Observed(
            at=tx.event.at,
            exists=p.exists,
            ready=p.ready,
            failure=p.failure,
            phase=p.phase,
            waiting_for=p.waiting_for,
            machines=dict(p.machines),
            counts=(p.control_plane_ready, p.control_plane_desired, p.workers_ready, p.workers_desired),
            control_plane_version=p.control_plane_version,
            control_plane_updated=p.control_plane_updated,
            workers_version=p.workers_version,
            workers_updated=p.workers_updated,
            machine_versions=dict(p.machine_versions),
        )
    else:
        base = old or Observed(at=tx.event.at)
        new = base.evolve(at=tx.event.at, ready=True, exists=True, failure=None)
    if old is not None and old.evolve(at=new.at) == new:
        tx.ignore("no news")
        return False
    tx.update(observed=new)
    return True


def observe(tx: Tx) -> None:
    """Record what the watcher saw; in provisioning, a ready cluster fulfils the PR (scaling: ``scaling``)."""
    provisioning = record_observation(tx) and tx.rec.phase == "progressing/provisioning"
    if provisioning and ready_for_spec(tx.rec, counts_required=False):
        fulfil(tx)


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
