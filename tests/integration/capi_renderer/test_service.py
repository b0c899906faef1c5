"""The capi_renderer job handler on a real bus against the emulator: apply, re-apply, bad spec, delete."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.capi_renderer.domain import RenderOptions
from services.capi_renderer.handlers import Deps, make_handler
from shared.bus import Bus
from shared.crd_schema import CrdSchemas
from shared.dispatch import dispatch
from shared.kube import KubeClient
from shared.messages import Envelope, decode
from shared.models import ClusterSpec, HostRef
from shared.objects import PR_ID_LABEL as PR_LABEL
from shared.payloads import CapiApplied, CapiDeleted, CapiFailed, CapiJob
from shared.subjects import CAPI_JOBS_CONSUMER, capi_event, capi_job

PR1 = "00000000-0000-4000-8000-000000000001"
PR2 = "00000000-0000-4000-8000-000000000002"
PR3 = "00000000-0000-4000-8000-000000000003"

REPO = Path(__file__).resolve().parents[3]
CNI = REPO / "examples" / "cni" / "bridge-pool.yaml"


def _spec(workers: int = 2, *, vip: str = "10.0.0.250") -> ClusterSpec:
    hosts = [HostRef(host_id=f"h{i}", host_name=f"host-{i}", host_ip=f"10.0.0.{10 + i}") for i in range(1 + workers)]
    return ClusterSpec(
        name="edge1",
        k8s_version="1.31.2",
        control_plane=(hosts[0],),
        workers=tuple(hosts[1:]),
        vip=vip,
        cni="bridge-pool",
    )


@pytest.fixture
async def client(kubeconfig: Path) -> KubeClient:
    c = await KubeClient.from_kubeconfig(kubeconfig)
    yield c  # type: ignore[misc]
    await c.close()


async def _next_event(sub: object) -> Envelope:
    msg = await sub.next_msg(timeout=20)  # type: ignore[attr-defined]
    return decode(msg.data)


async def test_jobs_are_applied_idempotently_and_deleted(
    bus: Bus, client: KubeClient, served_schemas: CrdSchemas
) -> None:
    deps = Deps(client=client, options=RenderOptions(cni_manifests={"bridge-pool": CNI}), schemas=served_schemas)
    await bus.consumer(CAPI_JOBS_CONSUMER, dispatch(make_handler(deps))).start()
    events = await bus.nc.subscribe(capi_event(PR1))

    await bus.emit(capi_job(PR1), CapiJob(pr_id=PR1, action="apply", spec=_spec()), correlation_id="fpr-a")
    applied = await _next_event(events)
    assert isinstance(applied.payload, CapiApplied) and applied.correlation_id == "fpr-a"
    kinds = [o.kind for o in applied.payload.objects]
    assert kinds[-1] == "Cluster" and "MachineDeployment" in kinds and "ClusterResourceSet" in kinds
    cluster = await client.get("cluster.x-k8s.io/v1beta1", "Cluster", "edge1", "default")
    assert cluster is not None and cluster["metadata"]["labels"][PR_LABEL] == PR1
    before = {
        o.name + o.kind: (await client.get(o.api_version, o.kind, o.name, o.namespace))["metadata"]["resourceVersion"]  # type: ignore[index]
        for o in applied.payload.objects
    }

    # A second, distinct job with the same spec changes nothing on the server.
    await bus.emit(capi_job(PR1), CapiJob(pr_id=PR1, action="apply", spec=_spec()))
    again = await _next_event(events)
    assert isinstance(again.payload, CapiApplied)
    after = {
        o.name + o.kind: (await client.get(o.api_version, o.kind, o.name, o.namespace))["metadata"]["resourceVersion"]  # type: ignore[index]
        for o in again.payload.objects
    }
    assert after == before

    await bus.emit(capi_job(PR1), CapiJob(pr_id=PR1, action="delete", spec=_spec()))
    deleted = await _next_event(events)
    assert isinstance(deleted.payload, CapiDeleted) and deleted.payload.cluster == "edge1"
    # Without CAPI controllers nothing holds a finalizer, so the Cluster is gone at once.
    for _ in range(100):
        if await client.get("cluster.x-k8s.io/v1beta1", "Cluster", "edge1", "default") is None:
            break
        await asyncio.sleep(0.05)  # waiting for the emulator's garbage collection, bounded
    assert await client.get("cluster.x-k8s.io/v1beta1", "Cluster", "edge1", "default") is None
    await events.unsubscribe()


async def test_unknown_cni_is_a_capi_failed_event_and_nothing_is_applied(
    bus: Bus, client: KubeClient, served_schemas: CrdSchemas
) -> None:
    deps = Deps(client=client, options=RenderOptions(), schemas=served_schemas)
    await bus.consumer(CAPI_JOBS_CONSUMER, dispatch(make_handler(deps))).start()
    events = await bus.nc.subscribe(capi_event(PR2))
    await bus.emit(capi_job(PR2), CapiJob(pr_id=PR2, action="apply", spec=_spec()))
    failed = await _next_event(events)
    assert isinstance(failed.payload, CapiFailed)
    assert "bridge-pool" in failed.payload.message
    items, _ = await client.list("cluster.x-k8s.io/v1beta1", "Cluster", "default")
    assert items == []
    await events.unsubscribe()


async def test_apply_scale_and_delete_jobs_never_touch_a_hand_made_cluster_of_the_same_name(
    bus: Bus, client: KubeClient, served_schemas: CrdSchemas
) -> None:
    theirs = {
        "apiVersion": "cluster.x-k8s.io/v1beta1",
        "kind": "Cluster",
        "metadata": {"name": "edge1", "namespace": "default", "labels": {"team": "core"}},
        "spec": {"paused": True},
    }
    await client.apply(theirs, field_manager="kubectl")
    before = await client.get("cluster.x-k8s.io/v1beta1", "Cluster", "edge1", "default")
    assert before is not None
    deps = Deps(client=client, options=RenderOptions(cni_manifests={"bridge-pool": CNI}), schemas=served_schemas)
    await bus.consumer(CAPI_JOBS_CONSUMER, dispatch(make_handler(deps))).start()
    events = await bus.nc.subscribe(capi_event(PR3))
    for action in ("apply", "scale", "delete"):
        await bus.emit(capi_job(PR3), CapiJob(pr_id=PR3, action=action, spec=_spec()))  # type: ignore[arg-type]
        failed = await _next_event(events)
        assert isinstance(failed.payload, CapiFailed), action
        assert failed.payload.reason == "ForeignObject" and "Cluster" in failed.payload.message, action
    after = await client.get("cluster.x-k8s.io/v1beta1", "Cluster", "edge1", "default")
    assert after is not None and after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    await events.unsubscribe()
