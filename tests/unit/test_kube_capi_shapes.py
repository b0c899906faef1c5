"""Pure helpers of the simulated CAPI controllers: selectors, conditions in both shapes, change detection."""

from __future__ import annotations

import pytest

from sandbox.capi.shapes import Conditions, differs, make_ref, ref_group, selector_matches


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        (None, {"a": "1"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        ({"matchExpressions": [{"key": "id", "operator": "In", "values": ["h2", "h3"]}]}, {"id": "h3"}, True),
        ({"matchExpressions": [{"key": "id", "operator": "In", "values": ["h2", "h3"]}]}, {"id": "h1"}, False),
        ({"matchExpressions": [{"key": "id", "operator": "In", "values": ["h2"]}]}, {}, False),
        ({"matchExpressions": [{"key": "id", "operator": "NotIn", "values": ["h2"]}]}, {}, True),
        ({"matchExpressions": [{"key": "id", "operator": "NotIn", "values": ["h2"]}]}, {"id": "h2"}, False),
        ({"matchExpressions": [{"key": "id", "operator": "Exists"}]}, {"id": ""}, True),
        ({"matchExpressions": [{"key": "id", "operator": "DoesNotExist"}]}, {"id": "x"}, False),
    ],
)
def test_label_selector_semantics(selector: dict | None, labels: dict[str, str], expected: bool) -> None:
    assert selector_matches(selector, labels) is expected


def test_v1beta1_conditions_keep_transition_times_and_drop_empty_fields() -> None:
    old = [{"type": "Ready", "status": "False", "lastTransitionTime": "2020-01-01T00:00:00Z", "severity": "Info"}]
    conds = Conditions(old, v1beta2=False)
    conds.set("InfrastructureReady", True)
    conds.set("Ready", False, "Waiting")
    built = {c["type"]: c for c in conds.build()}
    assert built["Ready"]["lastTransitionTime"] == "2020-01-01T00:00:00Z"
    assert built["InfrastructureReady"] == {
        "type": "InfrastructureReady",
        "status": "True",
        "lastTransitionTime": built["InfrastructureReady"]["lastTransitionTime"],
    }
    assert built["Ready"]["severity"] == "Info" and built["Ready"]["reason"] == "Waiting"
    assert "message" not in built["Ready"]


def test_v1beta2_conditions_always_carry_reason_and_message() -> None:
    conds = Conditions(None, v1beta2=True)
    conds.set("InfrastructureReady", True, v1beta2_reason="Ready")
    conds.set("WorkersAvailable", False, v1beta2_reason="NotAvailable")
    conds.summary("Available", "InfrastructureReady", "WorkersAvailable")
    built = {c["type"]: c for c in conds.build()}
    assert all({"reason", "message", "status", "type", "lastTransitionTime"} <= set(c) for c in built.values())
    assert all("severity" not in c for c in built.values())
    assert built["Available"]["status"] == "False" and built["Available"]["reason"] == "NotAvailable"


def test_summary_is_true_when_all_are() -> None:
    conds = Conditions(None, v1beta2=False)
    conds.set("A", True)
    conds.set("B", True)
    conds.summary("Ready", "A", "B")
    assert {c["type"]: c["status"] for c in conds.build()}["Ready"] == "True"


def test_differs_follows_merge_patch_semantics() -> None:
    current = {"a": 1, "b": {"c": [1, 2]}, "d": None}
    assert not differs(current, {"a": 1})
    assert not differs(current, {"b": {"c": [1, 2]}})
    assert differs(current, {"b": {"c": [2, 1]}})
    assert differs(current, {"a": None})
    assert not differs(current, {"x": None})
    assert not differs(None, {"x": None})
    assert differs(None, {"x": 1})


def test_refs_in_both_shapes() -> None:
    v1 = make_ref("infrastructure.cluster.x-k8s.io/v1beta1", "ByoMachine", "m", "ns", v1beta2=False)
    v2 = make_ref("infrastructure.cluster.x-k8s.io/v1beta1", "ByoMachine", "m", "ns", v1beta2=True)
    assert v1 == {
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
        "kind": "ByoMachine",
        "name": "m",
        "namespace": "ns",
    }
    assert v2 == {"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "ByoMachine", "name": "m"}
    assert ref_group(v1) == ref_group(v2) == "infrastructure.cluster.x-k8s.io"
