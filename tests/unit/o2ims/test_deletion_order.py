"""The deletion's last step is two: the lease releases (and quarantines) first, then the tombstone. Pure."""

from __future__ import annotations

from services.o2ims.events import Event
from services.o2ims.table import COMPLETE_DELETION_FIRST, decide
from shared.payloads import PrStatus
from tests.unit.o2ims.machine import POLICY, canonical, driven_to


def test_the_tombstone_waits_for_the_releases_and_nothing_else_is_decided_meanwhile() -> None:
    drv = driven_to("deleting/teardown")
    event, now = canonical("teardown.done", drv.rec, drv.clock.tick())
    first = decide(drv.rec, event, now, POLICY)
    rec = first.record
    assert rec is not None and rec.tombstone_pending and rec.phase == "deleting/teardown"
    assert [c.release for c in first.commands if c.release] == [("cp0", "w0", "w1")]
    assert not [c for c in first.commands if isinstance(c.payload, PrStatus)]  # nothing says deleted yet

    # The engine has not carried the releases out yet: the tombstone stays due.
    early = decide(rec, Event(kind="leases.released", at=drv.clock.tick(), message_id=""), drv.clock.now, POLICY)
    assert early.record is None and early.ignored == "the leases are not released yet"
    # Any other event waits for the deletion to complete (the engine completes it, then decides again).
    other, at = canonical("byohost.status", rec, drv.clock.tick())
    assert decide(rec, other, at, POLICY).rule == COMPLETE_DELETION_FIRST

    released = rec.without_commands({c.id for c in rec.outbox})
    done = decide(released, Event(kind="leases.released", at=drv.clock.tick(), message_id=""), drv.clock.now, POLICY)
    assert done.record is not None and done.record.state == "deleted" and not done.record.tombstone_pending
    assert done.record.condition("LeasesReleased") is not None
    (status,) = [c.payload for c in done.commands if isinstance(c.payload, PrStatus)]
    assert status.state == "deleted" and not [c for c in done.commands if c.release or c.quarantine]
    # A repeat of the completion changes nothing.
    again = decide(done.record, Event(kind="leases.released", at=drv.clock.tick(), message_id=""), drv.clock.now)
    assert again.record is None
