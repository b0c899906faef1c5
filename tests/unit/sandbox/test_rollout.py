"""The rollout rules of the simulated KCP and MachineDeployment controllers, step by step."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.capi.rollout import (
    int_or_percent,
    kcp_max_surge,
    kcp_outdated_reasons,
    lowest_version,
    md_rollout_step,
    md_surge_unavailable,
    preflight_failure,
    template_hash,
    version_counts,
)

Obj = dict[str, Any]


def machine(name: str, *, ready: bool = True, version: str = "v1.30.2") -> Obj:
    return {"metadata": {"name": name}, "spec": {"version": version}, "ready": ready}


def is_ready(m: Obj) -> bool:
    return bool(m["ready"])


def by_name(ms: list[Obj]) -> list[Obj]:
    return sorted(ms, key=lambda m: m["metadata"]["name"])


@pytest.mark.parametrize(
    ("value", "total", "up", "want"),
    [(1, 3, True, 1), ("25%", 3, True, 1), ("25%", 3, False, 0), ("50%", 3, False, 1), ("0", 3, True, 0)],
)
def test_int_or_percent(value: Any, total: int, up: bool, want: int) -> None:
    assert int_or_percent(value, total, round_up=up) == want


def test_md_fenceposts_default_and_both_zero() -> None:
    assert md_surge_unavailable({"spec": {}}, 2) == (1, 0)
    zero = {"spec": {"strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}}}
    assert md_surge_unavailable(zero, 2) == (0, 1)
    v1beta2 = {"spec": {"rollout": {"strategy": {"rollingUpdate": {"maxSurge": "50%", "maxUnavailable": "50%"}}}}}
    assert md_surge_unavailable(v1beta2, 3) == (2, 1)


def test_kcp_max_surge_defaults_to_one() -> None:
    assert kcp_max_surge({"spec": {"replicas": 3}}) == 1
    assert kcp_max_surge({"spec": {"replicas": 3, "rolloutStrategy": {"rollingUpdate": {"maxSurge": 0}}}}) == 0
    assert kcp_max_surge({"spec": {"replicas": 3, "rollout": {"strategy": {"rollingUpdate": {"maxSurge": 0}}}}}) == 0


def simulate(desired: int, surge: int, unavailable: int, old: int) -> list[tuple[int, int, int]]:
    """Run the MD rollout to the end, new Machines becoming ready one step after creation;
    returns (live, ready, new) after every step."""
    new: list[Obj] = []
    olds = [machine(f"old-{i}") for i in range(old)]
    trace = []
    for step in range(50):
        result = md_rollout_step(desired, surge, unavailable, new, olds, is_ready, by_name)
        gone = {id(m) for m in result.delete}
        olds = [m for m in olds if id(m) not in gone]
        new = [m for m in new if id(m) not in gone]
        for m in new:
            m["ready"] = True
        new += [machine(f"new-{step}-{i}", ready=False, version="v1.31.2") for i in range(result.create)]
        live = new + olds
        trace.append((len(live), sum(1 for m in live if m["ready"]), len(new)))
        if not olds and len(new) == desired and all(m["ready"] for m in new):
            return trace
    raise AssertionError(f"rollout did not finish: {trace}")


def test_md_rollout_max_surge_zero_deletes_first_and_keeps_availability() -> None:
    trace = simulate(2, 0, 1, 2)
    assert trace[0] == (1, 1, 0)  # an old Machine goes before any new one is created
    assert all(live <= 2 and ready >= 1 for live, ready, _ in trace)
    assert trace[-1] == (2, 2, 2)


def test_md_rollout_default_surges_and_never_loses_a_ready_machine() -> None:
    trace = simulate(3, 1, 0, 3)
    assert trace[0] == (4, 3, 1)  # a new Machine first
    assert all(live <= 4 and ready >= 3 for live, ready, _ in trace[1:])
    assert trace[-1] == (3, 3, 3)


def test_md_rollout_removes_unhealthy_old_machines_first() -> None:
    old = [machine("old-a"), machine("old-b", ready=False)]
    step = md_rollout_step(2, 0, 1, [], old, is_ready, by_name)
    assert [m["metadata"]["name"] for m in step.delete] == ["old-b"]


def test_plain_scaling_without_a_template_change() -> None:
    current = [machine("a"), machine("b"), machine("c")]
    assert md_rollout_step(2, 1, 0, current, [], is_ready, by_name).delete == [current[0]]
    assert md_rollout_step(5, 0, 1, current, [], is_ready, by_name).create == 2


def test_template_hash_follows_version_and_refs_only() -> None:
    md = {"spec": {"replicas": 2, "template": {"spec": {"version": "v1.30.2", "infrastructureRef": {"name": "t1"}}}}}
    same = {**md, "spec": {**md["spec"], "replicas": 5}}
    other = {"spec": {"template": {"spec": {"version": "v1.30.2", "infrastructureRef": {"name": "t2"}}}}}
    assert template_hash(md) == template_hash(same) != template_hash(other)


def test_outdated_by_version_or_template() -> None:
    kcp = {"spec": {"version": "v1.31.2", "machineTemplate": {"infrastructureRef": {"name": "cp-v2"}}}}
    infra_old = {"metadata": {"annotations": {"cluster.x-k8s.io/cloned-from-name": "cp-v1"}}}
    infra_new = {"metadata": {"annotations": {"cluster.x-k8s.io/cloned-from-name": "cp-v2"}}}
    assert kcp_outdated_reasons(machine("m", version="v1.31.2"), infra_new, kcp) == []
    assert kcp_outdated_reasons(machine("m", version="v1.30.2"), infra_new, kcp) == [
        "Version v1.30.2, v1.31.2 required"
    ]
    assert len(kcp_outdated_reasons(machine("m", version="v1.31.2"), infra_old, kcp)) == 1


def test_versions_lowest_and_counts() -> None:
    ms = [machine("a", version="v1.31.2"), machine("b", version="v1.30.10"), machine("c", version="v1.31.2")]
    assert lowest_version(dig_versions(ms)) == "v1.30.10"
    assert version_counts(ms) == [{"version": "v1.30.10", "replicas": 1}, {"version": "v1.31.2", "replicas": 2}]


def dig_versions(ms: list[Obj]) -> list[str]:
    return [m["spec"]["version"] for m in ms]


@pytest.mark.parametrize(
    ("ms_version", "cp_spec", "cp_status", "check"),
    [
        ("v1.30.2", "v1.30.2", None, "ControlPlaneIsStable"),
        ("v1.30.2", "v1.31.2", "v1.30.2", "ControlPlaneIsStable"),
        ("v1.31.2", "v1.30.2", "v1.30.2", "KubernetesVersionSkew"),
        ("v1.29.2", "v1.30.2", "v1.30.2", "KubeadmVersionSkew"),
        ("v1.30.5", "v1.30.2", "v1.30.2", None),
    ],
)
def test_machineset_preflight(ms_version: str, cp_spec: str, cp_status: str | None, check: str | None) -> None:
    cp: Obj = {"spec": {"version": cp_spec}, "status": {"version": cp_status} if cp_status else {}}
    failure = preflight_failure(ms_version, cp, "KubeadmControlPlane default/c1-control-plane")
    if check is None:
        assert failure is None
    else:
        assert failure is not None and f'"{check}" preflight check failed' in failure
