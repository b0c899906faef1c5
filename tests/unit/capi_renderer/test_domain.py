"""Pure helpers: options validation, naming, apply order, selectors, diffs between renders."""

from __future__ import annotations

import pydantic
import pytest

from services.capi_renderer.diffs import changed_objects, diff
from services.capi_renderer.domain import (
    APPLY_ORDER,
    ClusterNames,
    RenderOptions,
    apply_order,
    control_plane_max_surge,
    derived_objects,
    uses_super_admin,
)
from services.capi_renderer.render import render_cluster
from services.capi_renderer.selectors import host_selector, pinned_hosts, selector_matches
from shared.objects import HOST_ID_LABEL, K8S_VERSION_LABEL

from .conftest import make_options, make_spec


def test_apply_order_puts_payloads_first_and_the_cluster_last() -> None:
    objects = render_cluster(make_spec(), make_options())
    kinds = [o["kind"] for o in apply_order(objects)]
    assert kinds == [
        "ConfigMap",
        "ByoCluster",
        "ByoMachineTemplate",
        "ByoMachineTemplate",
        "KubeadmConfigTemplate",
        "KubeadmControlPlane",
        "MachineDeployment",
        "ClusterResourceSet",
        "Cluster",
    ]
    assert APPLY_ORDER[-1] == "Cluster"
    odd = apply_order([{"kind": "Cluster"}, {"kind": "Something"}, {"kind": "ConfigMap"}])
    assert [o["kind"] for o in odd] == ["ConfigMap", "Something", "Cluster"]


def test_derived_objects_cover_every_rendered_object() -> None:
    for core in ("v1beta1", "v1beta2"):
        rendered = {
            (o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in render_cluster(make_spec(), make_options(core))
        }
        derived = {
            (r.api_version, r.kind, r.name)
            for r in derived_objects("edge1", "o2ims", core, versions=("v1.30.2",))  # type: ignore[arg-type]
        }
        assert derived == rendered


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({}, {}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]}, {"a": "2"}, True),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}, {"a": ""}, False),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": "x"}, True),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": "x"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}, {"a": "x"}, False),
    ],
)
def test_selector_matches(selector: dict, labels: dict, expected: bool) -> None:
    assert selector_matches(selector, labels) is expected


def test_host_selector_pins_exactly() -> None:
    v = "v1.31.2"
    assert pinned_hosts(host_selector(["b", "a"], v), ["a", "b", "c"], v) == ({"a", "b"}, False)
    assert pinned_hosts(host_selector([], v), ["a", "b"], v) == (set(), False)
    assert pinned_hosts({}, ["a"], v) == ({"a"}, True)
    assert not selector_matches(host_selector([], v), {HOST_ID_LABEL: "a", K8S_VERSION_LABEL: v})
    # Without the version the selector takes a host of any version: reported as taking others.
    assert pinned_hosts(host_selector(["a"]), ["a"], v) == ({"a"}, True)


def test_a_host_at_another_version_matches_no_template() -> None:
    selector = host_selector(["a"], "v1.31.2")
    assert selector_matches(selector, {HOST_ID_LABEL: "a", K8S_VERSION_LABEL: "v1.31.2"})
    assert not selector_matches(selector, {HOST_ID_LABEL: "a", K8S_VERSION_LABEL: "v1.30.2"})
    assert not selector_matches(selector, {HOST_ID_LABEL: "a"})


def test_versioned_template_names_and_control_plane_surge() -> None:
    names = ClusterNames("edge1")
    assert names.control_plane_template("v1.31.2") == "edge1-control-plane-v1-31-2"
    assert names.workers_template("v1.30.10") == "edge1-md-0-v1-30-10"
    assert [control_plane_max_surge(n) for n in (1, 3, 5)] == [1, 0, 0]


def test_super_admin_threshold() -> None:
    assert not uses_super_admin("v1.28.15")
    assert uses_super_admin("1.29.0")
    assert uses_super_admin("v1.36.1")


def test_diff_reports_paths() -> None:
    assert diff({"a": {"b": [1, 2]}, "c": 1}, {"a": {"b": [1, 3]}, "d": 1}) == ["a.b[1]", "c", "d"]
    assert diff([1], [1, 2], "x") == ["x"]
    assert diff({"a": 1}, {"a": 1}) == []


def test_scaling_workers_changes_only_the_md_replicas_and_worker_selector() -> None:
    spec = make_spec(1, 4)
    smaller = spec.model_copy(update={"workers": spec.workers[:2]})
    changes = changed_objects(render_cluster(smaller, make_options()), render_cluster(spec, make_options()))
    assert changes == {
        "ByoMachineTemplate/edge1-md-0-v1-30-2": ["spec.template.spec.selector.matchExpressions[0].values"],
        "MachineDeployment/edge1-md-0": ["spec.replicas"],
    }


@pytest.mark.parametrize(
    "bad",
    [
        {"extra_labels": {"ok": "has space"}},
        {"extra_labels": {"-bad": "x"}},
        {"extra_labels": {"a": "b\nc: d"}},
        {"kube_vip_image": "image with space"},
        {"service_domain": "Not_A_Domain"},
        {"cni_manifests": {"Bad Name": "/x"}},
        {"vip_lease_seconds": (2, 10, 15)},
        {"controller_manager_args": {"BAD ARG": "1"}},
        {"ignore_preflight_errors": ("ok", "bad item")},
        {"control_plane_port": 0},
        {"unknown": 1},
    ],
)
def test_render_options_refuse_bad_values(bad: dict) -> None:
    with pytest.raises(pydantic.ValidationError):
        RenderOptions(**bad)


def test_render_options_defaults() -> None:
    opts = RenderOptions()
    assert opts.core_api_version == "v1beta1"
    assert opts.kube_vip_image.startswith("ghcr.io/kube-vip/kube-vip:v")
    assert opts.control_plane_port == 6443
