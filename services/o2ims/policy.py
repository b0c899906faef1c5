"""``Policy``: the deadlines and options of the PR state machine, built from settings. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from shared.payloads import PrStage, PrState


@dataclass(frozen=True)
class Policy:
    """Deadlines (seconds) and options of the state machine, from settings."""

    hostprep_deadline: float = 30 * 60.0
    apply_deadline: float = 10 * 60.0
    provisioning_deadline: float = 60 * 60.0
    delete_deadline: float = 30 * 60.0
    teardown_deadline: float = 30 * 60.0
    upgrade_control_plane_deadline: float = 60 * 60.0
    upgrade_workers_deadline: float = 60 * 60.0
    #: Reset every host leaving a cluster (scale-down, swap, delete) before its lease is released.
    teardown_hosts: bool = True
    history_limit: int = 50
    past_jobs_limit: int = 20

    def deadline_for(self, state: PrState, stage: PrStage | None) -> float | None:
        """The deadline of a stage in seconds; None for resting states (fulfilled, failed, deleted)."""
        if state not in ("pending", "progressing", "deleting"):
            return None
        if state == "pending" or stage is None:
            return self.hostprep_deadline
        return self.stage_deadlines()[stage]

    def stage_deadlines(self) -> dict[PrStage, float]:
        """Every stage's deadline (a test checks that each stage has one)."""
        return {
            "hostprep": self.hostprep_deadline,
            "apply": self.apply_deadline,
            "provisioning": self.provisioning_deadline,
            # A scale (a swap: the new worker added, then the old one removed) is bounded as a whole.
            "scaling": self.provisioning_deadline,
            "teardown": self.teardown_deadline,
            "capi-delete": self.delete_deadline,
            # Each rollout step re-prepares its hosts one at a time: its own deadline, per role.
            "upgrade-control-plane": self.upgrade_control_plane_deadline,
            "upgrade-workers": self.upgrade_workers_deadline,
        }
