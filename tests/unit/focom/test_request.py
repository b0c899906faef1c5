"""Request validation and resolution: modes and operations, templates, scale worker choices, every error at its path."""

from __future__ import annotations

from typing import Any

import pytest

from services.focom import request as rq
from shared.catalog import load_catalog, parameter_path
from shared.errors import InputError
from shared.inventory import Inventory, InventoryError, validate_inventory
from shared.payloads import FocomRequest, HostSelection
from tests.unit.focom.conftest import valid_inventory

CATALOG = load_catalog()
WINDOW = ((1, 29), (1, 36))


def inv(**changes: Any) -> Inventory:
    data = valid_inventory()
    data.update(changes)
    return validate_inventory(data)


def create(req: FocomRequest, inventory: Inventory | None = None, **kw: Any) -> list[Any]:
    rq.check_shape(req, max_clusters=kw.get("max_clusters", 100))
    wanted = rq.create_targets(
        req,
        inventory or inv(),
        CATALOG,
        window=WINDOW,
        vip_pool=kw.get("vip_pool", False),
        max_clusters=kw.get("max_clusters", 100),
    )
    return rq.create_specs(req, wanted, default_cni="calico", vips=kw.get("vips", {}))


def refused(fn: Any, *args: Any, **kw: Any) -> set[tuple[str, str]]:
    # A request's own problems (RequestError) or its inventory's (InventoryError): both list them all.
    with pytest.raises((rq.RequestError, InventoryError)) as err:
        fn(*args, **kw)
    assert isinstance(err.value, rq.RequestError | InventoryError)
    return {(p.path, p.rule) for p in err.value.problems}


def template_params(**changes: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "clusterName": "lab",
        "k8sVersion": "1.31.2",
        "hosts": {"masters": [{"hostId": "h7"}], "workers": [{"hostId": "h8"}]},
        "controlPlaneEndpoint": "10.0.1.9",
    }
    params.update(changes)
    return params


def test_all_clusters_and_cluster_names() -> None:
    assert [s.name for s in create(FocomRequest(name="a", allClusters=True))] == ["smo", "ran"]
    specs = create(FocomRequest(name="b", clusterNames=("ran",)))
    assert [s.name for s in specs] == ["ran"] and [h.host_id for h in specs[0].control_plane] == ["h3", "h4", "h5"]


def test_template_create_resolves_inventory_hosts() -> None:
    (spec,) = create(
        FocomRequest(
            name="t",
            templateName="byoh-workload-cluster",
            templateVersion="v1.0.0",
            templateParameters=template_params(),
        )
    )
    assert spec.name == "lab" and spec.vip == "10.0.1.9" and spec.workers[0].host_ip == "10.0.0.8"
    # Without a version the newest template is used.
    assert (
        create(FocomRequest(name="t", templateName="byoh-workload-cluster", templateParameters=template_params()))[
            0
        ].k8s_version
        == "v1.31.2"
    )


SHAPE: list[tuple[str, dict[str, Any], str, str]] = [
    ("name syntax", {"name": "Bad.Name", "allClusters": True}, "$.name", "dns1123"),
    ("no mode", {"name": "a"}, "$", "one-mode"),
    ("two modes", {"name": "a", "allClusters": True, "clusterNames": ("smo",)}, "$", "one-mode"),
    ("allClusters false", {"name": "a", "allClusters": False}, "$.allClusters", "one-mode"),
    ("empty names", {"name": "a", "clusterNames": ()}, "$.clusterNames", "min-items"),
    ("name twice", {"name": "a", "clusterNames": ("smo", "smo")}, "$.clusterNames[1]", "unique"),
    ("cluster name syntax", {"name": "a", "clusterNames": ("smo", "x;y")}, "$.clusterNames[1]", "dns1123"),
    (
        "template without params",
        {"name": "a", "templateName": "byoh-workload-cluster"},
        "$.templateParameters",
        "required",
    ),
    ("params without name", {"name": "a", "templateParameters": {}}, "$.templateName", "required"),
    (
        "workers outside scale",
        {"name": "a", "allClusters": True, "workers": (HostSelection(hostId="h1"),)},
        "$.workers",
        "scale-only",
    ),
    (
        "count outside scale",
        {"name": "a", "allClusters": True, "targetWorkerCount": 2},
        "$.targetWorkerCount",
        "scale-only",
    ),
    (
        "both workers and count",
        {
            "name": "a",
            "operation": "scale",
            "allClusters": True,
            "targetWorkerCount": 2,
            "workers": (HostSelection(hostId="h1"),),
        },
        "$.targetWorkerCount",
        "one-of",
    ),
    (
        "worker id syntax",
        {
            "name": "a",
            "operation": "scale",
            "clusterNames": ("smo",),
            "workers": (HostSelection.model_construct(hostId="h 1"),),
        },
        "$.workers[0].hostId",
        "label-value",
    ),
]


