"""The object cache: real differences only, secrets reduced to metadata, and who a change concerns."""

from __future__ import annotations

from typing import Any

import pytest

from services.status_watcher import cache as cache_module
from services.status_watcher.cache import ObjectCache, StatusKey
from tests.unit.status_watcher import objects as o

C1 = StatusKey("cluster", "default", "c1")


def test_an_unchanged_resource_version_is_not_a_change() -> None:
    cache = ObjectCache()
    assert cache.upsert("Machine", o.machine("m1")) == {C1}
    assert cache.upsert("Machine", o.machine("m1")) == set()
    newer = o.machine("m1", phase="Provisioned")
    newer["metadata"]["resourceVersion"] = "2"
    assert cache.upsert("Machine", newer) == {C1}


def test_a_relist_applies_only_the_real_differences() -> None:
    cache = ObjectCache()
    cache.replace("Machine", "default", [o.machine("m1"), o.machine("m2")])
    assert cache.replace("Machine", "default", [o.machine("m1"), o.machine("m2")]) == set()
    # m2 went away while we were not watching; m1 unchanged.
    assert cache.replace("Machine", "default", [o.machine("m1")]) == {C1}
    assert [m["metadata"]["name"] for m in cache.view("default", "c1").machines] == ["m1"]
    # A relist of another namespace leaves this one alone.
    assert cache.replace("Machine", "other", []) == set()
    assert cache.count("Machine") == 1


def test_only_kubeconfig_secrets_are_kept_and_never_their_data() -> None:
    cache = ObjectCache()
    assert cache.upsert("Secret", o.kubeconfig_secret()) == {C1}
    kept = cache.get("Secret", "default", "c1-kubeconfig")
    assert kept is not None and "data" not in kept
    bootstrap = {**o.kubeconfig_secret(), "metadata": {"name": "c1-md-0-abcde", "namespace": "default"}}
    assert cache.upsert("Secret", bootstrap) == set()
    assert cache.view("default", "c1").kubeconfig_present
    assert cache.delete("Secret", o.kubeconfig_secret()) == {C1}
    assert not cache.view("default", "c1").kubeconfig_present


def test_a_kcp_is_found_through_the_cluster_before_it_is_owned() -> None:
    cache = ObjectCache()
    cache.upsert("Cluster", o.cluster())
    assert cache.upsert("KubeadmControlPlane", o.kcp()) == {C1}
    assert cache.view("default", "c1").control_plane is not None


def test_a_claimed_host_concerns_its_cluster_and_itself_and_release_concerns_both() -> None:
    cache = ObjectCache()
    host = o.byohost("host-1", cluster_name="c1")
    assert cache.upsert("ByoHost", host) == {C1, StatusKey("byohost", "default", "host-1")}
    freed = o.byohost("host-1", rv="2")
    assert cache.upsert("ByoHost", freed) == {C1, StatusKey("byohost", "default", "host-1")}
    assert cache.view("default", "c1").hosts == []


def test_a_resource_set_change_concerns_the_clusters_it_selects() -> None:
    cache = ObjectCache()
    cache.upsert("Cluster", o.cluster("c1"))
    cache.upsert("Cluster", o.cluster("c2"))
    assert cache.upsert("ClusterResourceSet", o.crs()) == {C1}


def test_status_keys_cover_every_cluster_and_host() -> None:
    cache = ObjectCache()
    cache.upsert("Cluster", o.cluster())
    cache.upsert("ByoHost", o.byohost("host-1"))
    cache.upsert("Machine", o.machine("m1"))
    assert cache.status_keys() == {C1, StatusKey("byohost", "default", "host-1")}


def _names(objs: list[dict[str, Any]]) -> list[str]:
    return [obj["metadata"]["name"] for obj in objs]


def test_a_cluster_sees_only_the_resource_sets_that_can_select_it() -> None:
    cache = ObjectCache()
    for i in (1, 2, 3):
        cache.upsert("Cluster", o.cluster(f"c{i}"))
        cache.upsert("ClusterResourceSet", o.crs(f"c{i}-crs", selector={"matchLabels": {"cni": f"c{i}-crs"}}))
    expressions = o.crs("any-cni", selector={"matchExpressions": [{"key": "cni", "operator": "Exists"}]})
    cache.upsert("ClusterResourceSet", expressions)
    assert _names(cache.view("default", "c2").resource_sets) == ["any-cni", "c2-crs"]
    # Relabelled: it leaves its old resource set and joins the new one's.
    relabelled = o.cluster("c2")
    relabelled["metadata"].update(labels={"cni": "c3-crs"}, resourceVersion="2")
    cache.upsert("Cluster", relabelled)
    assert _names(cache.view("default", "c2").resource_sets) == ["any-cni", "c3-crs"]
    c3_crs = o.crs("c3-crs", applied=False, selector={"matchLabels": {"cni": "c3-crs"}})
    c3_crs["metadata"]["resourceVersion"] = "2"
    assert cache.upsert("ClusterResourceSet", c3_crs) == {StatusKey("cluster", "default", n) for n in ("c2", "c3")}
    # A selector of expressions only still concerns every cluster it matches.
    changed = {**expressions, "metadata": {**expressions["metadata"], "resourceVersion": "2"}}
    assert cache.upsert("ClusterResourceSet", changed) == {StatusKey("cluster", "default", f"c{i}") for i in (1, 2, 3)}


def test_a_change_looks_only_at_the_objects_that_can_concern_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scanning every Cluster for each resource set or control plane change made the watch O(clusters²)."""
    cache = ObjectCache()
    for i in range(300):
        cache.upsert("Cluster", o.cluster(f"c{i}"))
        cache.upsert("ClusterResourceSet", o.crs(f"c{i}-crs", selector={"matchLabels": {"cni": f"c{i}-crs"}}))
    checked: list[str] = []
    real = cache_module.selector_matches

    def counting(selector: Any, have: Any) -> bool:
        checked.append(str(have))
        return real(selector, have)

    monkeypatch.setattr(cache_module, "selector_matches", counting)
    newer = o.crs("c7-crs", applied=False, selector={"matchLabels": {"cni": "c7-crs"}})
    newer["metadata"]["resourceVersion"] = "2"
    assert cache.upsert("ClusterResourceSet", newer) == {StatusKey("cluster", "default", "c7")}
    assert len(checked) == 2  # the old and the new selector, each against the one cluster with its label
    assert _names(cache.view("default", "c7").resource_sets) == ["c7-crs"]
    assert cache.upsert("KubeadmControlPlane", o.kcp("c9-cp")) == {StatusKey("cluster", "default", "c9")}


def test_deleted_clusters_and_resource_sets_leave_no_index_entries() -> None:
    cache = ObjectCache()
    cache.upsert("Cluster", o.cluster("c1"))
    cache.upsert("ClusterResourceSet", o.crs("c1-crs"))
    cache.upsert("ClusterResourceSet", o.crs("x", selector={"matchExpressions": [{"key": "a", "operator": "Exists"}]}))
    cache.delete("Cluster", o.cluster("c1"))
    cache.delete("ClusterResourceSet", o.crs("c1-crs"))
    cache.delete("ClusterResourceSet", o.crs("x"))
    assert not cache._clusters_by_label and not cache._clusters_by_cp
    assert not cache._crs_by_label and not any(cache._crs_unlabelled.values())
