"""The renderer against the Kubernetes API emulator: apply, idempotent re-apply, scale, delete, and with the
simulated CAPI/BYOH controllers and fake hosts, a Running cluster on exactly the requested hosts."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from sandbox.capi import CapiSimulators, HostAgent
from sandbox.capi.fakehosts import wait_for_object
from services.capi_renderer.apply import cluster_gone, delete_cluster, render_validate_apply, scale_cluster
from services.capi_renderer.domain import RenderOptions, derived_objects
from shared.crd_schema import CrdSchemas
from shared.errors import PermanentError
from shared.kube import KubeClient
from shared.models import ClusterSpec, HostRef
from shared.objects import HOST_ID_LABEL, K8S_VERSION_LABEL, PR_ID_LABEL

REPO = Path(__file__).resolve().parents[3]
EXAMPLE_CNI = REPO / "examples" / "cni" / "bridge-pool.yaml"
NS = "default"

CORE = pytest.mark.parametrize("core", ["v1beta1", "v1beta2"])


def _spec(cp: int, workers: int, *, name: str = "edge1", ids: list[str] | None = None) -> ClusterSpec:
    # Fake hosts are h1..hn at 10.0.0.10+ (sandbox.capi.fakehosts).
    ids = ids or [f"h{i}" for i in range(1, cp + workers + 1)]
    hosts = [HostRef(host_id=i, host_name=f"host-{i[1:]}", host_ip=f"10.0.0.{9 + int(i[1:])}") for i in ids]
    return ClusterSpec(
        name=name,
        namespace=NS,
        k8s_version="1.31.2",
        control_plane=tuple(hosts[:cp]),
        workers=tuple(hosts[cp:]),
        vip="10.0.0.250",
        cni="bridge-pool",
    )


PR = "6a1f3e52-3c0b-5d7e-9f4a-2b8c1d0e9f31"


def _options(core: str, pr_id: str = PR) -> RenderOptions:
    return RenderOptions(
        core_api_version=core,
        cni_manifests={"bridge-pool": EXAMPLE_CNI},  # type: ignore[arg-type]
        extra_labels={PR_ID_LABEL: pr_id},
    )


@pytest.fixture
def schemas(served_schemas: CrdSchemas) -> CrdSchemas:
    return served_schemas


async def _versions(
    client: KubeClient, name: str, core: str, k8s_versions: tuple[str, ...] = ("v1.31.2",)
) -> dict[str, str]:
    out: dict[str, str] = {}
    for ref in derived_objects(name, NS, core, k8s_versions):  # type: ignore[arg-type]
        obj = await client.get(ref.api_version, ref.kind, ref.name, ref.namespace)
        if obj is not None:
            out[f"{ref.kind}/{ref.name}"] = obj["metadata"]["resourceVersion"]
    return out


@CORE
async def test_apply_creates_every_object_and_reapply_changes_nothing(
    capi_client: KubeClient, schemas: CrdSchemas, core: str
) -> None:
    spec = _spec(1, 2)
    refs = await render_validate_apply(capi_client, spec, _options(core), schemas)
    assert [r.kind for r in refs][-1] == "Cluster"
    first = await _versions(capi_client, spec.name, core)
    assert len(first) == 9
    kcp = await capi_client.get(
        f"controlplane.cluster.x-k8s.io/{core}", "KubeadmControlPlane", "edge1-control-plane", NS
    )
    assert kcp is not None and kcp["spec"]["version"] == "v1.31.2"
    await render_validate_apply(capi_client, spec, _options(core), schemas)
    assert await _versions(capi_client, spec.name, core) == first


@CORE
async def test_scale_changes_only_the_machine_deployment_and_worker_template(
    capi_client: KubeClient, schemas: CrdSchemas, core: str
) -> None:
    await render_validate_apply(capi_client, _spec(1, 2), _options(core), schemas)
    before = await _versions(capi_client, "edge1", core)
    await scale_cluster(capi_client, _spec(1, 4), _options(core), schemas)
    after = await _versions(capi_client, "edge1", core)
    assert sorted(k for k in after if after[k] != before[k]) == [
        "ByoMachineTemplate/edge1-md-0-v1-31-2",
        "MachineDeployment/edge1-md-0",
    ]
    md = await capi_client.get(f"cluster.x-k8s.io/{core}", "MachineDeployment", "edge1-md-0", NS)
    assert md is not None and md["spec"]["replicas"] == 4


@CORE
async def test_an_upgrade_points_the_control_plane_then_the_workers_at_new_templates_and_apply_prunes_the_old(
    capi_client: KubeClient, schemas: CrdSchemas, core: str
) -> None:
    old = _spec(3, 1)
    new = old.model_copy(update={"k8s_version": "v1.32.0"})
    await render_validate_apply(capi_client, old, _options(core), schemas)
    kcp_av, md_av = f"controlplane.cluster.x-k8s.io/{core}", f"cluster.x-k8s.io/{core}"
    ref = (
        "spec.machineTemplate.spec.infrastructureRef" if core == "v1beta2" else "spec.machineTemplate.infrastructureRef"
    )

    def dig(obj: dict | None, path: str) -> object:
        for part in path.split("."):
            obj = (obj or {}).get(part)  # type: ignore[assignment]
        return obj

    await scale_cluster(capi_client, new, _options(core), schemas, workers_version="v1.31.2")
    kcp = await capi_client.get(kcp_av, "KubeadmControlPlane", "edge1-control-plane", NS)
    md = await capi_client.get(md_av, "MachineDeployment", "edge1-md-0", NS)
    assert dig(kcp, "spec.version") == "v1.32.0" and dig(kcp, f"{ref}.name") == "edge1-control-plane-v1-32-0"
    assert dig(md, "spec.template.spec.version") == "v1.31.2"
    assert dig(md, "spec.template.spec.infrastructureRef.name") == "edge1-md-0-v1-31-2"
    await scale_cluster(capi_client, new, _options(core), schemas)
    md = await capi_client.get(md_av, "MachineDeployment", "edge1-md-0", NS)
    assert dig(md, "spec.template.spec.infrastructureRef.name") == "edge1-md-0-v1-32-0"
    bmt = "infrastructure.cluster.x-k8s.io/v1beta1"

    async def templates() -> list[str]:
        items, _ = await capi_client.list(bmt, "ByoMachineTemplate", NS)
        return sorted(i["metadata"]["name"] for i in items)

    # The old templates stay while the rollout may still use them; the apply after it removes them.
    assert await templates() == [
        "edge1-control-plane-v1-31-2",
        "edge1-control-plane-v1-32-0",
        "edge1-md-0-v1-31-2",
        "edge1-md-0-v1-32-0",
    ]
    await render_validate_apply(capi_client, new, _options(core), schemas)
    assert await templates() == ["edge1-control-plane-v1-32-0", "edge1-md-0-v1-32-0"]


async def test_delete_removes_the_cluster_and_everything_rendered(capi_client: KubeClient, schemas: CrdSchemas) -> None:
    await render_validate_apply(capi_client, _spec(1, 2), _options("v1beta1"), schemas)
    assert not await cluster_gone(capi_client, "edge1", NS)
    deadline = time.monotonic() + 30
    while not await delete_cluster(capi_client, "edge1", NS, pr_id=PR):
        assert time.monotonic() < deadline, "cluster not gone in 30 s"
        await wait_for_object(capi_client, "cluster.x-k8s.io/v1beta1", "Cluster", "edge1", NS, lambda o: o is None)
    assert await cluster_gone(capi_client, "edge1", NS)
    assert await _versions(capi_client, "edge1", "v1beta1") == {}


async def _wait_running(client: KubeClient, spec: ClusterSpec, core: str) -> None:
    core_av = f"cluster.x-k8s.io/{core}"

    def ready(obj: Mapping[str, Any] | None) -> bool:
        return bool(obj) and obj["status"].get("readyReplicas") == obj["spec"].get("replicas")  # type: ignore[index]

    await wait_for_object(
        client,
        f"controlplane.cluster.x-k8s.io/{core}",
        "KubeadmControlPlane",
        f"{spec.name}-control-plane",
        NS,
        lambda o: bool(o and o.get("status")) and ready(o),
        timeout=60,
    )
    await wait_for_object(
        client,
        core_av,
        "MachineDeployment",
        f"{spec.name}-md-0",
        NS,
        lambda o: bool(o and o.get("status")) and ready(o),
        timeout=60,
    )
    machines, _ = await client.list(core_av, "Machine", NS, label_selector=f"cluster.x-k8s.io/cluster-name={spec.name}")
    assert sorted(m["status"].get("phase") for m in machines) == ["Running"] * len(spec.all_hosts)


async def _host_roles(client: KubeClient, cluster: str) -> dict[str, str]:
    """host id → "control-plane" | "worker" for every ByoHost claimed by ``cluster``."""
    roles: dict[str, str] = {}
    hosts, _ = await client.list("infrastructure.cluster.x-k8s.io/v1beta1", "ByoHost", NS)
    for host in hosts:
        labels = host["metadata"].get("labels") or {}
        ref = (host.get("status") or {}).get("machineRef")
        if labels.get("cluster.x-k8s.io/cluster-name") != cluster or not ref:
            continue
        byom = await client.get("infrastructure.cluster.x-k8s.io/v1beta1", "ByoMachine", ref["name"], NS)
        assert byom is not None
        owner = next(o for o in byom["metadata"]["ownerReferences"] if o["kind"] == "Machine")
        machine = await client.get(owner["apiVersion"], "Machine", owner["name"], NS)
        assert machine is not None
        is_cp = "cluster.x-k8s.io/control-plane" in (machine["metadata"].get("labels") or {})
        roles[labels[HOST_ID_LABEL]] = "control-plane" if is_cp else "worker"
    return roles


@CORE
async def test_applied_render_becomes_a_running_cluster_on_the_requested_hosts(
    capi_sim_factory: Callable[..., Awaitable[CapiSimulators]],
    fake_hosts: Callable[..., Awaitable[list[HostAgent]]],
    capi_client: KubeClient,
    schemas: CrdSchemas,
    core: str,
) -> None:
    await capi_sim_factory(core_version=core)
    # h1..h6 registered at the spec's version; the spec takes h2 (CP), h4 and h5 (workers): the others are decoys
    await fake_hosts(6, extra_labels={K8S_VERSION_LABEL: "v1.31.2"})
    spec = _spec(1, 2, ids=["h2", "h4", "h5"])
    await render_validate_apply(capi_client, spec, _options(core), schemas)
    await _wait_running(capi_client, spec, core)
    assert await _host_roles(capi_client, "edge1") == {"h2": "control-plane", "h4": "worker", "h5": "worker"}


async def test_a_hand_made_cluster_of_the_same_name_is_neither_taken_over_nor_deleted(
    capi_client: KubeClient, schemas: CrdSchemas
) -> None:
    """Someone's own CAPI Cluster `edge1`: a request for a cluster `edge1` is refused, and its delete too."""
    theirs = {
        "apiVersion": "cluster.x-k8s.io/v1beta1",
        "kind": "Cluster",
        "metadata": {"name": "edge1", "namespace": NS, "labels": {"team": "core-network"}},
        "spec": {"paused": True},
    }
    await capi_client.apply(theirs, field_manager="kubectl")
    before = await capi_client.get("cluster.x-k8s.io/v1beta1", "Cluster", "edge1", NS)
    assert before is not None
    with pytest.raises(PermanentError) as refused:
        await render_validate_apply(capi_client, _spec(1, 2), _options("v1beta1"), schemas)
    assert refused.value.reason == "ForeignObject" and "Cluster/edge1" in refused.value.message
    with pytest.raises(PermanentError) as not_deleted:
        await delete_cluster(capi_client, "edge1", NS, pr_id=PR)
    assert not_deleted.value.reason == "ForeignObject"
    after = await capi_client.get("cluster.x-k8s.io/v1beta1", "Cluster", "edge1", NS)
    assert after is not None and after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["metadata"].get("deletionTimestamp") is None
    managers = {m["manager"] for m in after["metadata"].get("managedFields") or []}
    assert "focom-o2ims" not in managers
    # The objects rendered before the Cluster (applied in dependency order) carry our PR id, so a later
    # delete of our PR cleans up exactly those and never the foreign Cluster.
    await capi_client.delete("cluster.x-k8s.io/v1beta1", "Cluster", "edge1", NS)
    await wait_for_object(capi_client, "cluster.x-k8s.io/v1beta1", "Cluster", "edge1", NS, lambda o: o is None)
    assert await delete_cluster(capi_client, "edge1", NS, pr_id=PR) is True
    assert await _versions(capi_client, "edge1", "v1beta1") == {}


async def test_another_prs_cluster_of_the_same_name_is_not_ours(capi_client: KubeClient, schemas: CrdSchemas) -> None:
    await render_validate_apply(capi_client, _spec(1, 1), _options("v1beta1", pr_id="other-pr"), schemas)
    with pytest.raises(PermanentError, match="not ours"):
        await render_validate_apply(capi_client, _spec(1, 1), _options("v1beta1"), schemas)
    with pytest.raises(PermanentError, match="not ours"):
        await delete_cluster(capi_client, "edge1", NS, pr_id=PR)
    assert not await cluster_gone(capi_client, "edge1", NS)
