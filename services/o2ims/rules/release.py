"""Rules of hosts leaving a cluster: their ByoHosts as observed, their reset, then release or quarantine.

A host leaves when a scale-down or swap drops it from the spec, or when the cluster is deleted.
BYOH's agent (with ``--skip-installation``) frees its ByoHost when the Machine goes but never
resets the host, so a leaving host keeps its lease until three things hold: its ByoHost was seen
unclaimed (status_watcher's observations, routed here by lease), its Machine is gone, and hostprep
reset it (``kubeadm reset -f``, kubelet/CNI/agent state removed, the ByoHost deleted). Only then is
the lease released; a host whose reset failed (or did not finish in time) is quarantined instead,
so no other cluster gets it until an operator repaired it. Pure: no I/O.
"""

from __future__ import annotations

from services.o2ims.record import PrRecord
from services.o2ims.rules.failures import failure_of
from services.o2ims.rules.guards import payload
from services.o2ims.transaction import Tx
from shared.models import HostRef
from shared.payloads import ByoHostSummary, HostprepDone, HostprepFailed


def note_byohost(tx: Tx) -> bool:
    """Record whether one of the PR's hosts is claimed; False (and ignored) when it is no news."""
    p = payload(tx, ByoHostSummary)
    current = tx.rec.hosts.get(p.host_id or "")
    if p.host_id is None or current is None:
        tx.ignore("not a host of this PR")
        return False
    if current.claimed_at is not None and tx.event.at < current.claimed_at:
        tx.ignore("older than the last observation of this host")
        return False
    claimed = p.exists and p.claimed_by is not None
    if current.claimed == claimed:
        tx.ignore("no news")
        return False
    tx.host(p.host_id, claimed=claimed, claimed_at=tx.event.at)
    return True


def observe_byohost(tx: Tx) -> None:
    """In phases where nothing waits for it, a ByoHost observation is only recorded."""
    note_byohost(tx)


def still_claimed(rec: PrRecord, hosts: tuple[HostRef, ...]) -> list[str]:
    """The hosts among ``hosts`` whose ByoHost is still claimed by a Machine, as last observed."""
    return sorted(h.host_id for h in hosts if (st := rec.hosts.get(h.host_id)) is not None and st.claimed)


def not_seen_released(rec: PrRecord, hosts: tuple[HostRef, ...]) -> list[str]:
    """The hosts among ``hosts`` not yet *seen* unclaimed (claimed, or never observed)."""
    return sorted(h.host_id for h in hosts if (st := rec.hosts.get(h.host_id)) is None or st.claimed is not False)


def reset_hosts(tx: Tx, hosts: tuple[HostRef, ...]) -> None:
    """Send the reset (hostprep ``teardown``) job for ``hosts``."""
    tx.condition(
        "HostsTornDown", "Unknown", "Resetting", f"resetting {len(hosts)} hosts: " + ", ".join(h.host_id for h in hosts)
    )
    tx.send_hostprep("teardown", hosts)


def was_reset(rec: PrRecord, host_id: str) -> bool:
    """hostprep reported the host's teardown done (its last progress report)."""
    st = rec.hosts.get(host_id)
    return st is not None and st.step == "teardown" and st.status == "done"


def settle_reset(tx: Tx) -> tuple[list[str], list[str]]:
    """The reset job answered: release the hosts reset, quarantine the others. Returns (released, quarantined)."""
    job = tx.rec.hostprep_job
    assert job is not None
    p = tx.event.payload
    if isinstance(p, HostprepDone):
        ok = [h for h in job.hosts if h in p.hosts]
    elif isinstance(p, HostprepFailed):
        ok = [h for h in job.hosts if h in p.ready_hosts or was_reset(tx.rec, h)]
    else:  # the bus rejected the job: nothing was reset
        ok = [h for h in job.hosts if was_reset(tx.rec, h)]
    bad = sorted(set(job.hosts) - set(ok))
    if bad:
        reason, message, _, _ = failure_of(tx)
        _quarantine(tx, bad, f"teardown failed: {reason}: {message}")
        tx.condition("HostsTornDown", "False", reason, f"quarantined (reset failed): {', '.join(bad)}; {message}")
    else:
        tx.condition("HostsTornDown", "True", "Reset", f"{len(ok)} hosts reset: {', '.join(sorted(ok))}")
    return sorted(ok), bad


def settle_timeout(tx: Tx) -> tuple[list[str], list[str]]:
    """The reset did not finish in time: hosts reported reset are released, the others quarantined."""
    job = tx.rec.hostprep_job
    hosts = job.hosts if job is not None and job.action == "teardown" else tuple(h.host_id for h in tx.rec.leaving)
    ok = [h for h in hosts if was_reset(tx.rec, h)]
    bad = sorted(set(hosts) - set(ok))
    if bad:
        _quarantine(tx, bad, "teardown did not finish in time")
    tx.condition(
        "HostsTornDown",
        "False",
        "TeardownTimedOut",
        f"reset did not finish in time; quarantined: {', '.join(bad) or 'none'}",
    )
    return sorted(ok), bad


def _quarantine(tx: Tx, host_ids: list[str], reason: str) -> None:
    gone = set(host_ids)
    tx.update(leaving=tuple(h for h in tx.rec.leaving if h.host_id not in gone))
    tx.quarantine(host_ids, reason)


def release_left(tx: Tx, host_ids: list[str]) -> None:
    """Release the leases of hosts that left (and were reset) and forget them as leaving."""
    gone = set(host_ids)
    tx.update(leaving=tuple(h for h in tx.rec.leaving if h.host_id not in gone))
    tx.release(sorted(gone))
    for host_id in gone:
        tx.host(host_id, leaving=False)
