"""Rules of the CAPI stages (apply, scaling): capi_renderer confirmed or failed a job. Pure.

An apply confirmed moves the PR to provisioning (or straight to fulfilled when the watcher
already saw the cluster ready); a scale confirmed fulfils once the cluster has the spec's counts.
"""

from __future__ import annotations

from services.o2ims.rules.cluster import fulfil, ready_for_spec, waiting_message
from services.o2ims.rules.failures import failure_of
from services.o2ims.rules.guards import answers, payload
from services.o2ims.transaction import Tx
from shared.payloads import CapiApplied, PrStage


def applied(tx: Tx) -> None:
    job = tx.rec.capi_job
    payload(tx, CapiApplied)
    if not answers(tx, job) or job is None or job.action == "delete" or job.confirmed:
        return tx.ignore("not an unconfirmed apply/scale job")
    tx.update(capi_job=job.evolve(confirmed=True))
    tx.condition("ResourcesApplied", "True", "Applied", f"Cluster API objects {job.action} done")
    if tx.rec.phase == "progressing/apply":
        if ready_for_spec(tx.rec, counts_required=False):
            return fulfil(tx)
        tx.move("progressing", "provisioning", message=waiting_message(tx.rec))
    elif ready_for_spec(tx.rec, counts_required=True):
        fulfil(tx)
    return None


def failed(tx: Tx) -> None:
    job = tx.rec.capi_job
    if not answers(tx, job) or job is None or job.action == "delete":
        return tx.ignore("not the current apply/scale job")
    reason, message, _, _ = failure_of(tx)
    tx.condition("ResourcesApplied", "False", reason, message)
    stage: PrStage | None = tx.rec.stage if tx.rec.state == "progressing" else None
    tx.move("failed", stage, reason=reason, message=message)
    return None
