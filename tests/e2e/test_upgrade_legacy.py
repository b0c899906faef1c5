"""A cluster an earlier release rendered (unversioned machine templates) is neither rolled nor stuck.

Before versioned machine templates, the renderer named one ByoMachineTemplate per role like its owner
(``<cluster>-control-plane``, ``<cluster>-md-0``) with a selector of host ids alone. Here the earlier release
is played by the test: the services run without capi_renderer until o2ims asks it to apply the new cluster;
the test applies that cluster the earlier way, then starts capi_renderer, which takes the job over as an
upgraded renderer would. The cluster is then scaled up (the added host is prepared with the version label,
which the legacy selector does not need) without any rollout, and upgraded, which moves it to versioned
templates at the new version.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox.capi import CapiSimulators
from sandbox.hosts import SandboxHostPool
from services.capi_renderer.domain import RenderOptions, TemplateChoice
from services.capi_renderer.render import render_cluster
from shared.bus import Bus
from shared.kube import KubeClient
from shared.objects import PR_ID_LABEL
from shared.payloads import CapiJob
from shared.subjects import ALL_FOCOM_STATUS, ALL_O2IMS_STATUS, capi_job
from tests.e2e.test_focom_flow import CNI, CNI_FILE, environments
from tests.e2e.test_upgrade import CORE, FROM, INFRA, KCP, TO, System, assert_rolled, upgrade_to
from tests.integration.focom.support import Recorder
from tests.integration.services.procs import ServiceProcess

pytestmark = pytest.mark.e2e

#: One control plane and two workers; host-004 is added by the scale, host-005 is the upgrade's spare.
LAYOUT = ("lg1", ["host-001"], ["host-002", "host-003"])
LEGACY = TemplateChoice(control_plane_legacy=True, workers_legacy=True)


def earlier_release_render(job: CapiJob) -> list[dict[str, Any]]:
    """The cluster as the earlier release rendered it: unversioned templates, host-id selectors, no strategies."""
    options = RenderOptions(cni_manifests={CNI: CNI_FILE}, extra_labels={PR_ID_LABEL: job.pr_id})
    objects = render_cluster(job.spec, options, templates=LEGACY)
    for obj in objects:
        for key in ("rolloutStrategy", "strategy"):
            (obj.get("spec") or {}).pop(key, None)
    return objects


@pytest.fixture
async def legacy(
    bus: Bus,
    nats_url: str,
    kubeconfig: Path,
    capi_sim: CapiSimulators,
    capi_client: KubeClient,
    sandbox_hosts: Callable[..., Awaitable[SandboxHostPool]],
    tmp_path: Path,
) -> AsyncIterator[System]:
    pool = await sandbox_hosts(count=5)
    statuses, jobs = Recorder(), Recorder()
    await bus.js.subscribe(ALL_FOCOM_STATUS, cb=statuses.on_msg, ordered_consumer=True)
    await bus.js.subscribe(ALL_O2IMS_STATUS, cb=statuses.on_msg, ordered_consumer=True)
    inventory = tmp_path / "input.json"
    envs = environments(nats_url, pool, kubeconfig, inventory)
    procs: dict[str, ServiceProcess] = {}
    s = System(bus, pool, capi_client, statuses, inventory, LAYOUT[0], list(LAYOUT[1]), list(LAYOUT[2]), procs, envs)
    await bus.js.subscribe(capi_job(s.pr), cb=jobs.on_msg, ordered_consumer=True)
    s.write_inventory(FROM)
    try:
        for name, env in envs.items():
            if name != "capi_renderer":
                procs[name] = await ServiceProcess(f"services.{name}", env).start()
        for proc in procs.values():
            await proc.wait_event("service_ready", timeout=60)
        await s.submit()
        # Hosts prepared; o2ims asks to apply the cluster: the earlier release does it.
        job: CapiJob = (await jobs.wait(lambda: jobs.payloads(CapiJob), 180))[0]
        assert job.action == "apply"
        for obj in earlier_release_render(job):
            await capi_client.apply(obj, field_manager="focom-o2ims", force=True)
        # The upgraded renderer takes the job (and every later one) over.
        procs["capi_renderer"] = await ServiceProcess("services.capi_renderer", envs["capi_renderer"]).start()
        await procs["capi_renderer"].wait_event("service_ready", timeout=60)
        created = await s.settled()
        assert created.phase == "Synced", created.message
        yield s
    finally:
        for proc in procs.values():
            await proc.kill()


async def machines_by_host(system: System) -> dict[str, str]:
    return {system.host_of(m["status"]["nodeRef"]["name"]): m["metadata"]["name"] for m in await system.machines()}


async def template_names(system: System) -> list[str]:
    templates, _ = await system.client.list(INFRA, "ByoMachineTemplate", "default")
    return sorted(t["metadata"]["name"] for t in templates)


async def test_a_cluster_of_the_earlier_release_scales_without_a_rollout_then_upgrades(legacy: System) -> None:
    system = legacy
    assert await template_names(system) == ["lg1-control-plane", "lg1-md-0"]  # the first apply kept them
    before = await machines_by_host(system)
    assert set(before) == {"host-001", "host-002", "host-003"}

    # Scale up: the added host is prepared (with the version label), and claimed through the legacy selector.
    count = len(system.fpr())
    system.workers.append("host-004")
    system.write_inventory(FROM)
    await system.submit(operation="scale")
    scaled = await system.settled(count)
    assert scaled.phase == "Synced", scaled.message
    after = await machines_by_host(system)
    assert {h: after[h] for h in before} == before  # no rollout: every Machine of the untouched hosts kept
    assert set(after) == {*before, "host-004"}
    assert await template_names(system) == ["lg1-control-plane", "lg1-md-0"]
    kcp = await system.client.get(KCP, "KubeadmControlPlane", "lg1-control-plane", "default")
    md = await system.client.get(CORE, "MachineDeployment", "lg1-md-0", "default")
    assert kcp is not None and md is not None
    assert kcp["spec"]["machineTemplate"]["infrastructureRef"]["name"] == "lg1-control-plane"
    assert md["spec"]["template"]["spec"]["infrastructureRef"]["name"] == "lg1-md-0"
    assert md["spec"]["replicas"] == 3 and md["status"]["updatedReplicas"] == 3
    # The added host registered with the version label hostprep now gives every agent; the legacy selector asks
    # for its host id only, and its ByoHost is claimed by the cluster.
    (added,), _ = await system.client.list(
        INFRA, "ByoHost", "default", label_selector="o2ims.oran.org/host-id=host-004"
    )
    assert added["metadata"]["labels"]["o2ims.oran.org/k8s-version"] == FROM
    assert added["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"] == "lg1" and added["status"]["machineRef"]
    assert system.pr_states()[-1].state == "fulfilled"

    # Upgrade: a real version change moves the cluster to versioned templates (the spare, host-005, takes the
    # single control plane; the workers are re-prepared with the new label as the rollout frees them).
    synced = await upgrade_to(system, TO)
    assert synced.phase == "Synced", synced.message
    await assert_rolled(system, {"host-005", "host-002", "host-003", "host-004"})
    assert await template_names(system) == ["lg1-control-plane-v1-31-1", "lg1-md-0-v1-31-1"]
