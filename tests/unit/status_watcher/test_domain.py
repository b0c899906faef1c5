"""The pure reducer, requirement by requirement, on hand-built objects in both CAPI status shapes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from services.status_watcher.cache import ObjectCache
from services.status_watcher.domain import (
    LastState,
    ProbeResult,
    cluster_transitions,
    needs_probe,
    selector_matches,
    summarize_byohost,
    summarize_cluster,
)
from shared.payloads import ClusterSummary
from tests.unit.status_watcher import objects as o


def summary(objs: list[dict[str, Any]], **view: Any) -> ClusterSummary:
    cache = ObjectCache()
    for item in objs:
        cache.upsert(item["kind"], item)
    return summarize_cluster(replace(cache.view("default", "c1"), **view))


def swap(objs: list[dict[str, Any]], new: dict[str, Any]) -> list[dict[str, Any]]:
    name = new["metadata"]["name"]
    return [new if (x["kind"], x["metadata"]["name"]) == (new["kind"], name) else x for x in objs] + (
        [] if any((x["kind"], x["metadata"]["name"]) == (new["kind"], name) for x in objs) else [new]
    )


@pytest.mark.parametrize("v2", [False, True], ids=["v1beta1", "v1beta2"])
def test_a_healthy_cluster_is_ready(v2: bool) -> None:
    s = summary(o.healthy(v2))
    assert s.ready and s.failure is None and s.waiting_for is None
    assert s.machines == {"c1-cp-a": "Running", "c1-md-0-a": "Running", "c1-md-0-b": "Running"}


@pytest.mark.parametrize("v2", [False, True], ids=["v1beta1", "v1beta2"])
def test_provisioned_with_an_uninitialized_control_plane_is_not_ready(v2: bool) -> None:
    objs = swap(swap(o.healthy(v2), o.cluster(initialized=False, v2=v2)), o.kcp(initialized=False, v2=v2))
    s = summary(objs)
    assert s.phase == "Provisioned" and not s.control_plane_initialized
    assert not s.ready and s.waiting_for == "control plane not initialized"


@pytest.mark.parametrize(
    ("change", "waiting"),
    [
        (o.kcp(replicas=3, ready=1), "control plane ready 1/3"),
        (o.kcp(replicas=1, ready=1, current=2), "control plane ready 1/1"),
        (o.md(replicas=2, ready=1), "workers ready 1/2"),
        (o.md(replicas=3, ready=3), "machines 3/4"),
        (o.machine("c1-md-0-b", phase="Provisioned", node=False), "machines not Running with a node: c1-md-0-b"),
        (o.machine("c1-md-0-b", phase="Running", node=False), "machines not Running with a node: c1-md-0-b"),
        (o.crs(applied=False), "CNI ClusterResourceSet not applied"),
        (o.deleting(o.cluster()), "cluster is being deleted"),
        (o.deleting(o.machine("c1-md-0-b")), "machines not Running with a node: c1-md-0-b"),
    ],
)
def test_each_unmet_requirement_keeps_the_cluster_not_ready(change: dict[str, Any], waiting: str) -> None:
    s = summary(swap(o.healthy(), change))
    assert not s.ready and s.failure is None
    assert s.waiting_for == waiting


def test_the_kubeconfig_secret_is_required() -> None:
    s = summary([x for x in o.healthy() if x["kind"] != "Secret"])
    assert not s.ready and not s.kubeconfig_present and s.waiting_for == "kubeconfig Secret missing"


def test_a_cluster_without_a_matching_resource_set_needs_no_cni() -> None:
    s = summary(swap(o.healthy(), o.crs(selector={"matchLabels": {"cni": "someone-else"}})))
    assert s.ready and not s.cni_applied
    # An empty selector matches no cluster (ClusterResourceSet semantics).
    assert summary(swap(o.healthy(), o.crs(applied=False, selector={}))).ready


def test_a_missing_kcp_is_not_ready() -> None:
    s = summary([x for x in o.healthy() if x["kind"] != "KubeadmControlPlane"])
    assert not s.ready and s.waiting_for == "KubeadmControlPlane not observed"


def test_an_absent_cluster_is_a_tombstone() -> None:
    s = summary([])
    assert not s.exists and not s.ready


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            o.machine("c1-md-0-a", phase="Failed", failureReason="CreateError", failureMessage="no capacity"),
            "CreateError on Machine c1-md-0-a: no capacity",
        ),
        (
            o.machine("c1-md-0-a", phase="Running", deprecated={"v1beta1": {"failureReason": "UpdateError"}}),
            "UpdateError on Machine c1-md-0-a",
        ),
        (
            o.kcp(failureReason="InvalidConfiguration", failureMessage="bad etcd"),
            "InvalidConfiguration on KubeadmControlPlane c1-cp: bad etcd",
        ),
        (o.cluster(phase="Failed"), "Failed on Cluster c1"),
        (
            o.byohost("host-9", reason="CloudInitExecutionFailed", cluster_name="c1", message="kubeadm join: exit 1"),
            "CloudInitExecutionFailed on ByoHost host-9: kubeadm join: exit 1",
        ),
    ],
)
def test_failures_name_the_object_and_the_reason(change: dict[str, Any], reason: str) -> None:
    s = summary(swap(o.healthy(), change))
    assert not s.ready and s.failure == reason and s.waiting_for is None


def test_a_failed_host_claimed_by_another_cluster_is_not_ours() -> None:
    s = summary([*o.healthy(), o.byohost("host-9", reason="CloudInitExecutionFailed", cluster_name="c2")])
    assert s.ready and s.failure is None


def test_a_host_claimed_across_namespaces_counts_for_the_byomachine_namespace() -> None:
    host = o.byohost("host-9", reason="CloudInitExecutionFailed", cluster_name="c1", ref_ns="default")
    host["metadata"]["namespace"] = "hosts"
    assert summary([*o.healthy(), host]).failure == "CloudInitExecutionFailed on ByoHost host-9"


def test_the_machine_mirror_of_a_bootstrap_failure_counts_when_the_host_is_not_seen() -> None:
    m = o.machine(
        "c1-md-0-b",
        phase="Provisioning",
        node=False,
        conditions=[
            {
                "type": "InfrastructureReady",
                "status": "False",
                "reason": "CloudInitExecutionFailed",
                "message": "kubeadm failed",
                "severity": "Error",
            }
        ],
    )
    assert summary(swap(o.healthy(), m)).failure == "CloudInitExecutionFailed on Machine c1-md-0-b: kubeadm failed"


def test_the_probe_decides_last_when_enabled() -> None:
    assert summary(o.healthy(), probe_enabled=True).waiting_for == "workload probe pending"
    bad = summary(o.healthy(), probe_enabled=True, probe=ProbeResult(False, "nodes not Ready: c1-md-0-a"))
    assert not bad.ready and bad.waiting_for == "workload probe: nodes not Ready: c1-md-0-a"
    assert summary(o.healthy(), probe_enabled=True, probe=ProbeResult(True, "3 nodes Ready")).ready
    cache = ObjectCache()
    for item in o.healthy():
        cache.upsert(item["kind"], item)
    assert needs_probe(cache.view("default", "c1", probe_enabled=True))
    assert not needs_probe(cache.view("default", "c1", probe_enabled=False))


def test_transitions_fire_on_edges_only() -> None:
    ready = summary(o.healthy())
    failed = summary(swap(o.healthy(), o.cluster(phase="Failed")))
    assert [t.type for t in cluster_transitions(None, ready)] == ["cluster.ready"]
    assert cluster_transitions(LastState(ready=True), ready) == []
    assert [t.type for t in cluster_transitions(LastState(ready=True), failed)] == ["cluster.failed"]
    assert cluster_transitions(LastState(failed=True), failed) == []


def test_byohost_states() -> None:
    free = summarize_byohost("default", "host-1", o.byohost("host-1"))
    assert (free.registered, free.free, free.claimed_by, free.host_id) == (True, True, None, "h1")
    claimed = summarize_byohost("default", "host-1", o.byohost("host-1", reason=None, status="True", cluster_name="c1"))
    assert (claimed.free, claimed.claimed_by, claimed.bootstrap_condition) == (False, "c1", "True")
    failed = summarize_byohost(
        "default", "host-1", o.byohost("host-1", reason="CloudInitExecutionFailed", cluster_name="c1", message="boom")
    )
    assert failed.failure == "CloudInitExecutionFailed on ByoHost host-1: boom" and not failed.free
    leaving = o.byohost("host-1", annotations={"byoh.infrastructure.cluster.x-k8s.io/unregistering": ""})
    assert not summarize_byohost("default", "host-1", leaving).free
    fresh = o.byohost("host-1", reason=None)
    assert summarize_byohost("default", "host-1", fresh).registered
    assert not summarize_byohost("default", "host-1", fresh).free
    gone = summarize_byohost("default", "host-1", None)
    assert not gone.exists and not gone.registered


def test_selector_semantics() -> None:
    have = {"a": "1", "b": "2"}
    assert selector_matches({"matchLabels": {"a": "1"}}, have)
    assert not selector_matches({"matchLabels": {"a": "2"}}, have)
    assert selector_matches({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "3"]}]}, have)
    assert not selector_matches({"matchExpressions": [{"key": "b", "operator": "NotIn", "values": ["2"]}]}, have)
    assert selector_matches({"matchExpressions": [{"key": "c", "operator": "DoesNotExist"}]}, have)
    assert not selector_matches({"matchExpressions": [{"key": "c", "operator": "Exists"}]}, have)
    assert not selector_matches({}, have) and not selector_matches(None, have)


def test_probe_judgement() -> None:
    from services.status_watcher.probe import judge

    def node(name: str, ready: bool) -> dict[str, Any]:
        return {"metadata": {"name": name}, "status": {"conditions": [{"type": "Ready", "status": str(ready)}]}}

    assert judge([node("a", True), node("b", True)], frozenset({"a", "b"})).ok
    assert judge([node("a", True)], frozenset({"a", "b"})).detail == "nodes missing: b"
    assert judge([node("a", True), node("b", False)], frozenset({"a"})).detail == "nodes not Ready: b"
    assert not judge([], frozenset()).ok


def _versioned(objs: list[dict[str, Any]], versions: dict[str, str], cp: str, workers: str) -> list[dict[str, Any]]:
    out = []
    for original in objs:
        item = {**original, "spec": dict(original.get("spec") or {})}
        name = item["metadata"]["name"]
        if item["kind"] == "Machine" and name in versions:
            item["spec"]["version"] = versions[name]
        elif item["kind"] == "KubeadmControlPlane":
            item["spec"]["version"] = cp
        elif item["kind"] == "MachineDeployment":
            item["spec"]["template"] = {"spec": {"version": workers}}
        out.append(item)
    return out


@pytest.mark.parametrize("v2", [False, True], ids=["v1beta1", "v1beta2"])
def test_versions_say_how_far_a_rollout_is(v2: bool) -> None:
    # The control plane was rolled to v1.31.1; one worker still runs v1.30.2.
    objs = _versioned(
        o.healthy(v2),
        {"c1-cp-a": "v1.31.1", "c1-md-0-a": "v1.31.1", "c1-md-0-b": "v1.30.2"},
        cp="v1.31.1",
        workers="v1.31.1",
    )
    s = summary(objs)
    assert (s.control_plane_version, s.control_plane_updated) == ("v1.31.1", 1)
    assert (s.workers_version, s.workers_updated) == ("v1.31.1", 1)
    assert s.machine_versions == {"c1-cp-a": "v1.31.1", "c1-md-0-a": "v1.31.1", "c1-md-0-b": "v1.30.2"}
    # A Machine being deleted (or not yet running) does not count as updated.
    gone = swap(objs, o.deleting(next(x for x in objs if x["metadata"]["name"] == "c1-md-0-a")))
    assert summary(gone).workers_updated == 0


def test_a_byohost_carries_its_version_label_only_when_well_formed() -> None:
    host = o.byohost("host-1")
    host["metadata"]["labels"]["o2ims.oran.org/k8s-version"] = "v1.30.2"
    assert summarize_byohost("default", "host-1", host).k8s_version == "v1.30.2"
    for odd in ("1.30.2", "v1.30", "latest"):
        host["metadata"]["labels"]["o2ims.oran.org/k8s-version"] = odd
        assert summarize_byohost("default", "host-1", host).k8s_version is None