@pytest.mark.parametrize(("case", "fields", "path", "rule"), SHAPE, ids=[s[0] for s in SHAPE])
def test_shape_rules(case: str, fields: dict[str, Any], path: str, rule: str) -> None:
    # model_construct: the payload itself refuses bad names; focom's own rules are checked behind it.
    assert (path, rule) in refused(rq.check_shape, FocomRequest.model_construct(**fields), max_clusters=10)


def test_too_many_clusters() -> None:
    req = FocomRequest(name="a", clusterNames=tuple(f"c{i}" for i in range(11)))
    assert ("$.clusterNames", "max-items") in refused(rq.check_shape, req, max_clusters=10)
    # The inventory's problem, at the inventory path ``o2ctl validate`` reports too.
    assert ("$.clusters", "max-items") in refused(create, FocomRequest(name="a", allClusters=True), max_clusters=1)


def test_unknown_cluster_and_no_clusters() -> None:
    assert ("$.clusterNames[1]", "cluster-exists") in refused(create, FocomRequest(name="a", clusterNames=("smo", "x")))
    empty = inv(clusters=[])
    assert ("$.clusters", "no-clusters") in refused(create, FocomRequest(name="a", allClusters=True), empty)


def test_single_control_plane_without_vip_uses_its_host_address() -> None:
    data = valid_inventory()
    del data["clusters"][0]["control_plane_endpoint"]
    (smo,) = create(FocomRequest(name="a", clusterNames=("smo",)), validate_inventory(data))
    assert smo.vip is None and len(smo.control_plane) == 1 and smo.endpoint == smo.control_plane[0].host_ip


def test_ha_control_plane_without_vip_takes_the_pool_vip() -> None:
    data = valid_inventory()
    del data["clusters"][1]["control_plane_endpoint"]
    with pytest.raises(InventoryError) as err:  # no pool: the inventory itself is refused
        validate_inventory(data)
    assert ("$.clusters[1].control_plane_endpoint", "vip-required") in {(p.path, p.rule) for p in err.value.problems}
    pooled = validate_inventory(data, vip_pool=True)
    wanted = rq.create_targets(
        FocomRequest(name="a", clusterNames=("ran",)), pooled, CATALOG, window=WINDOW, vip_pool=True, max_clusters=10
    )
    assert [w.needs_vip for w in wanted] == [True]
    assert wanted[0].vip_path == "inventory $.clusters[1].control_plane_endpoint"
    (ran,) = rq.create_specs(
        FocomRequest(name="a", clusterNames=("ran",)), wanted, default_cni=None, vips={"ran": "10.0.9.1"}
    )
    assert ran.vip == ran.endpoint == "10.0.9.1"
    # Should the allocation be missing, the spec is refused at the same path, never built without a VIP.
    problems = refused(
        rq.create_specs, FocomRequest(name="a", clusterNames=("ran",)), wanted, default_cni=None, vips={}
    )
    assert problems == {("inventory $.clusters[1].control_plane_endpoint", "vip-required")}


TEMPLATE: list[tuple[str, dict[str, Any], str, str]] = [
    ("unknown parameter", template_params(color="red"), "$.templateParameters", "unknown-field"),
    (
        "missing version",
        {k: v for k, v in template_params().items() if k != "k8sVersion"},
        "$.templateParameters",
        "required",
    ),
    ("bad cluster name", template_params(clusterName="Lab"), "$.templateParameters.clusterName", "pattern"),
    (
        "host id type",
        template_params(hosts={"masters": [{"hostId": 7}]}),
        "$.templateParameters.hosts.masters[0].hostId",
        "type",
    ),
    (
        "unknown host",
        template_params(hosts={"masters": [{"hostId": "h99"}]}),
        "$.templateParameters.hosts.masters[0].hostId",
        "host-exists",
    ),
    (
        "even control plane",
        template_params(hosts={"masters": [{"hostId": "h7"}, {"hostId": "h8"}]}),
        "$.templateParameters.hosts.masters",
        "cp-count",
    ),
    ("version window", template_params(k8sVersion="v1.20.1"), "$.templateParameters.k8sVersion", "k8s-window"),
    (
        "vip is a host",
        template_params(controlPlaneEndpoint="10.0.0.1"),
        "$.templateParameters.controlPlaneEndpoint",
        "vip-not-host",
    ),
    ("bad cidr", template_params(podCidr="10.0.0.0/33"), "$.templateParameters.podCidr", "cidr"),
    (
        "vip missing",
        {
            **{k: v for k, v in template_params().items() if k != "controlPlaneEndpoint"},
            "hosts": {"masters": [{"hostId": "h7"}, {"hostId": "h8"}, {"hostId": "h9"}]},
        },
        "$.templateParameters.controlPlaneEndpoint",
        "vip-required",
    ),
]


