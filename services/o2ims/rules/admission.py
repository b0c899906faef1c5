"""Rules of requests: create, update (day 2), retry, and queueing while a flow runs.

Requests are ordered by when the bus received them: one older than the last request applied is a
replay or was overtaken, and changes nothing. A create or update of a fulfilled PR scales its
workers within the immutability rules (cluster name, namespace and control-plane hosts never
change; once CAPI objects may exist, neither do VIP, CIDRs and CNI), or, when it names another
Kubernetes version, upgrades the cluster (``upgrade``: the rules of ``shared.upgrades``, checked before
anything starts); of a failed PR, it runs the flow again (a failed upgrade goes on where it stopped);
while a flow runs, it waits in the record until the flow settles. Pure: no I/O.
"""

from __future__ import annotations

from services.o2ims.record import Queued
from services.o2ims.rules import scaling, upgrade
from services.o2ims.rules.guards import newer_request, payload
from services.o2ims.transaction import Tx
from shared.errors import InputError
from shared.models import ClusterSpec
from shared.payloads import PrRequest
from shared.upgrades import is_upgrade, upgrade_refusal

#: Fields that may change only while no CAPI object can exist yet; workers may always change (and the
#: version, by an upgrade).
_FROZEN_ONCE_APPLIED = ("vip", "pod_cidr", "service_cidr", "cni")


def requested_spec(tx: Tx) -> ClusterSpec:
    spec = payload(tx, PrRequest).spec
    if spec is None:
        raise InputError(
            f"{tx.event.kind} of PR {tx.rec.pr_id} carries no spec", path="payload.spec", reason="MissingSpec"
        )
    return spec


def check_change(old: ClusterSpec, new: ClusterSpec, *, applied: bool) -> None:
    """The immutability rules of an update; raises ``InputError`` naming the field."""

    def refuse(path: str, why: str) -> InputError:
        return InputError(f"{path}: {why}", path=path, reason="ImmutableField")

    if new.name != old.name:
        raise refuse("spec.name", f"the cluster name cannot change ({old.name!r} → {new.name!r})")
    if new.namespace != old.namespace:
        raise refuse("spec.namespace", "the namespace cannot change")
    upgrading = applied and is_upgrade(old, new)
    if upgrading:
        refusal = upgrade_refusal(old, new)
        if refusal is not None:
            raise InputError(f"{refusal.path}: {refusal.message}", path=refusal.path, reason=refusal.reason)
    elif new.control_plane != old.control_plane:
        if old.vip is None:
            raise refuse(
                "spec.control_plane",
                f"cluster {old.name} has no VIP: its API endpoint is its control-plane "
                "host's own address, so its control plane cannot be scaled (recreate it with a VIP)",
            )
        raise refuse("spec.control_plane", "control-plane hosts cannot change; only workers can be scaled")
    if not applied:
        return
    for name in _FROZEN_ONCE_APPLIED:
        if getattr(new, name) != getattr(old, name):
            raise refuse(f"spec.{name}", "cannot change once the cluster exists; only workers can")
    before = {h.host_id: h for h in old.workers}
    for i, host in enumerate(new.workers):
        if host.host_id in before and before[host.host_id] != host:
            raise refuse(f"spec.workers.{i}", f"worker {host.host_id} changed its details; remove and re-add it")


# ── starting flows ─────────────────────────────────────────────────────────────────────


def start_flow(tx: Tx) -> None:
    """Prepare every host of the spec, then apply, then wait (create, retry, new incarnation)."""
    spec = tx.spec
    tx.update(observed=None, queued=None)
    tx.track_spec_hosts()
    tx.condition("HostsPrepared", "Unknown", "Preparing", f"preparing {len(spec.all_hosts)} hosts")
    tx.send_hostprep("prepare", spec.all_hosts)
    tx.move("pending", message=f"waiting for host preparation of {len(spec.all_hosts)} hosts")


def admit(tx: Tx) -> None:
    requested_spec(tx)
    start_flow(tx)


def begin_update(tx: Tx, spec: ClusterSpec) -> None:
    """Day 2: prepare the added workers (if any), then scale (``scaling``): add first, remove exactly.

    Workers dropped from the spec become *leaving*: they keep their leases until their ByoHost was
    seen unclaimed and they were reset (``release``); a leaving host put back in the spec stays.
    """
    old = tx.spec
    known = {h.host_id for h in old.workers}
    wanted = {h.host_id for h in spec.all_hosts}
    added = tuple(h for h in spec.workers if h.host_id not in known)
    dropped = tuple(h for h in old.workers if h.host_id not in wanted)
    leaving = tuple(h for h in (*tx.rec.leaving, *dropped) if h.host_id not in wanted)
    message = f"scaling workers {len(old.workers)} → {len(spec.workers)}"
    tx.update(spec=spec, generation=tx.rec.generation + 1, observed=None, leaving=leaving)
    tx.track_spec_hosts()
    for host in leaving:
        tx.host(host.host_id, leaving=True)
    if added:
        tx.condition("HostsPrepared", "Unknown", "Preparing", f"preparing {len(added)} new hosts")
        tx.send_hostprep("prepare", added)
        tx.move("progressing", "hostprep", message=f"{message}: preparing {len(added)} new hosts")
        return
    scaling.start(tx, adding=False)


