"""Property tests: any valid ClusterSpec renders to a valid set; no name or value can break the YAML."""

from __future__ import annotations

import ipaddress
from typing import Any

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.capi_renderer.domain import RenderOptions
from services.capi_renderer.render import render_cluster
from services.capi_renderer.validate import validate_render
from shared.capi_api import carried_schemas
from shared.models import ClusterSpec, HostRef

from .conftest import EXAMPLE_CNI

_SCHEMAS = carried_schemas()

names = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?\Z")
host_ids = st.from_regex(r"\A[A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?\Z")
versions = st.builds(
    lambda minor, patch, v: f"{'v' if v else ''}1.{minor}.{patch}",
    st.integers(26, 36),
    st.integers(0, 30),
    st.booleans(),
)


@st.composite
def specs(draw: st.DrawFn) -> ClusterSpec:
    cp = draw(st.sampled_from([1, 3, 5]))
    workers = draw(st.integers(0, 6))
    ids = draw(st.lists(host_ids, min_size=cp + workers, max_size=cp + workers, unique=True))
    base = int(ipaddress.ip_address("172.16.0.0"))
    addrs = draw(st.lists(st.integers(1, 60000), min_size=cp + workers + 1, max_size=cp + workers + 1, unique=True))
    hosts = [
        HostRef(host_id=i, host_name=f"n{k}", host_ip=str(ipaddress.ip_address(base + a)))
        for k, (i, a) in enumerate(zip(ids, addrs, strict=False))
    ]
    return ClusterSpec(
        name=draw(names),
        namespace=draw(names),
        k8s_version=draw(versions),
        control_plane=tuple(hosts[:cp]),
        workers=tuple(hosts[cp:]),
        vip=str(ipaddress.ip_address(base + addrs[-1])),
        cni=draw(st.sampled_from([None, "bridge-pool"])),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs(), st.sampled_from(["v1beta1", "v1beta2"]))
def test_any_valid_spec_renders_to_a_valid_set(spec: ClusterSpec, core: Any) -> None:
    options = RenderOptions(core_api_version=core, cni_manifests={"bridge-pool": EXAMPLE_CNI})
    objects = render_cluster(spec, options)
    assert validate_render(objects, spec, _SCHEMAS, options) == []


_SPECIAL = [*":{}[],#&*!|>'\"%@`?$/.\\ \t\n\r", "\u2028", "\x85", "A", "_"]


@given(
    st.builds(
        lambda a, c, b: a + c + b, st.text("abc-1", max_size=5), st.sampled_from(_SPECIAL), st.text("abc-1", max_size=5)
    )
)
def test_names_with_yaml_special_characters_are_refused(name: str) -> None:
    with pytest.raises(pydantic.ValidationError):
        ClusterSpec(
            name=name,
            k8s_version="1.30.0",
            vip="10.0.0.1",
            control_plane=(HostRef(host_id="a", host_name="a", host_ip="10.0.0.2"),),
        )


@pytest.mark.parametrize("value", ['x"\n---\nkind: Secret', "a: b", "{{ x }}", "- [", "x\u2028y", "#", ""])
def test_invalid_label_values_are_refused_by_the_options(value: str) -> None:
    if value == "":
        RenderOptions(extra_labels={"k": value})  # empty is a valid label value
        return
    with pytest.raises(pydantic.ValidationError):
        RenderOptions(extra_labels={"k": value})


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=20), st.text(max_size=40), max_size=4))
def test_label_values_cannot_change_the_yaml_structure(labels: dict[str, str]) -> None:
    # Bypass the options' validation on purpose: even unvalidated values stay inert data.
    options = RenderOptions.model_construct(
        **{**RenderOptions(cni_manifests={"bridge-pool": EXAMPLE_CNI}).__dict__, "extra_labels": labels}
    )
    spec = ClusterSpec(
        name="c",
        k8s_version="1.30.0",
        vip="10.0.0.1",
        cni="bridge-pool",
        control_plane=(HostRef(host_id="a", host_name="a", host_ip="10.0.0.2"),),
    )
    objects = render_cluster(spec, options)
    assert [o["kind"] for o in objects] == [
        "Cluster",
        "ByoCluster",
        "KubeadmControlPlane",
        "ByoMachineTemplate",
        "MachineDeployment",
        "KubeadmConfigTemplate",
        "ByoMachineTemplate",
        "ConfigMap",
        "ClusterResourceSet",
    ]
    for obj in objects:
        for key, value in labels.items():
            if key not in ("app.kubernetes.io/managed-by", "o2ims.oran.org/cluster", "cni"):
                assert obj["metadata"]["labels"][key] == value
