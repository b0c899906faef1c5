"""Validation: every golden-style render passes; each kind of broken render is refused with its path and rule."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from services.capi_renderer.domain import RenderOptions
from services.capi_renderer.render import render_cluster
from services.capi_renderer.validate import RenderIssue, render_and_validate, validate_render
from shared.crd_schema import CrdSchemas
from shared.errors import InputError
from shared.models import ClusterSpec

from .conftest import make_options, make_spec

Objects = list[dict[str, Any]]


def _find(objects: Objects, kind: str, name: str | None = None) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name))


def _issues(
    mutate: Callable[[Objects], None],
    *,
    spec: ClusterSpec | None = None,
    core: str = "v1beta1",
    schemas: CrdSchemas | None = None,
) -> list[RenderIssue]:
    spec = spec or make_spec()
    options = make_options(core)
    objects = copy.deepcopy(render_cluster(spec, options))
    assert validate_render(objects, spec, schemas, options) == []
    mutate(objects)
    return validate_render(objects, spec, schemas, options)


def _has(issues: list[RenderIssue], obj: str, path: str, rule: str) -> bool:
    return any(i.object == obj and i.path == path and i.rule == rule for i in issues)


def test_valid_renders_have_no_issues(options: RenderOptions, schemas: CrdSchemas) -> None:
    for spec in (make_spec(), make_spec(3, 5, "1.34.1"), make_spec(1, 0, "1.26.0"), make_spec(cni=None)):
        assert validate_render(render_cluster(spec, options), spec, schemas, options) == []


# ── schema (strict) ─────────────────────────────────────────────────────────────────────


def test_wrong_type_is_rejected_with_path(schemas: CrdSchemas) -> None:
    def mutate(objs: Objects) -> None:
        _find(objs, "KubeadmControlPlane")["spec"]["replicas"] = "two"

    issues = _issues(mutate, schemas=schemas)
    assert _has(issues, "KubeadmControlPlane/edge1-control-plane", "spec.replicas", "schema:type")
    assert _has(issues, "KubeadmControlPlane/edge1-control-plane", "spec.replicas", "replicas")


@pytest.mark.parametrize("core", ["v1beta1", "v1beta2"])
def test_missing_required_field_is_rejected(core: str, schemas: CrdSchemas) -> None:
    def mutate(objs: Objects) -> None:
        del _find(objs, "MachineDeployment")["spec"]["clusterName"]

    issues = _issues(mutate, core=core, schemas=schemas)
    assert _has(issues, "MachineDeployment/edge1-md-0", "spec.clusterName", "schema:required")


def test_unknown_field_is_rejected(schemas: CrdSchemas) -> None:
    def mutate(objs: Objects) -> None:
        _find(objs, "ByoCluster")["spec"]["controlPlaneEndpoint"]["hostname"] = "x"

    issues = _issues(mutate, schemas=schemas)
    assert _has(issues, "ByoCluster/edge1", "spec.controlPlaneEndpoint.hostname", "schema:unknown-field")


def test_v1beta1_map_args_in_a_v1beta2_render_are_rejected(schemas: CrdSchemas) -> None:
    path = "spec.kubeadmConfigSpec.clusterConfiguration.controllerManager.extraArgs"

    def mutate(objs: Objects) -> None:
        _find(objs, "KubeadmControlPlane")["spec"]["kubeadmConfigSpec"]["clusterConfiguration"]["controllerManager"][
            "extraArgs"
        ] = {"v": "2"}

    issues = _issues(mutate, core="v1beta2", schemas=schemas)
    assert _has(issues, "KubeadmControlPlane/edge1-control-plane", path, "api-shape")
    assert _has(issues, "KubeadmControlPlane/edge1-control-plane", path, "schema:type")


# ── cross-object invariants ─────────────────────────────────────────────────────────────


def test_even_control_plane_count_is_rejected() -> None:
    issues = _issues(lambda objs: _find(objs, "KubeadmControlPlane")["spec"].update(replicas=2))
    assert _has(issues, "KubeadmControlPlane/edge1-control-plane", "spec.replicas", "replicas")


def test_vip_equal_to_a_host_ip_is_rejected() -> None:
    def mutate(objs: Objects) -> None:
        _find(objs, "ByoCluster")["spec"]["controlPlaneEndpoint"]["host"] = "192.168.10.11"

    issues = _issues(mutate)
    assert _has(issues, "ByoCluster/edge1", "spec.controlPlaneEndpoint.host", "vip-not-host")
    assert _has(issues, "ByoCluster/edge1", "spec.controlPlaneEndpoint.host", "vip")


def test_kube_vip_address_must_be_the_vip() -> None:
    def mutate(objs: Objects) -> None:
        f = _find(objs, "KubeadmControlPlane")["spec"]["kubeadmConfigSpec"]["files"][0]
        f["content"] = f["content"].replace('"192.168.10.5"', '"192.168.10.99"')

    assert _has(_issues(mutate), "KubeadmControlPlane/edge1-control-plane", "spec.kubeadmConfigSpec.files", "vip")


@pytest.mark.parametrize("core", ["v1beta1", "v1beta2"])
def test_broken_ref_is_rejected(core: str) -> None:
    def mutate(objs: Objects) -> None:
        _find(objs, "Cluster")["spec"]["infrastructureRef"]["name"] = "nope"

    issues = _issues(mutate, core=core)
    assert _has(issues, "Cluster/edge1", "spec.infrastructureRef.name", "ref")


def test_ref_with_wrong_api_version_is_rejected() -> None:
    def mutate(objs: Objects) -> None:
        _find(objs, "MachineDeployment")["spec"]["template"]["spec"]["bootstrap"]["configRef"]["apiVersion"] = (
            "bootstrap.cluster.x-k8s.io/v1beta2"
        )

    issues = _issues(mutate)
    assert _has(issues, "MachineDeployment/edge1-md-0", "spec.template.spec.bootstrap.configRef.apiVersion", "ref")


def test_mixed_v1beta1_and_v1beta2_objects_are_rejected() -> None:
    def mutate(objs: Objects) -> None:
        _find(objs, "MachineDeployment")["apiVersion"] = "cluster.x-k8s.io/v1beta2"
        _find(objs, "Cluster")["spec"]["controlPlaneRef"]["apiGroup"] = "controlplane.cluster.x-k8s.io"

    issues = _issues(mutate)
    assert _has(issues, "MachineDeployment/edge1-md-0", "apiVersion", "api-version")
    assert _has(issues, "Cluster/edge1", "spec.controlPlaneRef.apiGroup", "api-shape")


def test_v1beta1_machine_template_shape_in_v1beta2_is_rejected() -> None:
    def mutate(objs: Objects) -> None:
        mt = _find(objs, "KubeadmControlPlane")["spec"]["machineTemplate"]
        mt["infrastructureRef"] = mt.pop("spec")["infrastructureRef"]

    issues = _issues(mutate, core="v1beta2")
    path = "spec.machineTemplate.infrastructureRef"
    assert _has(issues, "KubeadmControlPlane/edge1-control-plane", path, "api-shape")


def test_leftover_template_syntax_is_rejected() -> None:
    def mutate(objs: Objects) -> None:
        f = _find(objs, "KubeadmControlPlane")["spec"]["kubeadmConfigSpec"]["files"][0]
        f["content"] += "# {{ .Other }}\n"
        _find(objs, "Cluster")["metadata"]["labels"]["leak"] = "${CLUSTER_NAME}"

    issues = _issues(mutate)
    assert _has(
        issues, "KubeadmControlPlane/edge1-control-plane", "spec.kubeadmConfigSpec.files[0].content", "go-template"
    )
    assert _has(issues, "Cluster/edge1", "metadata.labels.leak", "placeholder")


def test_oversized_cni_configmap_is_rejected() -> None:
    def mutate(objs: Objects) -> None:
        _find(objs, "ConfigMap")["data"]["bridge-pool.yaml"] += "#" * (1024 * 1024)

    assert _has(_issues(mutate), "ConfigMap/cni-edge1-crs-0", "data", "size")


def test_cni_pool_follows_the_pod_cidr() -> None:
    spec = make_spec(pod_cidr="10.32.0.0/16")
    objects = render_cluster(spec, make_options())
    assert validate_render(objects, spec, None, make_options()) == []
    text = _find(objects, "ConfigMap")["data"]["bridge-pool.yaml"]
    assert "10.32.0.0/16" in text and "10.244.0.0/16" not in text.split("#", 1)[0]


def test_cni_pool_must_equal_the_pod_cidr() -> None:
    def mutate(objs: Objects) -> None:
        cm = _find(objs, "ConfigMap")["data"]
        cm["bridge-pool.yaml"] = cm["bridge-pool.yaml"].replace('"10.244.0.0/16"', '"10.99.0.0/16"')

    issues = _issues(mutate)
    assert _has(issues, "ConfigMap/cni-edge1-crs-0", "data[bridge-pool.yaml]", "cni-pool")


def test_crs_selector_must_match_the_cluster_labels() -> None:
    def mutate(objs: Objects) -> None:
        del _find(objs, "Cluster")["metadata"]["labels"]["cni"]

    assert _has(_issues(mutate), "ClusterResourceSet/edge1-crs-0", "spec.clusterSelector", "crs-selector")


def test_selectors_must_pin_exactly_the_requested_hosts() -> None:
    def mutate(objs: Objects) -> None:
        sel = _find(objs, "ByoMachineTemplate", "edge1-md-0-v1-30-2")["spec"]["template"]["spec"]["selector"]
        sel["matchExpressions"][0]["values"] = ["host-0", "host-1"]
        del _find(objs, "ByoMachineTemplate", "edge1-control-plane-v1-30-2")["spec"]["template"]["spec"]["selector"]

    issues = _issues(mutate)
    assert _has(issues, "ByoMachineTemplate/edge1-md-0-v1-30-2", "spec.template.spec.selector", "selector")
    assert _has(issues, "ByoMachineTemplate/edge1-control-plane-v1-30-2", "spec.template.spec.selector", "selector")


def test_selector_claiming_unlabeled_hosts_is_rejected() -> None:
    def mutate(objs: Objects) -> None:
        _find(objs, "ByoMachineTemplate", "edge1-md-0-v1-30-2")["spec"]["template"]["spec"]["selector"] = {
            "matchExpressions": [{"key": "o2ims.oran.org/host-id", "operator": "NotIn", "values": ["host-0"]}]
        }

    assert _has(_issues(mutate), "ByoMachineTemplate/edge1-md-0-v1-30-2", "spec.template.spec.selector", "selector")


def test_a_selector_without_the_version_label_is_rejected() -> None:
    # A host freed by a rollout still carries the old version label: a template must not take it.
    def mutate(objs: Objects) -> None:
        del _find(objs, "ByoMachineTemplate", "edge1-md-0-v1-30-2")["spec"]["template"]["spec"]["selector"][
            "matchLabels"
        ]

    assert _has(_issues(mutate), "ByoMachineTemplate/edge1-md-0-v1-30-2", "spec.template.spec.selector", "selector")


def test_rollout_strategies_are_checked() -> None:
    def mutate(objs: Objects) -> None:
        _find(objs, "KubeadmControlPlane")["spec"]["rolloutStrategy"]["rollingUpdate"]["maxSurge"] = 0
        _find(objs, "MachineDeployment")["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = 1

    issues = _issues(mutate)  # one control plane: scaling in first would leave no API server
    assert _has(
        issues, "KubeadmControlPlane/edge1-control-plane", "spec.rolloutStrategy.rollingUpdate.maxSurge", "rollout"
    )
    assert _has(issues, "MachineDeployment/edge1-md-0", "spec.strategy", "rollout")


def test_versions_and_replicas_must_follow_the_spec() -> None:
    def mutate(objs: Objects) -> None:
        md = _find(objs, "MachineDeployment")
        md["spec"]["template"]["spec"]["version"] = "1.30.2"
        md["spec"]["replicas"] = 3

    issues = _issues(mutate)
    assert _has(issues, "MachineDeployment/edge1-md-0", "spec.template.spec.version", "version")
    assert _has(issues, "MachineDeployment/edge1-md-0", "spec.replicas", "replicas")


def test_node_registration_rules() -> None:
    def mutate(objs: Objects) -> None:
        cfg = _find(objs, "KubeadmControlPlane")["spec"]["kubeadmConfigSpec"]
        cfg["initConfiguration"]["nodeRegistration"]["name"] = "node0"
        cfg["joinConfiguration"]["nodeRegistration"]["ignorePreflightErrors"] = ["Swap"]

    issues = _issues(mutate)
    base = "spec.kubeadmConfigSpec"
    assert _has(
        issues,
        "KubeadmControlPlane/edge1-control-plane",
        f"{base}.initConfiguration.nodeRegistration.name",
        "node-name",
    )
    assert _has(
        issues,
        "KubeadmControlPlane/edge1-control-plane",
        f"{base}.joinConfiguration.nodeRegistration.ignorePreflightErrors",
        "preflight",
    )


def test_super_admin_swap_required_from_1_29_and_refused_before() -> None:
    def drop(objs: Objects) -> None:
        del _find(objs, "KubeadmControlPlane")["spec"]["kubeadmConfigSpec"]["postKubeadmCommands"]

    assert _has(
        _issues(drop),
        "KubeadmControlPlane/edge1-control-plane",
        "spec.kubeadmConfigSpec.postKubeadmCommands",
        "super-admin",
    )

    def unguarded(objs: Objects) -> None:
        cfg = _find(objs, "KubeadmControlPlane")["spec"]["kubeadmConfigSpec"]
        cfg["preKubeadmCommands"] = ["sed -i s#admin.conf#super-admin.conf# /etc/kubernetes/super-admin.conf"]

    assert _has(
        _issues(unguarded),
        "KubeadmControlPlane/edge1-control-plane",
        "spec.kubeadmConfigSpec.preKubeadmCommands",
        "super-admin",
    )

    def add(objs: Objects) -> None:
        cfg = _find(objs, "KubeadmControlPlane")["spec"]["kubeadmConfigSpec"]
        cfg["preKubeadmCommands"] = ["cp /etc/kubernetes/super-admin.conf /tmp"]

    assert _has(
        _issues(add, spec=make_spec(version="1.28.3")),
        "KubeadmControlPlane/edge1-control-plane",
        "spec.kubeadmConfigSpec.preKubeadmCommands",
        "super-admin",
    )


def test_installer_ref_and_missing_objects_are_rejected() -> None:
    def mutate(objs: Objects) -> None:
        _find(objs, "ByoMachineTemplate", "edge1-md-0-v1-30-2")["spec"]["template"]["spec"]["installerRef"] = {
            "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
            "kind": "K8sInstallerConfigTemplate",
            "name": "x",
            "namespace": "o2ims",
        }
        objs.remove(_find(objs, "ByoCluster"))

    issues = _issues(mutate)
    assert _has(issues, "ByoMachineTemplate/edge1-md-0-v1-30-2", "spec.template.spec.installerRef", "no-installer-ref")
    assert _has(issues, "ByoCluster/edge1", "", "object-set")
    assert _has(issues, "Cluster/edge1", "spec.infrastructureRef.name", "ref")


def test_secret_payloads_are_checked_structurally() -> None:
    def mutate(objs: Objects) -> None:
        objs.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "extra", "namespace": "o2ims"},
                "type": "addons.cluster.x-k8s.io/resource-set",
                "data": {"a.yaml": "not base64!"},
                "x": 1,
            }
        )

    issues = _issues(mutate)
    assert _has(issues, "Secret/extra", "data[a.yaml]", "format")
    assert _has(issues, "Secret/extra", "x", "unknown-field")
    assert _has(issues, "Secret/extra", "", "object-set")


def test_render_and_validate_raises_input_error_listing_every_issue() -> None:
    spec = make_spec()
    options = make_options(kube_vip_image="ghcr.io/kube-vip/kube-vip:v1.2.2")
    with pytest.raises(InputError) as info:
        render_and_validate(spec, options.model_copy(update={"ignore_preflight_errors": ()}), None)
    err = info.value
    assert err.reason == "InvalidRender"
    assert "ignorePreflightErrors" in err.message
    assert err.path.startswith("KubeadmControlPlane/edge1-control-plane")


def test_render_and_validate_returns_the_objects(options: RenderOptions, schemas: CrdSchemas) -> None:
    objects = render_and_validate(make_spec(), options, schemas)
    assert len(objects) == 9
