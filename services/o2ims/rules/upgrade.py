"""Rules of a Kubernetes upgrade: the control plane rolls first, then the workers, hosts re-prepared as freed. Pure.

A fulfilled PR whose update names another ``k8s_version`` is checked against ``shared.upgrades`` (one
minor version at a time or a patch, no downgrade, a single control plane moves to a spare host) and
against what the cluster runs (every Machine at the old version, else ``VersionSkew``). Then:

1. (single control plane only) ``hostprep``: the spare host named in the new spec is prepared at the new
   version; the old control-plane host becomes *leaving* (it keeps its lease);
2. ``upgrade-control-plane``: capi_renderer applies versioned machine templates and points the
   KubeadmControlPlane at the new version, the MachineDeployment staying at the old one. KCP replaces
   its Machines one at a time (``maxSurge: 0`` with 3 or more, ``maxSurge: 1`` onto the spare for one);
3. ``upgrade-workers``: once every control-plane Machine runs the new version and (single control plane)
   the old host is reset and its lease gone (released, or quarantined when the reset failed): until its
   reset it still runs the old kube-apiserver, so no worker may run a newer kubelet. Then the MachineDeployment
   rolls too (``maxSurge: 0, maxUnavailable: 1``); when every worker Machine runs it and no host is
   left to reset, a last ``apply`` removes the old templates, and the PR is fulfilled.

During both rollouts the rules react to what status_watcher reports, level-based: a host of the spec
whose ByoHost is seen unclaimed with the old version label was freed by the rollout, and nothing can
claim it (the new templates select the new version): hostprep ``upgrade`` resets it, installs the new
packages and lets its agent register again under the new label, and the next Machine claims it. A
leaving host seen unclaimed (the old single control plane) is reset (``teardown``) and released. One
hostprep job runs at a time; the next is decided when it answers. Each stage has its own deadline; a
failed host or bootstrap fails the PR naming host and step, and the Machines not yet replaced keep
serving the old version. Hosts keep their leases throughout, except a leaving host once reset.
"""

from __future__ import annotations

from typing import assert_never

from services.o2ims.record import PrRecord, Upgrade
from services.o2ims.rules import release
from services.o2ims.rules.cluster import fulfil, ready_with, record_observation
from services.o2ims.rules.failures import failure_of
from services.o2ims.rules.guards import answers, payload
from services.o2ims.transaction import Tx
from shared.errors import InputError
from shared.models import ClusterSpec, HostRef
from shared.payloads import ByoHostSummary, CapiApplied, HostprepDone, PrStage
from shared.upgrades import upgrade_refusal

CONTROL_PLANE: PrStage = "upgrade-control-plane"
WORKERS: PrStage = "upgrade-workers"


def _refuse(path: str, reason: str, message: str) -> InputError:
    return InputError(f"{path}: {message}", path=path, reason=reason)


def skew_refusal(rec: PrRecord, version: str) -> InputError | None:
    """The cluster must run ``version`` everywhere before an upgrade starts (as status_watcher last saw it)."""
    o = rec.observed
    odd = sorted((m, v) for m, v in (o.machine_versions if o else {}).items() if v != version)
    if odd:
        found = ", ".join(f"{m} runs {v}" for m, v in odd[:5])
        return _refuse(
            "spec.k8s_version",
            "VersionSkew",
            f"every Machine must run {version} before an upgrade starts, but {found}",
        )
    return None


def check(rec: PrRecord, old: ClusterSpec, new: ClusterSpec) -> None:
    """Raise ``InputError`` (the reason and why) when the upgrade ``old`` → ``new`` may not start."""
    refusal = upgrade_refusal(old, new)
    if refusal is not None:
        raise _refuse(refusal.path, refusal.reason, refusal.message)
    skew = skew_refusal(rec, old.k8s_version)
    if skew is not None:
        raise skew


