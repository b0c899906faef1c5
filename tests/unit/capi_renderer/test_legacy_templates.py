"""Clusters an earlier release rendered (unversioned machine templates) keep them until a version change.

Such a cluster's KCP / MachineDeployment reference ``<cluster>-control-plane`` / ``<cluster>-md-0``, whose
selectors name host ids only. Any re-render that is not an upgrade must keep them (a new template reference
rolls every Machine, and a versioned selector matches none of the cluster's hosts); an upgrade moves the
roles it changes to versioned templates, and the final ``apply`` removes the legacy ones.
"""

from __future__ import annotations

from typing import Any

import pytest

from services.capi_renderer.apply import live_templates, render_validate_apply, scale_cluster
from services.capi_renderer.domain import (
    VERSIONED,
    ClusterNames,
    TemplateChoice,
    get,
    kcp_template_ref,
    live_template_choice,
)
from services.capi_renderer.render import render_cluster
from services.capi_renderer.selectors import pinned_hosts
from services.capi_renderer.validate import validate_render
from shared.models import ClusterSpec
from shared.objects import K8S_VERSION_LABEL, PR_ID_LABEL

from .conftest import make_options, make_spec
from .test_apply import PR, FakeKube, opts

LEGACY = TemplateChoice(control_plane_legacy=True, workers_legacy=True)
NAMES = ClusterNames("edge1")
OLD, NEW = "v1.30.2", "v1.31.1"


def legacy_render(spec: ClusterSpec, core: str = "v1beta1") -> list[dict[str, Any]]:
    """The objects as the earlier release rendered them: one template per role, named like its owner, selecting
    by host id alone, and no rollout strategy."""
    objects = render_cluster(spec, make_options(core, extra_labels={PR_ID_LABEL: PR}), templates=LEGACY)
    for obj in objects:
        spec_ = obj.get("spec") or {}
        for key in ("rolloutStrategy", "strategy", "rollout"):
            spec_.pop(key, None)
    return objects


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind)


def live(kube: FakeKube, kind: str, name: str) -> dict[str, Any]:
    return next(o for (_, k, n, _), o in kube.objects.items() if k == kind and n == name)


def templates(kube: FakeKube) -> dict[str, dict[str, Any]]:
    return {n: o for (_, k, n, _), o in kube.objects.items() if k == "ByoMachineTemplate"}


# -- the decision ---------------------------------------------------------------------------------


@pytest.mark.parametrize("core", ["v1beta1", "v1beta2"])
def test_a_live_legacy_template_at_the_version_asked_for_is_kept(core: str) -> None:
    objects = legacy_render(make_spec(version=OLD), core)
    kcp, md = by_kind(objects, "KubeadmControlPlane"), by_kind(objects, "MachineDeployment")
    assert kcp_template_ref(kcp) == "edge1-control-plane"
    assert live_template_choice(NAMES, kcp, md, OLD, OLD) == LEGACY


def test_only_a_version_change_moves_a_role_to_versioned_templates() -> None:
    objects = legacy_render(make_spec(version=OLD))
    kcp, md = by_kind(objects, "KubeadmControlPlane"), by_kind(objects, "MachineDeployment")
    # An upgrade's control-plane step: the KCP moves, the workers (held at the old version) stay.
    assert live_template_choice(NAMES, kcp, md, NEW, OLD) == TemplateChoice(workers_legacy=True)
    # Its workers' step: both move.
    assert live_template_choice(NAMES, kcp, md, NEW, NEW) == VERSIONED


def test_a_new_or_versioned_cluster_renders_versioned_templates() -> None:
    assert live_template_choice(NAMES, None, None, OLD, OLD) == VERSIONED
    objects = render_cluster(make_spec(version=OLD), opts())
    kcp, md = by_kind(objects, "KubeadmControlPlane"), by_kind(objects, "MachineDeployment")
    assert live_template_choice(NAMES, kcp, md, OLD, OLD) == VERSIONED


def test_a_legacy_render_selects_by_host_id_alone_and_validates() -> None:
    spec = make_spec(version=OLD)
    objects = render_cluster(spec, opts(), templates=LEGACY)
    bmts = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ByoMachineTemplate"}
    assert sorted(bmts) == ["edge1-control-plane", "edge1-md-0"]
    for bmt in bmts.values():
        selector = get(bmt, "spec.template.spec.selector")
        assert K8S_VERSION_LABEL not in (selector.get("matchLabels") or {})
        # What the earlier release asked: the named hosts, with or without the version label; no other host.
        chosen, stray = pinned_hosts(selector, [h.host_id for h in spec.all_hosts], OLD, by_version=False)
        assert chosen and not stray
    assert validate_render(objects, spec, None, opts(), templates=LEGACY) == []
    # The same host-id-only selectors are refused where versioned templates are expected.
    assert any(i.rule == "object-set" or i.rule == "selector" for i in validate_render(objects, spec, None, opts()))


