"""apply/scale/delete against an in-memory fake of ``shared.kube.KubeClient`` (order, idempotence, errors)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest

from services.capi_renderer.apply import (
    apply_cluster,
    cluster_gone,
    delete_cluster,
    render_validate_apply,
    scale_cluster,
)
from services.capi_renderer.domain import RenderOptions
from services.capi_renderer.render import render_cluster
from shared.errors import InputError, PermanentError, TemporaryError
from shared.objects import PR_ID_LABEL

from .conftest import make_options, make_spec

PR = "0b6c3f0e-8d2f-5c1e-9a51-7b7d3c1f2a10"


def opts(pr_id: str = PR) -> RenderOptions:
    """Render options as the handler builds them: every object labelled with the job's PR id."""
    return make_options(extra_labels={PR_ID_LABEL: pr_id})


Key = tuple[str, str, str, str | None]


class FakeKube:
    """Stores objects by (apiVersion-group, kind, name, namespace); SSA bumps resourceVersion only on change."""

    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.calls: list[tuple[str, str, str]] = []
        self.fail_on: tuple[str, Exception] | None = None
        self.finalize_on_delete = True
        self._rv = 0

    @staticmethod
    def _key(api_version: str, kind: str, name: str, namespace: str | None) -> Key:
        return api_version.rpartition("/")[0], kind, name, namespace

    async def apply(self, obj: Mapping[str, Any], *, field_manager: str = "", force: bool = False) -> dict[str, Any]:
        assert field_manager == "focom-o2ims" and force
        meta = obj["metadata"]
        self.calls.append(("apply", obj["kind"], meta["name"]))
        if self.fail_on and self.fail_on[0] == obj["kind"]:
            raise self.fail_on[1]
        key = self._key(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        current = self.objects.get(key)
        body = {k: v for k, v in obj.items() if k != "metadata"}
        if current is None or {k: v for k, v in current.items() if k != "metadata"} != body:
            self._rv += 1
            self.objects[key] = {**copy.deepcopy(dict(obj)), "metadata": {**meta, "resourceVersion": str(self._rv)}}
        return self.objects[key]

    async def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        self.calls.append(("get", kind, name))
        found = self.objects.get(self._key(api_version, kind, name, namespace))
        return copy.deepcopy(found) if found is not None else None

    async def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None = None, *, propagation: str = "Background"
    ) -> bool:
        self.calls.append(("delete", kind, name))
        key = self._key(api_version, kind, name, namespace)
        if key not in self.objects:
            return False
        if self.finalize_on_delete:
            del self.objects[key]
        else:
            self.objects[key]["metadata"]["deletionTimestamp"] = "2030-01-01T00:00:00Z"
        return True

    async def list(
        self, api_version: str, kind: str, namespace: str | None = None, *, label_selector: str | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        """Objects of a kind, filtered by a ``key=value`` selector (all the renderer uses)."""
        self.calls.append(("list", kind, label_selector or ""))
        key, _, value = (label_selector or "").partition("=")
        found = [
            copy.deepcopy(o)
            for (group, k, _name, ns), o in self.objects.items()
            if group == api_version.rpartition("/")[0]
            and k == kind
            and ns == namespace
            and (not key or (o["metadata"].get("labels") or {}).get(key) == value)
        ]
        return found, str(self._rv)

    def versions(self) -> dict[Key, str]:
        return {k: v["metadata"]["resourceVersion"] for k, v in self.objects.items()}


async def test_apply_in_dependency_order_and_reapply_is_a_no_op() -> None:
    kube = FakeKube()
    objects = render_cluster(make_spec(), opts())
    refs = await apply_cluster(kube, objects)
    assert [r.kind for r in refs] == [
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
    assert refs[-1].name == "edge1" and refs[-1].namespace == "o2ims"
    before = kube.versions()
    await apply_cluster(kube, render_cluster(make_spec(), opts()))
    assert kube.versions() == before


async def test_apply_errors_name_the_object_and_keep_their_class() -> None:
    kube = FakeKube()
    kube.fail_on = ("KubeadmControlPlane", PermanentError("admission webhook denied", reason="Invalid"))
    with pytest.raises(PermanentError, match=r"applying KubeadmControlPlane/edge1-control-plane: admission") as info:
        await apply_cluster(kube, render_cluster(make_spec(), opts()))
    assert info.value.reason == "Invalid"
    assert ("apply", "Cluster", "edge1") not in kube.calls  # nothing after the failure
    kube.fail_on = ("ConfigMap", TemporaryError("conflict", delay=3.0))
    with pytest.raises(TemporaryError) as tmp:
        await apply_cluster(kube, render_cluster(make_spec(), opts()))
    assert tmp.value.delay == 3.0


async def test_invalid_render_is_refused_before_any_write() -> None:
    kube = FakeKube()
    with pytest.raises(InputError):
        await render_validate_apply(kube, make_spec(cni="not-configured"), opts(), None)
    assert [c for c in kube.calls if c[0] != "get"] == []  # read what is live (the templates in use), write nothing


async def test_scale_changes_only_md_and_worker_template() -> None:
    kube = FakeKube()
    spec = make_spec(1, 4)
    small = spec.model_copy(update={"workers": spec.workers[:2]})
    await render_validate_apply(kube, small, opts(), None)
    before = kube.versions()
    await scale_cluster(kube, spec, opts(), None)
    after = kube.versions()
    changed = sorted((k[1], k[2]) for k in after if after[k] != before[k])
    assert changed == [("ByoMachineTemplate", "edge1-md-0-v1-30-2"), ("MachineDeployment", "edge1-md-0")]


async def test_scale_refuses_a_missing_or_deleting_cluster() -> None:
    kube = FakeKube()
    with pytest.raises(PermanentError) as info:
        await scale_cluster(kube, make_spec(), opts(), None)
    assert info.value.reason == "ClusterNotFound"
    assert not any(c[0] == "apply" for c in kube.calls)
    await apply_cluster(kube, render_cluster(make_spec(), opts()))
    kube.finalize_on_delete = False
    await delete_cluster(kube, "edge1", "o2ims", pr_id=PR)
    with pytest.raises(PermanentError) as deleting:
        await scale_cluster(kube, make_spec(), opts(), None)
    assert deleting.value.reason == "ClusterDeleting"


async def test_delete_removes_cluster_and_crs_then_reports_gone() -> None:
    kube = FakeKube()
    await apply_cluster(kube, render_cluster(make_spec(), opts()))
    kube.finalize_on_delete = False  # CAPI holds the Cluster until machines are gone
    assert await delete_cluster(kube, "edge1", "o2ims", pr_id=PR) is False
    deleted = [c[1:] for c in kube.calls if c[0] == "delete"]
    assert deleted == [("Cluster", "edge1"), ("ClusterResourceSet", "edge1-crs-0"), ("ConfigMap", "cni-edge1-crs-0")]
    kube.calls.clear()
    assert await delete_cluster(kube, "edge1", "o2ims", pr_id=PR) is False
    assert ("delete", "Cluster", "edge1") not in kube.calls  # already deleting: not deleted again
    # CAPI finishes: the Cluster disappears; the next call removes leftovers and reports gone.
    del kube.objects["cluster.x-k8s.io", "Cluster", "edge1", "o2ims"]
    kube.finalize_on_delete = True
    assert await cluster_gone(kube, "edge1", "o2ims")
    assert await delete_cluster(kube, "edge1", "o2ims", pr_id=PR) is True
    assert kube.objects == {}


async def test_delete_of_a_half_applied_cluster_cleans_up() -> None:
    kube = FakeKube()
    kube.fail_on = ("MachineDeployment", TemporaryError("boom"))
    with pytest.raises(TemporaryError):
        await apply_cluster(kube, render_cluster(make_spec(), opts()))
    assert kube.objects
    assert await delete_cluster(kube, "edge1", "o2ims", pr_id=PR) is True
    assert kube.objects == {}
    assert await delete_cluster(kube, "edge1", "o2ims", pr_id=PR) is True


async def test_delete_without_finalizers_cleans_up_in_one_call() -> None:
    kube = FakeKube()
    await apply_cluster(kube, render_cluster(make_spec(), make_options("v1beta2", extra_labels={PR_ID_LABEL: PR})))
    assert await delete_cluster(kube, "edge1", "o2ims", pr_id=PR, core_api_version="v1beta2") is True
    assert kube.objects == {}


def _hand_made(kube: FakeKube, kind: str, api_version: str, name: str, labels: dict[str, str]) -> None:
    key = kube._key(api_version, kind, name, "o2ims")
    kube.objects[key] = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": "o2ims", "labels": labels, "resourceVersion": "1"},
        "spec": {"hand": "made"},
    }


@pytest.mark.parametrize(
    "labels",
    [
        {},  # made by hand
        {"app.kubernetes.io/managed-by": "someone-else", PR_ID_LABEL: PR},
        {"app.kubernetes.io/managed-by": "focom-o2ims", PR_ID_LABEL: "another-pr"},  # ours, but another PR's cluster
    ],
)
async def test_apply_never_writes_over_an_object_that_is_not_ours(labels: dict[str, str]) -> None:
    kube = FakeKube()
    _hand_made(kube, "Cluster", "cluster.x-k8s.io/v1beta1", "edge1", labels)
    before = copy.deepcopy(kube.objects)
    with pytest.raises(PermanentError, match=r"Cluster/edge1 exists and is not ours") as info:
        await apply_cluster(kube, render_cluster(make_spec(), opts()))
    assert info.value.reason == "ForeignObject"
    assert ("apply", "Cluster", "edge1") not in kube.calls
    assert (
        kube.objects["cluster.x-k8s.io", "Cluster", "edge1", "o2ims"]
        == before["cluster.x-k8s.io", "Cluster", "edge1", "o2ims"]
    )


async def test_a_foreign_cluster_of_the_same_name_is_never_deleted() -> None:
    kube = FakeKube()
    _hand_made(kube, "Cluster", "cluster.x-k8s.io/v1beta1", "edge1", {})
    _hand_made(
        kube,
        "ConfigMap",
        "v1",
        "cni-edge1-crs-0",
        {"app.kubernetes.io/managed-by": "focom-o2ims", PR_ID_LABEL: "another-pr"},
    )
    with pytest.raises(PermanentError) as info:
        await delete_cluster(kube, "edge1", "o2ims", pr_id=PR)
    assert info.value.reason == "ForeignObject"
    assert [c for c in kube.calls if c[0] == "delete"] == []
    # With no Cluster left, leftovers are deleted only when they carry our PR id.
    del kube.objects["cluster.x-k8s.io", "Cluster", "edge1", "o2ims"]
    assert await delete_cluster(kube, "edge1", "o2ims", pr_id=PR) is True
    assert [c for c in kube.calls if c[0] == "delete"] == []
    assert ("", "ConfigMap", "cni-edge1-crs-0", "o2ims") in kube.objects


async def test_an_object_without_our_pr_label_is_never_applied() -> None:
    kube = FakeKube()
    with pytest.raises(PermanentError) as info:
        await apply_cluster(kube, render_cluster(make_spec(), make_options()))
    assert info.value.reason == "Unlabelled" and kube.calls == []


async def test_a_scale_checks_the_cluster_is_ours_before_touching_its_machines() -> None:
    from services.capi_renderer.apply import check_cluster_ours

    kube = FakeKube()
    await check_cluster_ours(kube, "edge1", "o2ims", PR)  # absent: nothing to protect
    _hand_made(kube, "Cluster", "cluster.x-k8s.io/v1beta1", "edge1", {})
    with pytest.raises(PermanentError) as info:
        await check_cluster_ours(kube, "edge1", "o2ims", PR)
    assert info.value.reason == "ForeignObject"
    del kube.objects["cluster.x-k8s.io", "Cluster", "edge1", "o2ims"]
    await apply_cluster(kube, render_cluster(make_spec(), opts()))
    await check_cluster_ours(kube, "edge1", "o2ims", PR)
