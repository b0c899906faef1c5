"""Rules of deletion (capi-delete and teardown stages), from the delete request to the tombstone.

Delete works from any state: it stops forward progress (later events find the PR deleting and
are ignored), asks capi_renderer to delete the Cluster when objects may exist, waits until the
Cluster is gone, optionally tears the hosts down, releases the hosts' leases and leaves a small
tombstone (state ``deleted``) so late events and replayed requests change nothing. A create
newer than the deletion starts a new incarnation. Pure: no I/O.
"""

from __future__ import annotations

from services.o2ims.record import PrRecord, Queued
from services.o2ims.rules import release
from services.o2ims.rules.admission import requested_spec, start_flow
from services.o2ims.rules.failures import failure_of
from services.o2ims.rules.guards import answers, deadline_due, newer_observation, newer_request, payload
from services.o2ims.transaction import Tx
from shared.models import HostRef
from shared.payloads import CapiDeleted, HostprepDone

#: History entries a tombstone keeps.
TOMBSTONE_HISTORY = 5


def begin(tx: Tx) -> None:
    if not newer_request(tx):
        return tx.ignore("older than the latest request")
    tx.update(request_at=tx.event.at, queued=None)
    if tx.rec.capi_requested and tx.rec.spec is not None:
        tx.condition("ResourcesDeleted", "Unknown", "Deleting", f"deleting cluster {tx.rec.cluster}")
        tx.send_capi("delete")
        tx.move("deleting", "capi-delete", message=f"deleting cluster {tx.rec.cluster}")
        return None
    after_resources_gone(tx)
    return None


def tombstone_unknown(tx: Tx) -> None:
    """Delete of a PR never seen: nothing to undo, but remember it so an older create stays dead."""
    finalize(tx, reason="NotFound")


def _to_reset(rec: PrRecord) -> tuple[HostRef, ...]:
    """Every host the cluster had (the spec's and those still leaving), except quarantined ones."""
    hosts = {h.host_id: h for h in (*rec.leaving, *(rec.spec.all_hosts if rec.spec else ()))}
    return tuple(h for hid, h in sorted(hosts.items()) if not ((st := rec.hosts.get(hid)) and st.quarantined))


def after_resources_gone(tx: Tx) -> None:
    rec = tx.rec
    hosts = _to_reset(rec)
    if tx.policy.teardown_hosts and rec.spec is not None and rec.hostprep_job is not None and hosts:
        tx.move("deleting", "teardown", message=f"resetting {len(hosts)} hosts once their ByoHosts are released")
        _reset_when_released(tx)
        return
    finalize(tx)


def _reset_when_released(tx: Tx) -> None:
    """Reset the hosts once none is claimed any more (the agent frees each after its Machine went)."""
    hosts = _to_reset(tx.rec)
    waiting = release.still_claimed(tx.rec, hosts)
    if waiting:
        tx.condition(
            "HostsTornDown",
            "Unknown",
            "WaitingForRelease",
            f"waiting for the ByoHosts of {', '.join(waiting)} to be released",
        )
        return
    release.reset_hosts(tx, hosts)


def byohost_seen(tx: Tx) -> None:
    """A ByoHost observation while the deleted cluster's hosts wait to be reset."""
    job = tx.rec.hostprep_job
    if release.note_byohost(tx) and not (job is not None and job.action == "teardown"):
        _reset_when_released(tx)


def resources_deleted(tx: Tx) -> None:
    if tx.event.kind == "capi.deleted":
        payload(tx, CapiDeleted)
        job = tx.rec.capi_job
        if not answers(tx, job) or job is None or job.action != "delete":
            return tx.ignore("not the current delete job")
    elif not newer_observation(tx):
        return tx.ignore("older than the last observation")
    tx.condition("ResourcesDeleted", "True", "Deleted", f"cluster {tx.rec.cluster} is gone")
    after_resources_gone(tx)
    return None


def in_progress(tx: Tx) -> None:
    job = tx.rec.capi_job
    if not answers(tx, job) or job is None or job.action != "delete":
        return tx.ignore("not the current delete job")
    old = tx.rec.condition("ResourcesDeleted")
    if old is not None and old.reason == "WaitingForCascade":
        return tx.ignore("no news")
    tx.condition("ResourcesDeleted", "False", "WaitingForCascade", "waiting for Cluster API to remove the objects")
    return None


def failed(tx: Tx) -> None:
    job = tx.rec.capi_job
    if not answers(tx, job) or job is None or job.action != "delete":
        return tx.ignore("not the current delete job")
    reason, message, _, _ = failure_of(tx)
    tx.condition("ResourcesDeleted", "False", reason, message)
    tx.move("failed", "capi-delete", reason=reason, message=message)
    return None


def torn_down(tx: Tx) -> None:
    job = tx.rec.hostprep_job
    if not answers(tx, job) or job is None or job.action != "teardown":
        return tx.ignore("not the current teardown job")
    release.settle_reset(tx)  # hosts not reset are quarantined, not released
    finalize(tx)
    return None