def begin(tx: Tx, spec: ClusterSpec) -> None:
    """Start the upgrade of a fulfilled cluster to ``spec`` (checked already by ``check``)."""
    old = tx.spec
    check(tx.rec, old, spec)
    kept = {h.host_id for h in spec.all_hosts}
    moving = tuple(h for h in old.control_plane if h.host_id not in kept)
    # Only what is seen from now on counts: a version label recorded before says nothing of this rollout.
    hosts = {hid: st.evolve(version=None) for hid, st in tx.rec.hosts.items()}
    tx.update(
        spec=spec,
        generation=tx.rec.generation + 1,
        hosts=hosts,
        leaving=(*tx.rec.leaving, *moving),
        upgrade=Upgrade(
            from_version=old.k8s_version,
            to_version=spec.k8s_version,
            started_at=tx.event.at,
            moved=tuple(h.host_id for h in moving),
        ),
    )
    tx.track_spec_hosts()
    for host in moving:
        tx.host(host.host_id, leaving=True)
    spare = tuple(h for h in spec.control_plane if h.host_id not in {c.host_id for c in old.control_plane})
    if spare:
        prepare_spare(tx, spare)
        return
    start_control_plane(tx)


def _title(up: Upgrade) -> str:
    return f"upgrading {up.from_version} → {up.to_version}"


def _upgrade(tx: Tx) -> Upgrade:
    up = tx.rec.upgrade
    if up is None:
        raise ValueError(f"PR {tx.rec.pr_id} has no upgrade under way")
    return up


def prepare_spare(tx: Tx, spare: tuple[HostRef, ...]) -> None:
    names = ", ".join(h.host_id for h in spare)
    tx.condition("HostsPrepared", "Unknown", "Preparing", f"preparing the spare host {names} at {tx.spec.k8s_version}")
    tx.send_hostprep("prepare", spare)
    tx.move(
        "progressing",
        "hostprep",
        message=f"{_title(_upgrade(tx))}: preparing the spare host {names} for the new control plane",
    )


def start_control_plane(tx: Tx) -> None:
    """KCP to the new version (versioned template); the workers stay at the old one."""
    up = _upgrade(tx)
    tx.update(upgrade=up.evolve(host_job=None))
    tx.condition("ResourcesApplied", "Unknown", "Upgrading", f"rolling the control plane to {up.to_version}")
    tx.send_capi("upgrade", workers_version=up.from_version)
    tx.move("progressing", CONTROL_PLANE, message=f"{_title(up)}: rolling the control plane")


def start_workers(tx: Tx) -> None:
    up = _upgrade(tx)
    tx.condition("ResourcesApplied", "Unknown", "Upgrading", f"rolling the workers to {up.to_version}")
    tx.send_capi("upgrade")
    tx.move("progressing", WORKERS, message=f"{_title(up)}: control plane done; rolling the workers")


def resume(tx: Tx) -> None:
    """A retry of a failed upgrade (the same spec) goes on where it stopped; every step is idempotent."""
    up = _upgrade(tx)
    tx.update(upgrade=up.evolve(host_job=None))
    stage = tx.rec.stage
    match stage:
        case "upgrade-workers":
            start_workers(tx)
        case "hostprep":  # the spare's preparation failed: prepare it again (a failed prepare changed no node)
            job = tx.rec.hostprep_job
            spare = tuple(h for h in tx.spec.control_plane if job is not None and h.host_id in job.hosts)
            if spare:
                prepare_spare(tx, spare)
            else:
                start_control_plane(tx)
        case "upgrade-control-plane" | "apply" | "provisioning" | "scaling" | "teardown" | "capi-delete" | None:
            # Where an upgrade fails otherwise: the control-plane step again (the workers have not moved).
            start_control_plane(tx)
        case _:
            assert_never(stage)


# ── the rollout, level-based ────────────────────────────────────────────────────────────


def to_upgrade(rec: PrRecord) -> list[HostRef]:
    """Hosts of the spec the rollout freed: seen unclaimed with the old version label, not yet upgraded."""
    up = rec.upgrade
    if up is None:
        return []
    return [
        h
        for h in (rec.spec.all_hosts if rec.spec else ())
        if (st := rec.hosts.get(h.host_id)) is not None
        and st.claimed is False
        and st.version == up.from_version
        and h.host_id not in up.upgraded
    ]


def to_reset(rec: PrRecord) -> list[HostRef]:
    """Leaving hosts seen unclaimed, to be reset and released: the old single control plane once seen released
    since the upgrade began (never on an older observation: it is the control plane until the rollout frees
    it), and any host still leaving from an earlier scale."""
    up = rec.upgrade
    moved = up.moved if up else ()
    return [
        h
        for h in rec.leaving
        if (st := rec.hosts.get(h.host_id)) is not None
        and st.claimed is False
        and (h.host_id not in moved or (up is not None and st.claimed_at is not None and st.claimed_at > up.started_at))
    ]


