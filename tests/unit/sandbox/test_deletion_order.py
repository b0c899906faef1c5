"""The simulated MachineSet's choice of Machines to delete follows CAPI's priority and deletion policies."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.capi.machines import DELETE_POLICIES, delete_policy, scale_down_order
from shared.objects import DELETE_MACHINE_ANNOTATION


def machine(name: str, created: str, *, ready: bool = True, annotated: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "creationTimestamp": f"2026-01-01T00:00:{created}Z"}
    if annotated:
        meta["annotations"] = {DELETE_MACHINE_ANNOTATION: ""}
    status = {"nodeRef": {"name": f"node-{name}"}} if ready else {}
    return {"metadata": meta, "status": status}


def names(machines: list[dict[str, Any]]) -> list[str]:
    return [m["metadata"]["name"] for m in machines]


MACHINES = [machine("m-old", "01"), machine("m-mid", "02"), machine("m-new", "03")]


def test_oldest_and_newest_order_by_creation_time() -> None:
    assert names(scale_down_order(MACHINES, "Oldest")) == ["m-old", "m-mid", "m-new"]
    assert names(scale_down_order(MACHINES, "Newest")) == ["m-new", "m-mid", "m-old"]


def test_random_is_a_stable_order_that_is_not_the_creation_order_for_every_name_set() -> None:
    first = names(scale_down_order(MACHINES, "Random"))
    assert first == names(scale_down_order(list(reversed(MACHINES)), "Random"))  # stable between reconciles
    sets = [[machine(f"w{i}-{j}", f"0{j}") for j in range(3)] for i in range(20)]
    randoms = [names(scale_down_order(ms, "Random")) for ms in sets]
    # Over a few name sets Random disagrees with both Oldest and Newest: guessing which Machine goes would fail.
    assert any(r != names(scale_down_order(ms, "Oldest")) for r, ms in zip(randoms, sets, strict=True))
    assert any(r != names(scale_down_order(ms, "Newest")) for r, ms in zip(randoms, sets, strict=True))


@pytest.mark.parametrize("policy", DELETE_POLICIES)
def test_an_annotated_machine_goes_first_whatever_the_policy(policy: str) -> None:
    for target in range(3):
        ms = [machine(n, c, annotated=i == target) for i, (n, c) in enumerate((("a", "01"), ("b", "02"), ("c", "03")))]
        assert names(scale_down_order(ms, policy))[0] == "abc"[target]  # type: ignore[arg-type]


def test_an_unhealthy_machine_goes_before_healthy_ones_but_after_annotated_ones() -> None:
    ms = [machine("a", "01"), machine("b", "02", ready=False), machine("c", "03", annotated=True)]
    assert names(scale_down_order(ms, "Newest")) == ["c", "b", "a"]


def test_the_policy_is_read_from_either_api_version_and_defaults_to_random() -> None:
    assert delete_policy({"spec": {}}) == "Random"
    assert delete_policy({"spec": {"strategy": {"rollingUpdate": {"deletePolicy": "Newest"}}}}) == "Newest"
    assert delete_policy({"spec": {"deletion": {"order": "Oldest"}}}) == "Oldest"
    assert delete_policy({"spec": {"deletion": {"order": "Sideways"}}}) == "Random"
