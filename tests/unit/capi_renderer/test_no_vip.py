"""A single control plane without a VIP: the host's own address is the endpoint, and no kube-vip is rendered.

That is what the user guide's inventories (no ``control_plane_endpoint``) get. The render passes the
strict CRD schemas and every invariant; a render that slips kube-vip or a foreign endpoint back in is
refused.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from services.capi_renderer.domain import KUBE_VIP_PATH, RenderOptions
from services.capi_renderer.render import render_cluster
from services.capi_renderer.validate import render_and_validate, validate_render
from shared.crd_schema import CrdSchemas
from shared.models import ClusterSpec, HostRef

from .conftest import make_options


def no_vip_spec(version: str = "1.31.4", workers: int = 2) -> ClusterSpec:
    hosts = [
        HostRef(host_id=str(i), host_name=f"node-{i}", host_ip=f"192.168.10.{10 + i}") for i in range(1, 2 + workers)
    ]
    return ClusterSpec(
        name="seed",
        namespace="default",
        k8s_version=version,
        control_plane=(hosts[0],),
        workers=tuple(hosts[1:]),
        cni="bridge-pool",
    )


def _find(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind)


@pytest.mark.parametrize("version", ["1.28.9", "1.31.4"])  # before and after the super-admin.conf swap
def test_the_endpoint_is_the_host_address_and_there_is_no_kube_vip(
    options: RenderOptions, schemas: CrdSchemas, version: str
) -> None:
    spec = no_vip_spec(version)
    objects = render_and_validate(spec, options, schemas)  # strict CRD schemas and every invariant
    host_ip = spec.control_plane[0].host_ip
    byo = _find(objects, "ByoCluster")
    assert byo["spec"]["controlPlaneEndpoint"] == {"host": host_ip, "port": 6443}
    kcp = _find(objects, "KubeadmControlPlane")
    cfg = kcp["spec"]["kubeadmConfigSpec"]
    assert kcp["spec"]["replicas"] == 1
    assert cfg["clusterConfiguration"]["apiServer"]["certSANs"] == [host_ip]
    assert all(f.get("path") != KUBE_VIP_PATH for f in cfg.get("files", []))
    assert "preKubeadmCommands" not in cfg and "postKubeadmCommands" not in cfg
    assert "kube-vip" not in repr(objects)


def test_a_render_that_brings_kube_vip_back_is_refused() -> None:
    spec, options = no_vip_spec(), make_options()
    with_vip = spec.model_copy(update={"vip": "192.168.10.5"})
    stray = _find(render_cluster(with_vip, options), "KubeadmControlPlane")["spec"]["kubeadmConfigSpec"]
    objects = render_cluster(spec, options)
    kcp = _find(objects, "KubeadmControlPlane")
    kcp["spec"]["kubeadmConfigSpec"]["files"] = copy.deepcopy(stray["files"])
    kcp["spec"]["kubeadmConfigSpec"]["preKubeadmCommands"] = stray["preKubeadmCommands"]
    rules = {(i.path, i.rule) for i in validate_render(objects, spec, None, options)}
    assert ("spec.kubeadmConfigSpec.files", "kube-vip") in rules
    assert ("spec.kubeadmConfigSpec.preKubeadmCommands", "super-admin") in rules


def test_an_endpoint_other_than_the_host_is_refused() -> None:
    spec, options = no_vip_spec(), make_options()
    objects = render_cluster(spec, options)
    _find(objects, "ByoCluster")["spec"]["controlPlaneEndpoint"]["host"] = "192.168.10.99"
    rules = {(i.object, i.path, i.rule) for i in validate_render(objects, spec, None, options)}
    assert ("ByoCluster/seed", "spec.controlPlaneEndpoint.host", "vip") in rules


def test_a_control_plane_without_a_vip_cannot_grow() -> None:
    spec = no_vip_spec()
    extra = HostRef(host_id="9", host_name="node-9", host_ip="192.168.10.90")
    extra2 = HostRef(host_id="8", host_name="node-8", host_ip="192.168.10.80")
    with pytest.raises(ValidationError, match="cannot be scaled"):
        ClusterSpec.model_validate({**spec.model_dump(), "control_plane": (*spec.control_plane, extra, extra2)})