def change_spec(tx: Tx) -> None:
    """A newer create/update of a fulfilled PR: identical means nothing to do, else day 2."""
    if not newer_request(tx):
        return tx.ignore("replayed or overtaken request")
    spec = requested_spec(tx)
    if spec == tx.rec.spec:
        return tx.ignore("the cluster already has this spec")
    check_change(tx.spec, spec, applied=tx.rec.capi_requested)
    if tx.rec.capi_requested and is_upgrade(tx.spec, spec):
        upgrade.check(tx.rec, tx.spec, spec)
    tx.update(request_at=tx.event.at)
    day2(tx, spec)


def day2(tx: Tx, spec: ClusterSpec) -> None:
    """A change of a fulfilled cluster: an upgrade when the version changes, else a scale."""
    if tx.rec.capi_requested and is_upgrade(tx.spec, spec):
        upgrade.begin(tx, spec)
    else:
        begin_update(tx, spec)


def _no_upgrade_from_failed(tx: Tx, spec: ClusterSpec) -> None:
    """A failed cluster is not upgraded: a new version is taken only from fulfilled (or as the failed upgrade)."""
    rec = tx.rec
    if rec.upgrade is not None and spec != rec.spec:
        raise InputError(
            f"spec: the upgrade to {rec.upgrade.to_version} failed ({rec.reason}); retry it with the same spec, "
            "or delete the cluster",
            path="spec",
            reason="UpgradeUnfinished",
        )
    if rec.upgrade is None and rec.capi_requested and is_upgrade(tx.spec, spec):
        raise InputError(
            f"spec.k8s_version: cluster {rec.cluster} is failed ({rec.reason}); it is upgraded only once "
            "fulfilled (retry the last request first)",
            path="spec.k8s_version",
            reason="ClusterNotFulfilled",
        )


def retry(tx: Tx) -> None:
    """A newer create/update of a failed PR runs the whole flow again (every step is idempotent); a failed
    upgrade goes on where it stopped (never a new host preparation of nodes still running the old version)."""
    if not newer_request(tx):
        return tx.ignore("replayed or overtaken request")
    spec = requested_spec(tx)
    _no_upgrade_from_failed(tx, spec)
    if spec != tx.rec.spec:
        check_change(tx.spec, spec, applied=tx.rec.capi_requested)
        tx.update(spec=spec, generation=tx.rec.generation + 1)
    tx.update(request_at=tx.event.at)
    if tx.rec.upgrade is not None:
        upgrade.resume(tx)
        return None
    start_flow(tx)
    return None


def queue_request(tx: Tx) -> None:
    """A changed spec while a flow runs waits in the record until the flow settles."""
    if not newer_request(tx):
        return tx.ignore("replayed or overtaken request")
    spec = requested_spec(tx)
    if spec == tx.rec.spec:
        if tx.rec.queued is None:
            return tx.ignore("the flow in progress already has this spec")
        tx.update(queued=None, request_at=tx.event.at)
        return None
    # Checked as if applied: by the time it starts, CAPI objects may well exist.
    check_change(tx.spec, spec, applied=True)
    op = "update" if tx.event.kind == "update" else "create"
    tx.update(
        queued=Queued(operation=op, spec=spec, at=tx.event.at, message_id=tx.event.message_id), request_at=tx.event.at
    )
    return None


def start_queued(tx: Tx) -> None:
    """Once a flow settles (fulfilled or failed), start the request queued meanwhile."""
    queued = tx.rec.queued
    if queued is None or tx.rec.state not in ("fulfilled", "failed"):
        return
    tx.update(queued=None)
    if queued.spec == tx.rec.spec and tx.rec.state == "fulfilled":
        return
    if tx.rec.state == "fulfilled":
        try:
            day2(tx, queued.spec)
        except InputError:
            # Checked when queued; only what the cluster runs can have changed since (``VersionSkew``): the
            # queued upgrade is dropped (its checks raise before anything is changed).
            return
    elif tx.rec.upgrade is not None or (tx.rec.capi_requested and is_upgrade(tx.spec, queued.spec)):
        return  # a failed upgrade (or an upgrade of a failed cluster) is not started by a queued request
    else:
        tx.update(spec=queued.spec, generation=tx.rec.generation + 1)
        start_flow(tx)
