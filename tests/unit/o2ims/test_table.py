"""The transition table, every phase x event pair, with events that answer the PR's current jobs.

``EXPECTED[phase][kind]`` is the phase after the event: ``IGNORED`` means the decision writes
nothing (late, duplicate or meaningless events), ``SAME`` means the record changes (a note, a
queued request, a re-sent command) but the phase does not. Pairs not listed are ``IGNORED``.
"""

from __future__ import annotations

import pytest

from services.o2ims.events import EVENT_KINDS
from services.o2ims.table import PHASES, TABLE
from tests.unit.o2ims.machine import canonical, driven_to

IGNORED, SAME = "ignored", "same"
FAILED, DELETED, PENDING, TEARDOWN = "failed", "deleted", "pending", "deleting/teardown"

EXPECTED: dict[str, dict[str, str]] = {
    "absent": {"create": PENDING, "update": PENDING, "delete": DELETED},
    "pending": {
        "update": SAME,
        "delete": TEARDOWN,
        "host.progress": "progressing/hostprep",
        "hostprep.done": "progressing/apply",
        "hostprep.failed": FAILED,
        "job.rejected": FAILED,
        "deadline": FAILED,
        "byohost.status": SAME,
    },
    "progressing/hostprep": {
        "update": SAME,
        "delete": TEARDOWN,
        "host.progress": SAME,
        "hostprep.done": "progressing/apply",
        "hostprep.failed": FAILED,
        "job.rejected": FAILED,
        "deadline": FAILED,
        "byohost.status": SAME,
    },
    "progressing/apply": {
        "update": SAME,
        "delete": "deleting/capi-delete",
        "capi.applied": "progressing/provisioning",
        "capi.failed": FAILED,
        "job.rejected": FAILED,
        "cluster.status": SAME,
        "cluster.ready": SAME,
        "cluster.failed": FAILED,
        "deadline": FAILED,
        "byohost.status": SAME,
    },
    "progressing/provisioning": {
        "update": SAME,
        "delete": "deleting/capi-delete",
        "capi.failed": FAILED,
        "job.rejected": FAILED,
        "cluster.status": SAME,
        "cluster.ready": "fulfilled",
        "cluster.failed": FAILED,
        "cluster.gone": FAILED,
        "deadline": FAILED,
        "byohost.status": SAME,
    },
    "progressing/scaling": {
        "update": SAME,
        "delete": "deleting/capi-delete",
        "capi.applied": SAME,
        "capi.failed": FAILED,
        "job.rejected": FAILED,
        "cluster.status": SAME,
        "cluster.ready": SAME,
        "cluster.failed": FAILED,
        "cluster.gone": FAILED,
        "deadline": FAILED,
        "byohost.status": SAME,
    },
    "progressing/upgrade-control-plane": {
        "update": SAME,
        "delete": "deleting/capi-delete",
        "host.progress": SAME,
        "job.rejected": FAILED,
        "capi.applied": SAME,
        "capi.failed": FAILED,
        "cluster.status": SAME,
        "cluster.failed": FAILED,
        "cluster.gone": FAILED,
        "deadline": FAILED,
        "byohost.status": SAME,
    },
    "progressing/upgrade-workers": {
        "update": SAME,
        "delete": "deleting/capi-delete",
        "host.progress": SAME,
        "job.rejected": FAILED,
        "capi.applied": SAME,
        "capi.failed": FAILED,
        "cluster.status": SAME,
        "cluster.ready": SAME,
        "cluster.failed": FAILED,
        "cluster.gone": FAILED,
        "deadline": FAILED,
        "byohost.status": SAME,
    },
    "progressing/teardown": {
        "update": SAME,
        "delete": "deleting/capi-delete",
        "host.progress": SAME,
        "teardown.done": "fulfilled",
        "teardown.failed": "fulfilled",
        "job.rejected": "fulfilled",
        "cluster.status": SAME,
        "cluster.failed": FAILED,
        "cluster.gone": FAILED,
        "deadline": "fulfilled",
    },
    "fulfilled": {
        "update": "progressing/hostprep",
        "delete": "deleting/capi-delete",
        "cluster.status": SAME,
        "cluster.failed": FAILED,
        "cluster.gone": FAILED,
        "byohost.status": SAME,
    },
    "failed": {"create": PENDING, "update": PENDING, "delete": TEARDOWN, "byohost.status": SAME},
    "deleting/capi-delete": {
        "create": SAME,
        "capi.applied": SAME,
        "capi.deleting": SAME,
        "capi.deleted": TEARDOWN,
        "cluster.gone": TEARDOWN,
        "capi.delete_failed": FAILED,
        "job.rejected": FAILED,
        "deadline": FAILED,
        "byohost.status": SAME,
    },
    "deleting/teardown": {
        "create": SAME,
        "host.progress": SAME,
        "hostprep.done": SAME,
        "teardown.done": DELETED,
        "teardown.failed": DELETED,
        "job.rejected": DELETED,
        "capi.applied": SAME,
        "deadline": DELETED,
        "byohost.status": SAME,
    },
    "deleted": {"create": PENDING, "capi.applied": SAME},
}


def test_the_expectations_cover_every_phase() -> None:
    assert set(EXPECTED) == set(PHASES)


def test_every_table_row_names_a_real_phase_and_event() -> None:
    for phase, kind in TABLE:
        assert phase in PHASES and kind in EVENT_KINDS


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_phase_by_event(phase: str, kind: str) -> None:
    drv = driven_to(phase)
    before = drv.rec
    event, now = canonical(kind, drv.rec, drv.clock.tick())  # type: ignore[arg-type]
    decision = drv.apply(event, now)
    expected = EXPECTED[phase].get(kind, IGNORED)
    if expected == IGNORED:
        assert decision.record is None, f"{phase} x {kind} changed the record ({decision.rule})"
        assert decision.commands == ()
        assert drv.rec == before
        return
    assert decision.record is not None, f"{phase} x {kind} was ignored: {decision.ignored}"
    after = drv.phase
    assert after == (phase if expected == SAME else expected), f"{phase} x {kind} → {after} ({decision.rule})"
    statuses = [c for c in decision.commands if c.payload is not None and c.payload.type == "o2ims.status"]
    # A phase change is published; a note is not.
    assert bool(statuses) == (after != phase)


@pytest.mark.parametrize("phase", PHASES)
def test_a_duplicate_of_any_event_changes_nothing_the_second_time(phase: str) -> None:
    for kind in EVENT_KINDS:
        drv = driven_to(phase)
        event, now = canonical(kind, drv.rec, drv.clock.tick())
        drv.apply(event, now)
        snapshot = drv.rec
        again = drv.apply(event, drv.clock.tick() if kind != "deadline" else now)
        if again.record is None:
            continue
        # The only events that may act twice are those whose effect is a re-sent command.
        assert kind in ("capi.applied", "hostprep.done"), f"{phase} x {kind} acted twice: {again.rule}"
        assert drv.rec is not None and snapshot is not None and drv.rec.phase == snapshot.phase
