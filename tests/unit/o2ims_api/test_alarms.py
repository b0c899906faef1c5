"""The alarm life cycle as pure functions: raise, update, acknowledge, clear, raise again, expire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.o2ims_api import alarms
from services.o2ims_api.catalogue import CLEARED, PR_FAILED

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def want(reason: str = "HostKeyMismatch") -> alarms.Wanted:
    return alarms.Wanted("pr-failed.p1", PR_FAILED, "type-1", "res-1", {"reason": reason})


def test_life_cycle() -> None:
    raised = alarms.raise_or_update(None, want(), T0)
    assert raised is not None and raised.active and raised.occurrence == 1
    first_id = raised.record["alarmEventRecordId"]
    assert [e.event_type for e in raised.outbox] == [alarms.NEW]
    assert alarms.raise_or_update(raised, want(), T0 + timedelta(seconds=1)) is None  # nothing new
    changed = alarms.raise_or_update(raised, want("HostUnreachable"), T0 + timedelta(seconds=2))
    assert changed is not None and changed.record["alarmChangedTime"] and changed.outbox[-1].event_type == alarms.CHANGE
    acked = alarms.acknowledge(changed, T0 + timedelta(seconds=3))
    assert acked is not None and acked.record["alarmAcknowledged"] and acked.outbox[-1].event_type == alarms.ACKNOWLEDGE
    assert alarms.acknowledge(acked, T0) is None
    cleared = alarms.clear(acked, T0 + timedelta(seconds=4))
    assert cleared is not None and not cleared.active and cleared.record["perceivedSeverity"] == CLEARED
    assert cleared.outbox[-1].event_type == alarms.CLEAR and alarms.clear(cleared, T0) is None
    again = alarms.raise_or_update(cleared.model_copy(update={"outbox": ()}), want(), T0 + timedelta(seconds=5))
    assert again is not None and again.occurrence == 2 and again.record["alarmEventRecordId"] != first_id
    assert again.record["alarmAcknowledged"] is False
    # Every event of one alarm has its own id; replaying a decision gives the same ids.
    ids = [e.id for e in (*acked.outbox, *cleared.outbox[-1:])]
    assert len(ids) == len(set(ids))
    assert alarms.raise_or_update(None, want(), T0) == raised


def test_expiry_only_of_cleared_alarms_whose_events_are_out() -> None:
    raised = alarms.raise_or_update(None, want(), T0)
    assert raised is not None
    cleared = alarms.clear(raised.model_copy(update={"outbox": ()}), T0)
    assert cleared is not None
    later = T0 + timedelta(days=8)
    assert not alarms.expired(raised, later, 7 * 86400)
    assert not alarms.expired(cleared, later, 7 * 86400)  # its CLEAR is not published yet
    out = cleared.model_copy(update={"outbox": ()})
    assert alarms.expired(out, later, 7 * 86400) and not alarms.expired(out, T0 + timedelta(days=1), 7 * 86400)