# -- against the (fake) API server ----------------------------------------------------------------


async def _legacy_cluster(kube: FakeKube, spec: ClusterSpec) -> None:
    for obj in legacy_render(spec):
        await kube.apply(obj, field_manager="focom-o2ims", force=True)


async def test_a_scale_of_a_legacy_cluster_keeps_its_templates_and_rolls_nothing() -> None:
    kube = FakeKube()
    spec = make_spec(1, 3, version=OLD)
    small = spec.model_copy(update={"workers": spec.workers[:2]})
    await _legacy_cluster(kube, small)
    assert await live_templates(kube, small, opts()) == LEGACY
    await scale_cluster(kube, spec, opts(), None)  # a worker added
    md, kcp = live(kube, "MachineDeployment", "edge1-md-0"), live(kube, "KubeadmControlPlane", "edge1-control-plane")
    assert get(md, "spec.template.spec.infrastructureRef.name") == "edge1-md-0"
    assert get(md, "spec.replicas") == 3
    assert kcp_template_ref(kcp) == "edge1-control-plane"
    assert sorted(templates(kube)) == ["edge1-control-plane", "edge1-md-0"]
    worker_selector = get(templates(kube)["edge1-md-0"], "spec.template.spec.selector")
    assert worker_selector == {
        "matchExpressions": [
            {"key": "o2ims.oran.org/host-id", "operator": "In", "values": ["host-1", "host-2", "host-3"]}
        ]
    }
    # Any later re-apply (a resumed job, a swap's last step) keeps them too and prunes nothing.
    before = kube.versions()
    await render_validate_apply(kube, spec, opts(), None)
    assert sorted(templates(kube)) == ["edge1-control-plane", "edge1-md-0"]
    assert all(
        kube.versions()[k] == v for k, v in before.items() if k[1] in ("KubeadmControlPlane", "ByoMachineTemplate")
    )
    assert (
        get(live(kube, "MachineDeployment", "edge1-md-0"), "spec.template.spec.infrastructureRef.name") == "edge1-md-0"
    )


async def test_an_upgrade_of_a_legacy_cluster_ends_on_versioned_templates() -> None:
    kube = FakeKube()
    old = make_spec(3, 1, version=OLD)
    await _legacy_cluster(kube, old)
    new = old.model_copy(update={"k8s_version": NEW})
    # Control-plane step: the KCP to the new version on a versioned template; the workers keep theirs.
    await scale_cluster(kube, new, opts(), None, workers_version=OLD)
    kcp, md = live(kube, "KubeadmControlPlane", "edge1-control-plane"), live(kube, "MachineDeployment", "edge1-md-0")
    assert kcp_template_ref(kcp) == "edge1-control-plane-v1-31-1" and get(kcp, "spec.version") == NEW
    assert get(md, "spec.template.spec.infrastructureRef.name") == "edge1-md-0"
    assert get(md, "spec.template.spec.version") == OLD
    cp_selector = get(templates(kube)["edge1-control-plane-v1-31-1"], "spec.template.spec.selector")
    assert cp_selector["matchLabels"] == {K8S_VERSION_LABEL: NEW}
    # A resumed control-plane step decides the same from what is now live.
    assert await live_templates(kube, new, opts(), OLD) == TemplateChoice(workers_legacy=True)
    # Workers' step, then the last apply: versioned templates only.
    await scale_cluster(kube, new, opts(), None)
    md = live(kube, "MachineDeployment", "edge1-md-0")
    assert get(md, "spec.template.spec.infrastructureRef.name") == "edge1-md-0-v1-31-1"
    await render_validate_apply(kube, new, opts(), None)
    assert sorted(templates(kube)) == ["edge1-control-plane-v1-31-1", "edge1-md-0-v1-31-1"]


async def test_only_our_own_objects_decide() -> None:
    kube = FakeKube()
    spec = make_spec(version=OLD)
    await _legacy_cluster(kube, spec)
    assert await live_templates(kube, spec, opts("another-pr")) == VERSIONED
