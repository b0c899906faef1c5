"""A rule changes the PR record only through validated, typed updates: a misspelt field or an
invalid value raises at once instead of being written to KV."""

from __future__ import annotations

from typing import Any, get_type_hints

import pytest
from pydantic import ValidationError

from services.o2ims.record import HostStatus, PrRecord, RecordChanges
from services.o2ims.table import decide
from services.o2ims.transaction import HostChanges, Tx
from tests.unit.o2ims.machine import POLICY, T0, Clock, request, spec


def _tx() -> Tx:
    clock = Clock()
    created = decide(None, request("create", spec(), clock.tick()), clock.tick(), POLICY).record
    assert created is not None
    return Tx(created, request("update", spec(), clock.tick()), clock.tick(), POLICY)


def test_a_misspelt_record_field_raises() -> None:
    tx = _tx()
    bad: dict[str, Any] = {"statsu": "failed"}
    with pytest.raises(ValidationError, match="statsu"):
        tx.update(**bad)
    assert tx.rec.state == "pending"


@pytest.mark.parametrize(
    ("field", "value"),
    [("state", "bogus"), ("stage", "nowhere"), ("seq", "many"), ("request_at", "yesterday"), ("hosts", [1])],
)
def test_an_invalid_record_value_raises(field: str, value: object) -> None:
    tx = _tx()
    before = tx.rec
    with pytest.raises(ValidationError, match=field):
        tx.update(**{field: value})  # type: ignore[misc]
    assert tx.rec is before


def test_host_updates_are_validated_too() -> None:
    tx = _tx()
    with pytest.raises(ValidationError, match="released"):
        tx.host("w0", released="maybe")  # type: ignore[typeddict-item]
    bad: dict[str, Any] = {"stpe": "containerd"}
    with pytest.raises(ValidationError, match="stpe"):
        tx.host("w0", **bad)


def test_a_valid_update_changes_only_what_it_names() -> None:
    tx = _tx()
    before = tx.rec
    tx.update(state="failed", reason="Because", deleted_at=T0)
    assert (tx.rec.state, tx.rec.reason, tx.rec.deleted_at) == ("failed", "Because", T0)
    assert tx.rec.model_dump(exclude={"state", "reason", "deleted_at"}) == before.model_dump(
        exclude={"state", "reason", "deleted_at"}
    )


def test_the_typed_changes_name_every_record_field_with_its_type() -> None:
    """``RecordChanges`` lets mypy catch a misspelt key; it must not drift from the record."""
    hints = get_type_hints(RecordChanges)
    assert hints == {name: f.annotation for name, f in PrRecord.model_fields.items()}
    host_hints = get_type_hints(HostChanges)
    assert host_hints == {name: f.annotation for name, f in HostStatus.model_fields.items() if name != "role"}


def test_an_update_leaves_the_record_it_started_from_as_it_was() -> None:
    """Records are shared (a store's cache, the transaction's start): a change is always a new copy."""
    tx = _tx()
    before = tx.rec
    dumped = before.model_dump()
    tx.update(state="failed", message="gone")
    tx.host("w0", step="containerd", status="running")
    assert before.model_dump() == dumped
    assert tx.rec is not before and tx.rec.hosts["w0"].step == "containerd"


def test_a_nested_value_given_as_data_is_validated_into_its_model() -> None:
    tx = _tx()
    tx.update(hosts={"w9": {"role": "worker", "status": "ready"}})  # type: ignore[dict-item]
    assert isinstance(tx.rec.hosts["w9"], HostStatus) and tx.rec.hosts["w9"].status == "ready"
    with pytest.raises(ValidationError, match="role"):
        tx.update(hosts={"w9": {"role": "boss"}})  # type: ignore[dict-item]