def moving(rec: PrRecord) -> list[str]:
    """The old single control-plane host while it still holds its lease (the upgrade waits for it)."""
    left = {h.host_id for h in rec.leaving}
    return [h for h in (rec.upgrade.moved if rec.upgrade else ()) if h in left]


def rolled(rec: PrRecord, stage: str | None) -> bool:
    """The stage's rollout is over: the cluster ready with the spec's counts, every Machine of the role at the
    new version (and, for the workers, the control plane still so)."""
    up, o, spec = rec.upgrade, rec.observed, rec.spec
    if up is None or o is None or spec is None or not ready_with(rec, len(spec.control_plane), len(spec.workers)):
        return False
    cp = o.control_plane_version == up.to_version and o.control_plane_updated == len(spec.control_plane)
    if stage == CONTROL_PLANE:
        return cp
    return cp and o.workers_version == up.to_version and o.workers_updated == len(spec.workers)


def waiting_detail(rec: PrRecord) -> str:
    """What the upgrade waits for, per role and host (for messages and the deadline's reason)."""
    up, o, spec = rec.upgrade, rec.observed, rec.spec
    if up is None or spec is None:
        return "no upgrade under way"
    parts = []
    if o is not None:
        cp = o.control_plane_updated if o.control_plane_version == up.to_version else 0
        workers = o.workers_updated if o.workers_version == up.to_version else 0
        parts.append(f"control plane {cp}/{len(spec.control_plane)} at {up.to_version}")
        parts.append(f"workers {workers}/{len(spec.workers)} at {up.to_version}")
    busy = [
        f"{h} ({st.step or 'queued'}: {st.status})"
        for h, st in sorted(rec.hosts.items())
        if st.step in ("upgrade", "teardown") or (st.status not in ("ready", "pending", "done") and not st.released)
    ]
    if busy:
        parts.append("hosts " + ", ".join(busy[:6]))
    waiting = [h.host_id for h in rec.leaving]
    if waiting:
        parts.append(f"leaving: {', '.join(waiting)}")
    return "; ".join(parts) or "waiting for the cluster"


def _next_host_job(tx: Tx) -> bool:
    """Send the next hostprep job when none of this upgrade runs; True when one runs (or was sent)."""
    up = _upgrade(tx)
    if up.host_job is not None:
        return True
    freed = to_upgrade(tx.rec)
    if freed:
        for host in freed:
            tx.host(
                host.host_id, step="upgrade", status="released", detail=f"freed by the rollout at {up.from_version}"
            )
        tx.send_hostprep("upgrade", tuple(freed))
        tx.update(upgrade=_upgrade(tx).evolve(host_job=_job_id(tx)))
        return True
    leaving = to_reset(tx.rec)
    if leaving and tx.policy.teardown_hosts:
        release.reset_hosts(tx, tuple(leaving))
        tx.update(upgrade=_upgrade(tx).evolve(host_job=_job_id(tx)))
        return True
    if leaving:
        release.release_left(tx, [h.host_id for h in leaving])
        tx.condition("HostsTornDown", "False", "ResetDisabled", "leaving hosts released without a reset")
    return False


def _job_id(tx: Tx) -> str:
    job = tx.rec.hostprep_job
    assert job is not None
    return job.id


def progress(tx: Tx) -> None:
    """From what is known now, take the upgrade's next step (or say what it waits for)."""
    rec = tx.rec
    job = rec.capi_job
    if rec.upgrade is None or job is None or job.action not in ("upgrade", "apply") or not job.confirmed:
        return
    busy = _next_host_job(tx)
    stage = tx.rec.stage
    # The old single control-plane host still runs its kube-apiserver (BYOH frees it without a reset) until
    # its teardown: no worker may run a newer kubelet before then, so the control-plane stage is over only
    # once that host is reset and its lease gone (released, or quarantined when the reset failed).
    if busy or not rolled(tx.rec, stage) or moving(tx.rec):
        _say(tx, f"{_title(_upgrade(tx))}: {waiting_detail(tx.rec)}")
        return
    if stage == CONTROL_PLANE:
        start_workers(tx)
    elif job.action == "upgrade":
        tx.condition("ResourcesApplied", "Unknown", "CleaningUp", "removing the machine templates of the old version")
        tx.send_capi("apply")
        _say(tx, f"{_title(_upgrade(tx))}: every Machine runs {_upgrade(tx).to_version}; removing old templates")
    else:
        finish(tx)