def teardown_timed_out(tx: Tx) -> None:
    """Past the deadline the deletion completes; hosts not reported reset are quarantined, not released."""
    if deadline_due(tx):
        release.settle_timeout(tx)
        finalize(tx)


def finalize(tx: Tx, *, reason: str | None = None) -> None:
    """Release the hosts' leases; once that is done, the tombstone (or a create queued meanwhile starts).

    Hosts already quarantined (their reset failed or timed out: ``release.settle_*``) are not released.
    The releases (and quarantines) go out first: the record only marks the tombstone as due, and the engine,
    once it carried them out, completes the deletion (``complete``). So nobody sees ``deleted`` while a host
    of the cluster is still leased to it; a crash in between finds the mark and completes it on restart. A
    PR never seen (``tombstone_unknown``) has nobody watching it yet: released and tombstoned at once.
    """
    rec = tx.rec
    queued = rec.queued if rec.queued is not None and rec.queued.operation == "create" else None
    keep = {h.host_id for h in queued.spec.all_hosts} if queued else set()
    held = set(rec.spec_hosts()) | set(rec.hosts) | {h.host_id for h in rec.leaving}
    quarantined = {h for h, st in tx.rec.hosts.items() if st.quarantined}
    tx.release(sorted(held - keep - quarantined))
    tx.condition(
        "LeasesReleased",
        "True",
        "Released",
        f"{len(held - keep - quarantined)} host leases released"
        + (f"; quarantined: {', '.join(sorted(quarantined))}" if quarantined else ""),
    )
    if tx.fresh:
        _tombstone(tx, reason=reason)
        return
    tx.update(tombstone_pending=True)


def complete(tx: Tx) -> None:
    """The engine carried out the releases ``finalize`` queued: now the tombstone and ``deleted``."""
    if not tx.rec.tombstone_pending:
        return tx.ignore("no deletion to complete")
    if any(c.release or c.quarantine for c in tx.rec.outbox):
        return tx.ignore("the leases are not released yet")
    tx.update(tombstone_pending=False)
    _tombstone(tx)
    return None


def _tombstone(tx: Tx, *, reason: str | None = None) -> None:
    rec = tx.rec
    queued = rec.queued if rec.queued is not None and rec.queued.operation == "create" else None
    tx.update(deleted_at=tx.now)
    tx.move("deleted", reason=reason, message=f"cluster {rec.cluster} deleted" if rec.cluster else "deleted")
    tx.update(
        hosts={},
        leaving=(),
        observed=None,
        queued=None,
        hostprep_job=None,
        capi_job=None,
        upgrade=None,
        deadline=None,
        history=tx.rec.history[-TOMBSTONE_HISTORY:],
    )
    if queued is not None:
        _new_incarnation(tx, queued)


def queue_recreate(tx: Tx) -> None:
    """A create newer than the delete under way: start it as a new incarnation once deleted."""
    if not newer_request(tx):
        return tx.ignore("older than the deletion")
    spec = requested_spec(tx)
    queued = Queued(operation="create", spec=spec, at=tx.event.at, message_id=tx.event.message_id)
    tx.update(queued=queued, request_at=tx.event.at)
    return None


def reincarnate(tx: Tx) -> None:
    if not newer_request(tx):
        return tx.ignore("replay of a request older than the deletion")
    spec = requested_spec(tx)
    _new_incarnation(tx, Queued(operation="create", spec=spec, at=tx.event.at, message_id=tx.event.message_id))
    return None


def _new_incarnation(tx: Tx, req: Queued) -> None:
    tx.update(
        incarnation=tx.rec.incarnation + 1,
        generation=1,
        spec=req.spec,
        request_at=req.at,
        conditions=(),
        hosts={},
        leaving=(),
        node_cluster_id=None,
        hostprep_job=None,
        capi_job=None,
        capi_requested=False,
        fulfilled_once=False,
        observed=None,
        queued=None,
        upgrade=None,
        deleted_at=None,
        created_at=tx.now,
    )
    start_flow(tx)


def redelete(tx: Tx) -> None:
    """Objects applied after the delete was asked for (a late apply): delete them again."""
    if tx.rec.spec is None:
        return tx.ignore("no spec to delete")
    job = tx.rec.capi_job
    if job is not None and job.action == "delete" and tx.event.causation_id == job.id:
        return tx.ignore("answers the delete itself")
    tx.send_capi("delete")
    return None


def repeat_teardown(tx: Tx) -> None:
    """A preparation finished after teardown was sent: tear the hosts down again, last."""
    job = tx.rec.hostprep_job
    if not tx.policy.teardown_hosts or tx.rec.spec is None or job is None or job.action != "teardown":
        return tx.ignore("no reset under way")
    done = payload(tx, HostprepDone)
    if not set(done.hosts) & set(tx.rec.spec_hosts()):
        return tx.ignore("none of this PR's hosts")
    tx.send_hostprep("teardown", _to_reset(tx.rec))
    return None