@pytest.mark.parametrize(("case", "params", "path", "rule"), TEMPLATE, ids=[t[0] for t in TEMPLATE])
def test_template_parameters_rules(case: str, params: dict[str, Any], path: str, rule: str) -> None:
    req = FocomRequest(name="t", templateName="byoh-workload-cluster", templateParameters=params)
    assert (path, rule) in refused(create, req)


def test_unknown_template_or_version() -> None:
    with pytest.raises(InputError, match="template-exists") as err:
        create(FocomRequest(name="t", templateName="nope", templateParameters=template_params()))
    assert err.value.path == "$.templateName"
    with pytest.raises(InputError) as err:
        create(
            FocomRequest(
                name="t",
                templateName="byoh-workload-cluster",
                templateVersion="v9.0.0",
                templateParameters=template_params(),
            )
        )
    assert err.value.path == "$.templateVersion"


def test_parameter_paths() -> None:
    assert parameter_path("$.clusters[0].cluster_workers[2].host_id") == "$.templateParameters.hosts.workers[2].hostId"
    assert parameter_path("$.k8s_version") == "$.templateParameters.k8sVersion"


# ── scale / delete ─────────────────────────────────────────────────────────────────────


CHILDREN = {"smo": "present", "ran": "present", "old": "absent"}


def test_targets() -> None:
    scale = FocomRequest(name="a", operation="scale", allClusters=True, targetWorkerCount=1)
    assert rq.target_clusters(scale, CHILDREN) == ["ran", "smo"]
    delete = FocomRequest(name="a", operation="delete", allClusters=True)
    assert rq.target_clusters(delete, CHILDREN) == ["old", "ran", "smo"]
    assert ("$.clusterNames[0]", "cluster-exists") in refused(
        rq.target_clusters, FocomRequest(name="a", operation="delete", clusterNames=("edge",)), CHILDREN
    )
    assert ("$.clusterNames[0]", "cluster-deleting") in refused(
        rq.target_clusters, FocomRequest(name="a", operation="scale", clusterNames=("old",)), CHILDREN
    )
    tmpl = FocomRequest(name="a", operation="delete", templateName="x", templateParameters={"clusterName": "smo"})
    assert rq.target_clusters(tmpl, CHILDREN) == ["smo"]
    no_name = FocomRequest(name="a", operation="delete", templateName="x", templateParameters={})
    assert ("$.templateParameters.clusterName", "required") in refused(rq.target_clusters, no_name, CHILDREN)


def test_scale_with_worker_list() -> None:
    inventory = inv()
    current = inventory.cluster_spec(inventory.clusters[0])
    req = FocomRequest(
        name="a",
        operation="scale",
        clusterNames=("smo",),
        workers=(HostSelection(hostId="h2"), HostSelection(hostId="h8")),
    )
    ids, where = rq.wanted_workers(req, "smo", inventory) or ([], "")
    new = rq.resolve_workers(req, current, ids, where, inventory)
    assert [h.host_id for h in new.workers] == ["h2", "h8"] and new.control_plane == current.control_plane
    bad = FocomRequest(
        name="a",
        operation="scale",
        clusterNames=("smo",),
        workers=(HostSelection(hostId="h1"), HostSelection(hostId="h6"), HostSelection(hostId="zz")),
    )
    ids, where = rq.wanted_workers(bad, "smo", inventory) or ([], "")
    assert refused(rq.resolve_workers, bad, current, ids, where, inventory) == {
        ("$.workers[0].hostId", "host-in-two-roles"),
        ("$.workers[1].hostId", "host-in-two-clusters"),
        ("$.workers[2].hostId", "host-exists"),
    }


def test_scale_to_the_inventory_worker_list() -> None:
    data = valid_inventory()
    data["clusters"][0]["cluster_workers"].append({"host_id": "h9"})
    inventory = validate_inventory(data)
    current = inv().cluster_spec(inv().clusters[0])
    req = FocomRequest(name="a", operation="scale", clusterNames=("smo",))
    ids, where = rq.wanted_workers(req, "smo", inventory) or ([], "")
    assert ids == ["h2", "h9"] and where == "inventory $.clusters[0].cluster_workers"
    assert [h.host_id for h in rq.resolve_workers(req, current, ids, where, inventory).workers] == ["h2", "h9"]


def test_scale_to_a_count_picks_free_hosts_in_order() -> None:
    inventory = inv()
    current = inventory.cluster_spec(inventory.clusters[0])
    free = rq.free_candidates(current, inventory)
    assert free == ["h7", "h8", "h9"]  # hosts of no inventory cluster, sorted
    req = FocomRequest(name="a", operation="scale", clusterNames=("smo",), targetWorkerCount=3)
    assert rq.wanted_workers(req, "smo", inventory) is None
    assert [h.host_id for h in rq.resize(req, current, 3, free, inventory).workers] == ["h2", "h7", "h8"]
    assert [h.host_id for h in rq.resize(req, current, 0, free, inventory).workers] == []
    assert ("$.targetWorkerCount", "capacity") in refused(rq.resize, req, current, 9, free, inventory)
