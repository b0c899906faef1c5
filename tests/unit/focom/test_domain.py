"""focom's pure domain: planning create/scale/delete, idempotent replays, status roll-up and the phase table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.focom import domain
from services.focom.domain import FprRecord
from shared.errors import InputError
from shared.inventory import validate_inventory
from shared.models import ClusterSpec, HostRef
from shared.payloads import PrStatus, pr_id_for
from tests.unit.focom.conftest import valid_inventory

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def specs() -> list[ClusterSpec]:
    inv = validate_inventory(valid_inventory())
    return [inv.cluster_spec(c) for c in inv.clusters]


def created(at: datetime = T0) -> FprRecord:
    s = specs()
    plan = domain.plan_create(None, "f", s, domain.request_digest({"allClusters": True}, s), at)
    return plan.record


def report(record: FprRecord, cluster: str, state: str, at: datetime, seq: int = 0, **kw: str) -> FprRecord:
    child = record.children[cluster]
    status = PrStatus(
        pr_id=child.pr_id,
        fpr=record.name,
        cluster=cluster,
        state=state,
        at=at,
        seq=seq,  # type: ignore[arg-type]
        **kw,
    )
    return domain.apply_status(record, status, at)


def test_pr_ids_are_deterministic() -> None:
    assert pr_id_for("f", "smo") == pr_id_for("f", "smo") != pr_id_for("f", "ran") != pr_id_for("g", "smo")


def test_create_plan() -> None:
    s = specs()
    plan = domain.plan_create(None, "f", s, "d1", T0)
    assert plan.record.generation == 1 and plan.record.phase == "Creating" and not plan.replay
    assert [c.operation for c in plan.commands] == ["create", "create"]
    assert {c.spec.name for c in plan.commands if c.spec} == {"smo", "ran"}
    assert plan.leases == {
        "h1": pr_id_for("f", "smo"),
        "h2": pr_id_for("f", "smo"),
        "h3": pr_id_for("f", "ran"),
        "h4": pr_id_for("f", "ran"),
        "h5": pr_id_for("f", "ran"),
        "h6": pr_id_for("f", "ran"),
    }
    # The same request again is a replay: same record, same commands.
    again = domain.plan_create(plan.record, "f", s, "d1", T0 + timedelta(seconds=5))
    assert again.replay and again.record == plan.record and again.commands == plan.commands


def test_create_adds_new_clusters_and_refuses_changed_ones() -> None:
    s = specs()
    first = domain.plan_create(None, "f", s[:1], "d1", T0).record
    more = domain.plan_create(first, "f", s, "d2", T0)
    assert more.record.generation == 2 and [c.spec.name for c in more.commands if c.spec] == ["ran"]
    changed = s[0].model_copy(update={"workers": ()})
    with pytest.raises(InputError, match="cluster-exists"):
        domain.plan_create(more.record, "f", [changed], "d3", T0)


PHASES = [
    ("nothing reported yet", [], "Creating"),
    ("one progressing", [("smo", "progressing")], "Creating"),
    ("one fulfilled", [("smo", "fulfilled")], "Creating"),
    ("all fulfilled", [("smo", "fulfilled"), ("ran", "fulfilled")], "Synced"),
    ("one failed", [("smo", "fulfilled"), ("ran", "failed")], "Failed"),
    ("failed while other pending", [("ran", "failed")], "Failed"),
]


@pytest.mark.parametrize(("case", "reports", "phase"), PHASES, ids=[p[0] for p in PHASES])
def test_phase_table_for_create(case: str, reports: list[tuple[str, str]], phase: str) -> None:
    record = created()
    for i, (cluster, state) in enumerate(reports):
        record = report(record, cluster, state, T0 + timedelta(seconds=i + 1), reason="HostPrepFailed")
    assert record.phase == phase
    if phase == "Failed":
        assert "cluster ran failed: HostPrepFailed" in record.message


def test_reports_from_before_our_command_do_not_settle() -> None:
    record = report(created(), "smo", "fulfilled", T0 - timedelta(seconds=1))
    assert record.phase == "Creating" and domain.status_of(record).children[1].state == "pending"


def test_older_reports_are_dropped() -> None:
    record = created()
    record = report(record, "smo", "fulfilled", T0 + timedelta(seconds=5), seq=4)
    assert report(record, "smo", "progressing", T0 + timedelta(seconds=6), seq=3) == record
    by_time = report(created(), "smo", "fulfilled", T0 + timedelta(seconds=5))
    assert report(by_time, "smo", "progressing", T0 + timedelta(seconds=4)) == by_time
    foreign = PrStatus(pr_id=pr_id_for("f", "x"), fpr="f", cluster="x", state="failed", at=T0 + timedelta(seconds=9))
    assert domain.apply_status(record, foreign, T0) == record


def synced() -> FprRecord:
    record = created()
    for i, cluster in enumerate(("smo", "ran")):
        record = report(record, cluster, "fulfilled", T0 + timedelta(seconds=i + 1), seq=3)
    assert record.phase == "Synced"
    return record


def test_scale_plan_and_phase() -> None:
    record = synced()
    smo = specs()[0]
    bigger = smo.model_copy(
        update={"workers": (*smo.workers, HostRef(host_id="h8", host_name="node-8", host_ip="10.0.0.8"))}
    )
    t1 = T0 + timedelta(minutes=1)
    plan = domain.plan_scale(record, [bigger], "s1", t1)
    assert [(c.operation, c.spec.name) for c in plan.commands if c.spec] == [("update", "smo")]
    assert plan.leases == {h: pr_id_for("f", "smo") for h in ("h1", "h2", "h8")}
    assert plan.record.phase == "Scaling"
    # A stale "fulfilled" from before the update does not end the scaling; the reports after it do.
    assert report(plan.record, "smo", "fulfilled", t1 - timedelta(seconds=1), seq=3).phase == "Scaling"
    rec = report(plan.record, "smo", "progressing", t1 + timedelta(seconds=1), seq=4, stage="scaling")
    assert rec.phase == "Scaling" and "smo: progressing/scaling" in rec.message
    assert report(rec, "smo", "fulfilled", t1 + timedelta(seconds=2), seq=5).phase == "Synced"
    # Scaling to the same workers changes nothing but the request digest.
    same = domain.plan_scale(record, [smo], "s2", t1)
    assert same.commands == () and same.record.phase == "Synced"


def test_delete_plan_and_phase() -> None:
    record = synced()
    t1 = T0 + timedelta(minutes=1)
    plan = domain.plan_delete(record, ["ran", "smo"], "x1", t1)
    assert [c.operation for c in plan.commands] == ["delete", "delete"] and plan.leases == {}
    assert all(c.spec is None for c in plan.commands)
    rec = plan.record
    assert rec.phase == "Deleting"
    rec = report(rec, "smo", "deleting", t1 + timedelta(seconds=1), seq=4)
    rec = report(rec, "smo", "deleted", t1 + timedelta(seconds=2), seq=5)
    assert rec.phase == "Deleting" and rec.message.startswith("1 of 2")
    rec = report(rec, "ran", "deleted", t1 + timedelta(seconds=2), seq=4)
    assert rec.phase == "Deleted"
    assert domain.plan_delete(rec, ["ran", "smo"], "x1", t1).replay
    # Creating again after deletion starts a new generation with fresh children.
    again = domain.plan_create(rec, "f", specs(), "d9", t1 + timedelta(minutes=1))
    assert again.record.generation == rec.generation + 1 and len(again.commands) == 2
    assert again.record.phase == "Creating"


def test_partial_delete_leaves_the_rest_synced() -> None:
    t1 = T0 + timedelta(minutes=1)
    rec = domain.plan_delete(synced(), ["smo"], "x1", t1).record
    assert rec.phase == "Deleting"
    assert report(rec, "smo", "deleted", t1 + timedelta(seconds=1), seq=9).phase == "Synced"


def test_create_while_deleting_is_refused() -> None:
    rec = domain.plan_delete(synced(), ["smo"], "x1", T0 + timedelta(minutes=1)).record
    with pytest.raises(InputError, match="cluster-deleting"):
        domain.plan_create(rec, "f", specs(), "d2", T0 + timedelta(minutes=2))


def test_refusal_by_o2ims_fails_the_child() -> None:
    record = created()
    rec = domain.apply_refusal(record, record.children["ran"].pr_id, "InvalidMessage", "bad spec", T0)
    assert rec.phase == "Failed" and "InvalidMessage" in rec.message
    assert domain.apply_refusal(rec, record.children["ran"].pr_id, "InvalidMessage", "bad spec", T0) == rec


def test_status_view() -> None:
    record = report(created(), "smo", "progressing", T0 + timedelta(seconds=1), stage="hostprep")
    status = domain.status_of(record)
    assert status.name == "f" and status.phase == "Creating" and status.generation == 1
    assert [(c.cluster, c.state, c.stage) for c in status.children] == [
        ("ran", "pending", None),
        ("smo", "progressing", "hostprep"),
    ]


def test_the_phase_of_a_large_request_never_compares_children(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each report recomputes the phase; comparing children there made a report cost O(clusters²)."""
    base = created()
    template = next(iter(base.children.values()))
    children = {
        f"c{i:03d}": template.model_copy(update={"cluster": f"c{i:03d}", "pr_id": pr_id_for("f", f"c{i:03d}")})
        for i in range(300)
    }
    record = base.model_copy(update={"children": children})
    for i in range(0, 300, 2):
        record = report(record, f"c{i:03d}", "fulfilled", T0 + timedelta(seconds=1))
    comparisons = 0
    real_eq = domain.Child.__eq__

    def counting_eq(self: domain.Child, other: object) -> bool:
        nonlocal comparisons
        comparisons += 1
        return real_eq(self, other)

    monkeypatch.setattr(domain.Child, "__eq__", counting_eq)
    phase, message = domain.compute_phase(record)
    assert phase == "Creating" and message.startswith("150/300 fulfilled; c001: pending, c003: pending")
    assert "c000" not in message
    assert comparisons == 0
