"""Random event sequences through the state machine keep its invariants."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.o2ims.events import EVENT_KINDS, EventKind
from services.o2ims.table import PHASES
from shared.payloads import PrStatus
from tests.unit.o2ims.machine import POLICY, TEARDOWN, Driver

DEADLINED = {
    "pending",
    "progressing/hostprep",
    "progressing/apply",
    "progressing/provisioning",
    "progressing/scaling",
    "deleting/capi-delete",
    "deleting/teardown",
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kinds=st.lists(st.sampled_from(EVENT_KINDS), max_size=40), teardown=st.booleans())
def test_random_sequences_keep_the_invariants(kinds: list[EventKind], teardown: bool) -> None:
    drv = Driver(TEARDOWN if teardown else POLICY)
    last_seq = 0
    for kind in kinds:
        before = drv.phase
        decision = drv.send(kind)
        rec = drv.rec
        if rec is None:
            assert decision.record is None
            continue
        assert rec.phase in PHASES
        assert rec.seq >= last_seq
        last_seq = rec.seq
        assert (rec.deadline is not None) == (rec.phase in DEADLINED), rec.phase
        if before == "deleted" and rec.phase != "deleted":
            assert kind == "create"
        if rec.phase == "fulfilled":
            assert rec.node_cluster_id is not None
        if rec.phase == "deleted":
            assert rec.hosts == {}
    ids = [c.id for c in drv.commands]
    assert len(ids) == len(set(ids))
    statuses = [c.payload for c in drv.commands if isinstance(c.payload, PrStatus)]
    seqs = [s.seq for s in statuses]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
    if drv.rec is not None and statuses:
        # What consumers heard last is what the record says.
        assert (statuses[-1].state, statuses[-1].stage, statuses[-1].seq) == (drv.rec.state, drv.rec.stage, drv.rec.seq)
