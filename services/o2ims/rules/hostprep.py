"""Rules of the host-preparation stage: progress, the whole job done, a host failed. Pure.

When every host of the job is ready the PR moves on to applying the CAPI objects (or, on day
2, to scaling the cluster with the new workers, or, for an upgrade, to rolling the control plane onto
the spare host just prepared).
"""

from __future__ import annotations

from services.o2ims.rules import scaling, upgrade
from services.o2ims.rules.failures import failure_of
from services.o2ims.rules.guards import answers, payload
from services.o2ims.transaction import Tx
from shared.payloads import HostprepDone, HostProgress


def _progress(tx: Tx) -> bool:
    p = payload(tx, HostProgress)
    job = tx.rec.hostprep_job
    if not answers(tx, job) or job is None or p.host_id not in job.hosts:
        tx.ignore("progress of a host outside the current job")
        return False
    tx.host(p.host_id, step=p.step, status=p.status, detail=p.detail)
    return True


def started(tx: Tx) -> None:
    if _progress(tx):
        n = len(tx.rec.hostprep_job.hosts) if tx.rec.hostprep_job else 0
        tx.move("progressing", "hostprep", message=f"preparing {n} hosts")


def note_progress(tx: Tx) -> None:
    before = tx.rec.hosts
    if _progress(tx) and tx.rec.hosts == before:
        tx.ignore("no news")


def finished(tx: Tx) -> None:
    job = tx.rec.hostprep_job
    done = payload(tx, HostprepDone)
    if not answers(tx, job) or job is None or job.action != "prepare":
        return tx.ignore("not the current preparation job")
    if not set(job.hosts) <= set(done.hosts):
        return tx.ignore("does not cover the job's hosts")
    for host_id in job.hosts:
        tx.host(host_id, status="ready", detail=None)
    tx.update(hostprep_job=job.evolve(confirmed=True))
    tx.condition("HostsPrepared", "True", "HostsReady", f"{len(job.hosts)} hosts ready")
    if tx.rec.upgrade is not None:
        upgrade.start_control_plane(tx)
        return None
    if tx.rec.fulfilled_once:
        scaling.start(tx, adding=True)
        return None
    tx.condition("ResourcesApplied", "Unknown", "Applying", "applying the Cluster API objects")
    tx.send_capi("apply")
    tx.move("progressing", "apply", message="applying the Cluster API objects")
    return None


def failed(tx: Tx) -> None:
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
