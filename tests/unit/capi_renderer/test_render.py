"""Rendering: object set, version shapes, safe value emission, the agent placeholder, CNI handling."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from services.capi_renderer import cni
from services.capi_renderer.domain import AGENT_NIC_PLACEHOLDER, RenderOptions, get
from services.capi_renderer.render import environment, literal_block, render_cluster, render_yaml, yaml_value
from services.capi_renderer.selectors import selector_matches
from services.capi_renderer.validate import validate_render
from shared.errors import InputError
from shared.objects import HOST_ID_LABEL, K8S_VERSION_LABEL

from .conftest import EXAMPLE_CNI, make_options, make_spec


def _by_kind(objects: list[dict], kind: str, name: str | None = None) -> dict:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def test_object_set_names_and_versions(options: RenderOptions) -> None:
    objects = render_cluster(make_spec(), options)
    core = options.core_api_version
    got = [(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in objects]
    assert got == [
        (f"cluster.x-k8s.io/{core}", "Cluster", "edge1"),
        ("infrastructure.cluster.x-k8s.io/v1beta1", "ByoCluster", "edge1"),
        (f"controlplane.cluster.x-k8s.io/{core}", "KubeadmControlPlane", "edge1-control-plane"),
        ("infrastructure.cluster.x-k8s.io/v1beta1", "ByoMachineTemplate", "edge1-control-plane-v1-30-2"),
        (f"cluster.x-k8s.io/{core}", "MachineDeployment", "edge1-md-0"),
        (f"bootstrap.cluster.x-k8s.io/{core}", "KubeadmConfigTemplate", "edge1-md-0"),
        ("infrastructure.cluster.x-k8s.io/v1beta1", "ByoMachineTemplate", "edge1-md-0-v1-30-2"),
        ("v1", "ConfigMap", "cni-edge1-crs-0"),
        (f"addons.cluster.x-k8s.io/{core}", "ClusterResourceSet", "edge1-crs-0"),
    ]
    assert {o["metadata"]["namespace"] for o in objects} == {"o2ims"}


def test_rendered_output_contains_the_agent_placeholder_literally(options: RenderOptions) -> None:
    text = render_yaml(make_spec(), options)
    assert "{{ .DefaultNetworkInterfaceName }}" in text
    kcp = _by_kind(render_cluster(make_spec(), options), "KubeadmControlPlane")
    content = kcp["spec"]["kubeadmConfigSpec"]["files"][0]["content"]
    pod = yaml.safe_load(content)
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert env["vip_interface"] == AGENT_NIC_PLACEHOLDER
    assert env["vip_address"] == "192.168.10.5"
    assert env["cp_enable"] == env["vip_arp"] == env["vip_leaderelection"] == "true"
    assert pod["spec"]["hostNetwork"] is True
    assert pod["spec"]["hostAliases"] == [{"hostnames": ["kubernetes"], "ip": "127.0.0.1"}]
    assert set(pod["spec"]["containers"][0]["securityContext"]["capabilities"]["add"]) == {"NET_ADMIN", "NET_RAW"}


def test_v1beta1_and_v1beta2_shapes_differ_only_where_they_must() -> None:
    spec = make_spec()
    v1 = render_cluster(spec, make_options("v1beta1", kubelet_extra_args={"max-pods": "200"}))
    v2 = render_cluster(spec, make_options("v1beta2", kubelet_extra_args={"max-pods": "200"}))
    kcp1, kcp2 = _by_kind(v1, "KubeadmControlPlane"), _by_kind(v2, "KubeadmControlPlane")
    ref1 = kcp1["spec"]["machineTemplate"]["infrastructureRef"]
    assert ref1["apiVersion"] == "infrastructure.cluster.x-k8s.io/v1beta1"
    assert kcp2["spec"]["machineTemplate"]["spec"]["infrastructureRef"] == {
        "apiGroup": "infrastructure.cluster.x-k8s.io",
        "kind": "ByoMachineTemplate",
        "name": "edge1-control-plane-v1-30-2",
    }
    cm = "spec.kubeadmConfigSpec.clusterConfiguration.controllerManager.extraArgs"
    assert get(kcp1, cm) == {"enable-hostpath-provisioner": "true"}
    assert get(kcp2, cm) == [{"name": "enable-hostpath-provisioner", "value": "true"}]
    kct2 = _by_kind(v2, "KubeadmConfigTemplate")
    assert get(kct2, "spec.template.spec.joinConfiguration.nodeRegistration.kubeletExtraArgs") == [
        {"name": "max-pods", "value": "200"}
    ]
    for objs in (v1, v2):
        assert _by_kind(objs, "ByoCluster") == _by_kind(v1, "ByoCluster")
        for name in ("edge1-control-plane-v1-30-2", "edge1-md-0-v1-30-2"):
            assert _by_kind(objs, "ByoMachineTemplate", name) == _by_kind(v1, "ByoMachineTemplate", name)


def test_selectors_pin_the_hosts_by_id_and_version(options: RenderOptions) -> None:
    objects = render_cluster(make_spec(3, 2), options)
    cp = _by_kind(objects, "ByoMachineTemplate", "edge1-control-plane-v1-30-2")["spec"]["template"]["spec"]["selector"]
    md = _by_kind(objects, "ByoMachineTemplate", "edge1-md-0-v1-30-2")["spec"]["template"]["spec"]["selector"]
    want = ["host-0", "host-1", "host-2"]
    assert cp == {
        "matchLabels": {K8S_VERSION_LABEL: "v1.30.2"},
        "matchExpressions": [{"key": HOST_ID_LABEL, "operator": "In", "values": want}],
    }
    assert md["matchExpressions"][0]["values"] == ["host-3", "host-4"]
    assert md["matchLabels"] == {K8S_VERSION_LABEL: "v1.30.2"}
    assert "installerRef" not in str(objects)


def test_rollout_strategies(options: RenderOptions) -> None:
    v2 = options.core_api_version == "v1beta2"
    for control_plane, surge in ((1, 1), (3, 0)):
        objects = render_cluster(make_spec(control_plane, 2), options)
        kcp, md = _by_kind(objects, "KubeadmControlPlane"), _by_kind(objects, "MachineDeployment")
        kcp_strategy = get(kcp, "spec.rollout.strategy" if v2 else "spec.rolloutStrategy")
        assert kcp_strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge}}
        md_strategy = get(md, "spec.rollout.strategy" if v2 else "spec.strategy")
        assert md_strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}


def test_an_upgrades_control_plane_step_keeps_the_workers_at_their_version(options: RenderOptions) -> None:
    spec = make_spec(3, 2).model_copy(update={"k8s_version": "v1.31.1"})
    objects = render_cluster(spec, options, workers_version="v1.30.2")
    kcp, md = _by_kind(objects, "KubeadmControlPlane"), _by_kind(objects, "MachineDeployment")
    ref = (
        "spec.machineTemplate.spec.infrastructureRef"
        if options.core_api_version == "v1beta2"
        else ("spec.machineTemplate.infrastructureRef")
    )
    assert kcp["spec"]["version"] == "v1.31.1" and get(kcp, f"{ref}.name") == "edge1-control-plane-v1-31-1"
    assert md["spec"]["template"]["spec"]["version"] == "v1.30.2"
    assert md["spec"]["template"]["spec"]["infrastructureRef"]["name"] == "edge1-md-0-v1-30-2"
    cp_bmt = _by_kind(objects, "ByoMachineTemplate", "edge1-control-plane-v1-31-1")
    assert cp_bmt["spec"]["template"]["spec"]["selector"]["matchLabels"] == {K8S_VERSION_LABEL: "v1.31.1"}
    assert validate_render(objects, spec, None, options, workers_version="v1.30.2") == []
    # Validated as the workers' step instead, the same render is wrong: the MD must be at the new version.
    issues = {i.rule for i in validate_render(objects, spec, None, options)}
    assert {"version", "object-set"} <= issues


def test_zero_workers_keeps_an_empty_machine_deployment(options: RenderOptions) -> None:
    objects = render_cluster(make_spec(1, 0), options)
    assert _by_kind(objects, "MachineDeployment")["spec"]["replicas"] == 0
    selector = _by_kind(objects, "ByoMachineTemplate", "edge1-md-0-v1-30-2")["spec"]["template"]["spec"]["selector"]
    assert not selector_matches(selector, {HOST_ID_LABEL: "host-0"})
    assert not selector_matches(selector, {})


def test_no_cni_means_no_crs_and_no_selector_label(options: RenderOptions) -> None:
    objects = render_cluster(make_spec(cni=None), options)
    assert {o["kind"] for o in objects}.isdisjoint({"ConfigMap", "ClusterResourceSet"})
    assert "cni" not in _by_kind(objects, "Cluster")["metadata"]["labels"]


def test_cni_manifest_is_carried_byte_for_byte(options: RenderOptions) -> None:
    objects = render_cluster(make_spec(), options)
    cm = _by_kind(objects, "ConfigMap")
    assert cm["data"] == {"bridge-pool.yaml": EXAMPLE_CNI.read_text(encoding="utf-8")}
    crs = _by_kind(objects, "ClusterResourceSet")
    assert crs["spec"]["strategy"] == "ApplyOnce"
    assert crs["spec"]["resources"] == [{"kind": "ConfigMap", "name": "cni-edge1-crs-0"}]
    cluster_labels = _by_kind(objects, "Cluster")["metadata"]["labels"]
    assert crs["spec"]["clusterSelector"]["matchLabels"].items() <= cluster_labels.items()


@pytest.mark.parametrize("size", [10, 40_000])
@pytest.mark.parametrize("ending", ["", "\n", "\n\n\n", "\n  \n"])
def test_cni_text_survives_exactly_whatever_its_ending(tmp_path: Path, size: int, ending: str) -> None:
    text = "  # leading spaces\nkind: A\n---\n" + "#" * size + "\n\tx: '{{ y }}'" + ending
    path = tmp_path / "m.yaml"
    path.write_text(text, encoding="utf-8")
    options = RenderOptions(cni_manifests={"m": path})
    for spec in (make_spec(cni="m"), make_spec(cni="m", name="other")):
        cm = _by_kind(render_cluster(spec, options), "ConfigMap")
        assert cm["data"] == {"m.yaml": text}


def test_unknown_cni_is_an_input_error() -> None:
    with pytest.raises(InputError, match="unknown CNI 'flannel'"):
        render_cluster(make_spec(cni="flannel"), make_options())


def test_super_admin_commands_follow_the_version() -> None:
    new = _by_kind(render_cluster(make_spec(version="1.29.0"), make_options()), "KubeadmControlPlane")
    old = _by_kind(render_cluster(make_spec(version="1.28.15"), make_options()), "KubeadmControlPlane")
    assert "preKubeadmCommands" in new["spec"]["kubeadmConfigSpec"]
    assert "postKubeadmCommands" in new["spec"]["kubeadmConfigSpec"]
    assert "preKubeadmCommands" not in old["spec"]["kubeadmConfigSpec"]
    reg = new["spec"]["kubeadmConfigSpec"]["initConfiguration"]["nodeRegistration"]
    assert "name" not in reg
    assert reg["criSocket"] == "unix:///var/run/containerd/containerd.sock"


def test_ipv6_vip_gets_a_128_cidr() -> None:
    spec = make_spec().model_copy(update={"vip": "fd00::5"})
    kcp = _by_kind(render_cluster(spec, make_options()), "KubeadmControlPlane")
    assert '{name: vip_cidr, value: "128"}' in kcp["spec"]["kubeadmConfigSpec"]["files"][0]["content"]


def test_environment_is_built_once_with_strict_undefined() -> None:
    env = environment()
    assert env is environment()
    with pytest.raises(Exception, match="undefined"):
        env.from_string("{{ missing }}").render()


@given(st.text())
def test_q_filter_round_trips_any_text(value: str) -> None:
    rendered = environment().from_string("key: {{ v | q }}\nother: 1\n").render(v=value)
    assert yaml.safe_load(rendered) == {"key": value, "other": 1}


@given(st.dictionaries(st.text(), st.one_of(st.text(), st.integers(), st.booleans(), st.none())))
def test_q_filter_round_trips_mappings(value: dict) -> None:
    assert yaml.safe_load(f"k: {yaml_value(value)}") == {"k": value}


def test_q_filter_refuses_floats() -> None:
    with pytest.raises(TypeError):
        yaml_value(1.5)


_BLOCK_TEXT = st.text(st.characters(blacklist_categories=("Cs",)).filter(lambda c: not cni.NOT_BLOCK_SAFE.match(c)))


@given(_BLOCK_TEXT, st.integers(min_value=0, max_value=8))
def test_literal_block_round_trips(text: str, column: int) -> None:
    doc = " " * column + "k: " + literal_block(text, column) + "\n" + " " * column + "after: 1\n"
    assert yaml.safe_load(doc) == {"k": text, "after": 1}


def test_literal_block_refuses_what_yaml_would_change() -> None:
    for bad in ("a\rb", "a\x85b", "a\u2028b", "\ufeffa", "a\x00"):
        with pytest.raises(ValueError, match="literal block"):
            literal_block(bad, 2)
