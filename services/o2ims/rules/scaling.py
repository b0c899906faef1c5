"""Rules of the scaling stage (day 2): add workers first, then remove the leaving ones exactly. Pure.

A new worker set is reached in at most two CAPI steps under one deadline:

1. when hosts are added while others leave (a swap), an interim spec with both (the new workers
   and the leaving hosts that are still nodes) is applied first, and the cluster must be ready
   with that many workers: the cluster never runs short;
2. the final spec is applied: capi_renderer marks the Machines on leaving hosts
   ``cluster.x-k8s.io/delete-machine`` before the count goes down, so CAPI removes exactly those.

The stage ends when the cluster is ready with the spec's counts, no Machine is still being
deleted and every leaving host's ByoHost has been seen unclaimed; the leaving hosts are then reset
(``release``) before their leases go back, and the PR is fulfilled.
"""

from __future__ import annotations

from services.o2ims.rules import release
from services.o2ims.rules.cluster import fulfil, ready_with, record_observation
from services.o2ims.rules.guards import answers, deadline_due, payload
from services.o2ims.transaction import Tx
from shared.payloads import CapiApplied


def start(tx: Tx, *, adding: bool) -> None:
    """Apply the next worker set: when workers were just added and others leave (a swap), the
    interim set with both; otherwise the spec's own."""
    spec = tx.spec
    # A leaving host not yet seen released is still a node: keep it until the new workers are up.
    nodes_leaving = tuple(
        h for h in tx.rec.leaving if (st := tx.rec.hosts.get(h.host_id)) is None or st.claimed is not False
    )
    if adding and nodes_leaving:
        interim = spec.model_copy(update={"workers": (*spec.workers, *nodes_leaving)})
        tx.condition("ResourcesApplied", "Unknown", "Scaling", "adding the new workers first")
        tx.send_capi("scale", interim)
        tx.move(
            "progressing",
            "scaling",
            message=f"adding workers first: {len(interim.workers)} workers, then "
            f"{len(spec.workers)} once {', '.join(h.host_id for h in nodes_leaving)} leave",
        )
        return
    tx.condition("ResourcesApplied", "Unknown", "Scaling", f"re-applying with {len(spec.workers)} workers")
    tx.send_capi("scale")
    leaving = f"; leaving: {', '.join(h.host_id for h in tx.rec.leaving)}" if tx.rec.leaving else ""
    tx.move("progressing", "scaling", message=f"scaling to {len(spec.workers)} workers{leaving}")


def progress(tx: Tx) -> None:
    """Level-based: from what is known now, take the next step of the scale (or wait)."""
    rec, spec = tx.rec, tx.spec
    job = rec.capi_job
    if job is None or job.action != "scale" or not job.confirmed:
        return
    if not ready_with(rec, len(spec.control_plane), len(job.hosts)):
        return
    if set(job.hosts) != {h.host_id for h in spec.workers}:
        # The interim set is up: now the final one, which lets the leaving hosts go (same deadline).
        tx.condition("ResourcesApplied", "Unknown", "Scaling", f"removing {len(rec.leaving)} workers")
        tx.send_capi("scale")
        tx.move(
            "progressing",
            "scaling",
            keep_deadline=True,
            message=f"new workers ready; removing {', '.join(h.host_id for h in rec.leaving)}",
        )
        return
    if not rec.leaving:
        fulfil(tx)
        return
    waiting = release.not_seen_released(rec, rec.leaving)
    if waiting:
        # The next ByoHost observation brings the news; say what the stage waits for.
        text = f"{len(spec.workers)} workers ready; waiting for the ByoHosts of {', '.join(waiting)} to be released"
        if rec.message != text:
            tx.move("progressing", "scaling", message=text, keep_deadline=True)
        return
    if not tx.policy.teardown_hosts:
        # Reset switched off: the hosts go back as BYOH left them (kubeadm state and all).
        release.release_left(tx, [h.host_id for h in rec.leaving])
        tx.condition("HostsTornDown", "False", "ResetDisabled", "leaving hosts released without a reset")
        fulfil(tx)
        return
    hosts = rec.leaving
    release.reset_hosts(tx, hosts)
    names = ", ".join(h.host_id for h in hosts)
    tx.move("progressing", "teardown", message=f"cluster scaled; resetting the hosts that left: {names}")


def applied(tx: Tx) -> None:
    job = tx.rec.capi_job
    payload(tx, CapiApplied)
    if not answers(tx, job) or job is None or job.action != "scale" or job.confirmed:
        return tx.ignore("not an unconfirmed scale job")
    tx.update(capi_job=job.evolve(confirmed=True))
    tx.condition("ResourcesApplied", "True", "Applied", f"scaled to {len(job.hosts)} workers")
    progress(tx)
    return None


def observe(tx: Tx) -> None:
    if record_observation(tx):
        progress(tx)


def observe_byohost(tx: Tx) -> None:
    if release.note_byohost(tx):
        progress(tx)


def reset_answered(tx: Tx) -> None:
    """The leaving hosts' reset answered: release those reset, quarantine the others, then fulfil."""
    job = tx.rec.hostprep_job
    if not answers(tx, job) or job is None or job.action != "teardown":
        return tx.ignore("not the current reset job")
    ok, _bad = release.settle_reset(tx)
    release.release_left(tx, ok)
    fulfil(tx)
    return None


def reset_timed_out(tx: Tx) -> None:
    if not deadline_due(tx):
        return
    ok, _bad = release.settle_timeout(tx)
    release.release_left(tx, ok)
    fulfil(tx)