def _say(tx: Tx, text: str) -> None:
    """Progress within a stage: the record's message (what the O2IMS API and the ProvisioningRequest mirror
    show), not a transition."""
    if tx.rec.message != text[:1000]:
        tx.update(message=text[:1000], updated_at=tx.now)


def finish(tx: Tx) -> None:
    up = _upgrade(tx)
    tx.condition("ResourcesApplied", "True", "Upgraded", f"every Machine runs {up.to_version}")
    tx.update(upgrade=None)
    fulfil(tx)


# ── events ─────────────────────────────────────────────────────────────────────────────


def applied(tx: Tx) -> None:
    job = tx.rec.capi_job
    payload(tx, CapiApplied)
    if not answers(tx, job) or job is None or job.action not in ("upgrade", "apply") or job.confirmed:
        return tx.ignore("not an unconfirmed upgrade job")
    tx.update(capi_job=job.evolve(confirmed=True))
    progress(tx)
    return None


def observe(tx: Tx) -> None:
    if record_observation(tx):
        progress(tx)


def observe_byohost(tx: Tx) -> None:
    """Record whether a host's ByoHost is claimed and its version label (ordered by the watcher's clock)."""
    p = payload(tx, ByoHostSummary)
    current = tx.rec.hosts.get(p.host_id or "")
    if p.host_id is None or current is None:
        return tx.ignore("not a host of this PR")
    if current.claimed_at is not None and tx.event.at < current.claimed_at:
        return tx.ignore("older than the last observation of this host")
    claimed = p.exists and p.claimed_by is not None
    version = p.k8s_version if p.exists else None
    if current.claimed == claimed and current.version == version:
        return tx.ignore("no news")
    tx.host(p.host_id, claimed=claimed, claimed_at=tx.event.at, version=version)
    progress(tx)
    return None


def _host_job(tx: Tx, action: str) -> bool:
    job, up = tx.rec.hostprep_job, tx.rec.upgrade
    if not answers(tx, job) or job is None or job.action != action or up is None or up.host_job != job.id:
        tx.ignore(f"not the current {action} job")
        return False
    return True


def host_upgraded(tx: Tx) -> None:
    """hostprep re-prepared the freed hosts: they are registered under the new version, to be claimed."""
    if not _host_job(tx, "upgrade"):
        return
    done = payload(tx, HostprepDone)
    job, up = tx.rec.hostprep_job, _upgrade(tx)
    assert job is not None
    ok = [h for h in job.hosts if h in done.hosts]
    for host_id in ok:
        tx.host(host_id, step="upgrade", status="ready", detail=f"registered at {up.to_version}")
    tx.update(
        hostprep_job=job.evolve(confirmed=True),
        upgrade=up.evolve(host_job=None, upgraded=tuple(sorted({*up.upgraded, *ok}))),
    )
    progress(tx)


def host_failed(tx: Tx) -> None:
    """A host's upgrade failed: the PR fails naming host and step (the Machines not replaced keep serving)."""
    if not _host_job(tx, "upgrade"):
        return
    up = _upgrade(tx)
    reason, message, host_id, step = failure_of(tx)
    if host_id is not None:
        tx.host(host_id, status="failed", step=step, detail=message[:300])
    text = f"upgrade to {up.to_version} failed: {message}; the other Machines keep running {up.from_version}"
    tx.update(upgrade=up.evolve(host_job=None))
    tx.condition("ClusterProvisioned", "False", reason, text[:1000])
    tx.move("failed", tx.rec.stage, reason=reason, message=text[:1000])


def reset_answered(tx: Tx) -> None:
    """The old control-plane host's reset answered: released when reset, quarantined otherwise."""
    if not _host_job(tx, "teardown"):
        return
    ok, _bad = release.settle_reset(tx)
    release.release_left(tx, ok)
    job = tx.rec.hostprep_job
    assert job is not None
    tx.update(hostprep_job=job.evolve(confirmed=True), upgrade=_upgrade(tx).evolve(host_job=None))
    progress(tx)
