"""Rules of the stage deadlines: a stage that passes its deadline fails the PR. Pure.

Each stage's deadline is armed by ``Tx.move`` as a ``PrDeadline`` timer carrying a sequence
number; only the PR's current one, once due, acts (``guards.deadline_due``). Teardown's
deadline is a deletion rule: it completes the deletion instead of failing.
"""

from __future__ import annotations

from datetime import datetime
from typing import assert_never

from services.o2ims.record import ConditionType, PrRecord
from services.o2ims.rules import upgrade
from services.o2ims.rules.cluster import waiting_message
from services.o2ims.rules.guards import deadline_due
from services.o2ims.transaction import Tx
from shared.payloads import PrDeadline, PrStage


def _not_ready_hosts(rec: PrRecord) -> str:
    job = rec.hostprep_job
    hosts = job.hosts if job else ()
    late = [
        f"{h} (at {st.step})" if (st := rec.hosts.get(h)) and st.step else h
        for h in hosts
        if (rec.hosts.get(h) is None or rec.hosts[h].status != "ready")
    ]
    return ", ".join(late) or "none reported"


def timeout_of(rec: PrRecord, stage: PrStage) -> tuple[str, ConditionType, str]:
    """(reason, condition, detail) of a stage that passed its deadline."""
    match stage:
        case "hostprep":
            return "HostprepTimedOut", "HostsPrepared", f"hosts not ready: {_not_ready_hosts(rec)}"
        case "apply":
            return "ApplyTimedOut", "ResourcesApplied", "capi_renderer never confirmed the apply"
        case "provisioning":
            return "ProvisioningTimedOut", "ClusterProvisioned", waiting_message(rec)
        case "scaling":
            leaving = [h.host_id for h in rec.leaving if (st := rec.hosts.get(h.host_id)) and st.claimed]
            still = f"; still claimed: {', '.join(leaving)}" if leaving else ""
            return "ScalingTimedOut", "ClusterProvisioned", waiting_message(rec) + still
        case "teardown":
            return "TeardownTimedOut", "HostsTornDown", "the host reset did not finish"
        case "capi-delete":
            return "DeletionTimedOut", "ResourcesDeleted", "the Cluster is still present"
        case "upgrade-control-plane":
            return "UpgradeTimedOut", "ClusterProvisioned", f"control-plane rollout: {upgrade.waiting_detail(rec)}"
        case "upgrade-workers":
            return "UpgradeTimedOut", "ClusterProvisioned", f"worker rollout: {upgrade.waiting_detail(rec)}"
        case _:
            assert_never(stage)


def timed_out(tx: Tx) -> None:
    if not deadline_due(tx):
        return
    rec = tx.rec
    stage: PrStage = rec.stage or "hostprep"
    seconds = tx.policy.deadline_for(rec.state, rec.stage) or 0.0
    reason, ctype, detail = timeout_of(rec, stage)
    message = f"stage {stage} passed its deadline ({seconds:g}s): {detail}"
    tx.condition(ctype, "False", reason, message)
    tx.move("failed", stage, reason=reason, message=message)


def timer_wait(record: PrRecord | None, timer: PrDeadline, now: datetime) -> float | None:
    """Seconds until ``timer`` is due when it is still the PR's current deadline, else None."""
    if record is None or record.deadline is None or timer.seq != record.deadline_seq:
        return None
    remaining = (record.deadline - now).total_seconds()
    return remaining if remaining > 0 else None
