"""The e2e version-skew checker on hand-built timelines (one upgrade that keeps the policy, some that do not)."""

from __future__ import annotations

from typing import Any

from sandbox.hosts.state import HostTimelines
from tests.e2e.invariants import skew_violations


def on(at: int, version: str | None) -> dict[str, Any]:
    return {"at": f"2026-01-01T00:00:{at:02d}.000000+00:00", "active": version is not None, "version": version}


def host(host_id: str, kubelet: list[dict[str, Any]], apiserver: list[dict[str, Any]] | None = None) -> HostTimelines:
    return HostTimelines(host_id, kubelet, apiserver or [])


def single_control_plane_upgrade(worker_early: bool) -> dict[str, HostTimelines]:
    """cp-1 (v1.30) is replaced by the spare cp-2 (v1.31); then the worker moves to v1.31."""
    worker_upgrade = 5 if worker_early else 30
    return {
        "cp-1": host("cp-1", [on(1, "1.30.2-1.1"), on(20, None)], [on(1, "1.30.2-1.1"), on(20, None)]),
        "cp-2": host("cp-2", [on(10, "1.31.2-1.1")], [on(10, "1.31.2-1.1")]),
        "w-1": host("w-1", [on(2, "1.30.2-1.1"), on(worker_upgrade - 1, None), on(worker_upgrade, "1.31.2-1.1")]),
    }


def test_control_plane_first_keeps_the_skew_policy() -> None:
    # cp-2's kubelet is newer than cp-1's kube-apiserver, but at its own kube-apiserver's version: allowed.
    assert skew_violations(single_control_plane_upgrade(worker_early=False)) == []


def test_a_worker_upgraded_before_the_control_plane_is_reported_at_each_moment() -> None:
    problems = skew_violations(single_control_plane_upgrade(worker_early=True))
    assert problems and all(
        "kubelet v1.31.2 on w-1 is newer than the kube-apiserver v1.30.2 on cp-1" in p for p in problems
    )
    # From the worker's upgrade (t=5) until cp-1's kube-apiserver stops (t=20), every change is a moment.
    assert [p.split(": ")[0][-15:-13] for p in problems] == ["05", "10"]


def test_a_newer_patch_is_not_a_skew_but_a_lag_of_four_minors_is() -> None:
    patch = {
        "cp": host("cp", [on(1, "1.30.2-1.1")], [on(1, "1.30.2-1.1")]),
        "w": host("w", [on(2, "1.30.5-1.1")]),
    }
    assert skew_violations(patch) == []
    lagging = {
        "cp": host("cp", [on(1, "1.31.0-1.1")], [on(1, "1.31.0-1.1")]),
        "w": host("w", [on(2, "1.27.9-1.1")]),
    }
    (problem,) = skew_violations(lagging)
    assert "kubelet v1.27.9 on w is more than 3 minor versions older than the kube-apiserver v1.31.0 on cp" in problem
    # Three minors behind is still supported.
    lagging["w"] = host("w", [on(2, "1.28.0-1.1")])
    assert skew_violations(lagging) == []


def test_only_the_given_clusters_hosts_are_compared() -> None:
    two_clusters = {
        "a-cp": host("a-cp", [on(1, "1.30.2-1.1")], [on(1, "1.30.2-1.1")]),
        "b-w": host("b-w", [on(2, "1.31.2-1.1")]),
    }
    assert skew_violations(two_clusters)  # compared as one cluster, b's worker is too new for a's API server
    assert skew_violations(two_clusters, hosts={"a-cp"}) == []
