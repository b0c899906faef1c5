"""Lookups keyed by PR stage cover every stage of ``shared.kinds.PrStage``."""

from __future__ import annotations

import pytest

from services.o2ims.policy import Policy
from services.o2ims.rules.deadlines import timeout_of
from shared.kinds import PR_STAGES, PrStage
from tests.unit.o2ims.machine import driven_to


def test_every_stage_has_a_deadline() -> None:
    policy = Policy(
        hostprep_deadline=1, apply_deadline=2, provisioning_deadline=3, delete_deadline=4, teardown_deadline=5
    )
    deadlines = policy.stage_deadlines()
    assert set(deadlines) == set(PR_STAGES)
    for stage in PR_STAGES:
        for state in ("progressing", "deleting"):
            assert policy.deadline_for(state, stage) == deadlines[stage]
    assert policy.deadline_for("fulfilled", None) is None and policy.deadline_for("pending", None) == 1


@pytest.mark.parametrize("stage", PR_STAGES)
def test_every_stage_says_why_it_timed_out(stage: PrStage) -> None:
    rec = driven_to("fulfilled").rec
    assert rec is not None
    reason, condition, detail = timeout_of(rec, stage)
    assert reason.endswith("TimedOut") and condition and detail
