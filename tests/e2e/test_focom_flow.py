"""focom end to end on the sandbox: the five services as processes, the API emulator, simulated CAPI, SSH hosts.

Per mode (allClusters, clusterNames, template): create → Synced, scale → Synced with the new workers,
delete → Deleted with every lease released and no CAPI object left. Two requests competing for one
host: exactly one is accepted. A FocomProvisioningRequest CR applied to the emulator ends Synced.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.capi import CapiSimulators
from sandbox.hosts import SandboxHostPool
from shared.bus import Bus
from shared.kube import KubeClient
from shared.leases import HostLeases
from shared.objects import PR_ID_LABEL
from shared.payloads import FocomRequest, FprStatus, MessageFailed, pr_id_for
from shared.subjects import ALL_FOCOM_STATUS, BUCKET_HOSTS, FOCOM_REQUESTS
from tests.integration.focom.support import Recorder, wait_cr
from tests.integration.services.procs import ServiceProcess

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
K8S_VERSION = "v1.30.2"
CNI = "bridge-pool"
CNI_FILE = REPO / "examples" / "cni" / "bridge-pool.yaml"
CAPI_KINDS = [
    ("cluster.x-k8s.io/v1beta1", "Cluster"),
    ("cluster.x-k8s.io/v1beta1", "MachineDeployment"),
    ("controlplane.cluster.x-k8s.io/v1beta1", "KubeadmControlPlane"),
    ("infrastructure.cluster.x-k8s.io/v1beta1", "ByoCluster"),
]


@dataclass
class System:
    bus: Bus
    pool: SandboxHostPool
    client: KubeClient
    statuses: Recorder
    procs: dict[str, ServiceProcess]
    inventory: Path

    async def submit(self, name: str, **fields: Any) -> None:
        await self.bus.emit(FOCOM_REQUESTS, FocomRequest(name=name, **fields), correlation_id=name)

    def last(self, name: str) -> FprStatus | None:
        got = [p for p in self.statuses.payloads(FprStatus) if p.name == name]
        return got[-1] if got else None

    async def phase(self, name: str, phase: str, timeout: float = 150.0) -> FprStatus:
        def reached() -> FprStatus | None:
            status = self.last(name)
            if status is not None and status.phase == "Failed" and phase != "Failed":
                raise AssertionError(f"{name} failed: {status.message}")
            return status if status is not None and status.phase == phase else None

        found: FprStatus = await self.statuses.wait(reached, timeout)
        return found

    def refusals(self, name: str) -> list[MessageFailed]:
        return [
            e.payload for s, e in self.statuses.items if isinstance(e.payload, MessageFailed) and s.endswith(f".{name}")
        ]

    async def capi_objects(self, pr_id: str) -> list[str]:
        found = []
        for api_version, kind in CAPI_KINDS:
            items, _ = await self.client.list(api_version, kind, "default", label_selector=f"{PR_ID_LABEL}={pr_id}")
            found += [f"{kind}/{i['metadata']['name']}" for i in items]
        return found

    async def leases(self) -> dict[str, str]:
        return await HostLeases(await self.bus.kv(BUCKET_HOSTS)).all()


def inventory(pool: SandboxHostPool) -> dict[str, Any]:
    """Three clusters of one control-plane host and one worker each; three spare hosts."""
    hosts = [{k: v for k, v in h.items() if v is not None} for h in pool.inventory_hosts()]
    ids = [h["host_id"] for h in hosts]
    clusters = [
        {
            "cluster_name": f"c{i + 1}",
            "cluster_masters": [{"host_id": ids[2 * i]}],
            "cluster_workers": [{"host_id": ids[2 * i + 1]}],
            "control_plane_endpoint": f"127.0.9.{i + 1}",
        }
        for i in range(3)
    ]
    return {"k8s_version": K8S_VERSION, "hosts": hosts, "clusters": clusters}


def environments(nats_url: str, pool: SandboxHostPool, kubeconfig: Path, path: Path) -> dict[str, dict[str, str]]:
    common = {"O2_NATS_URL": nats_url}
    return {
        "focom": {
            **common,
            "O2_FOCOM_INVENTORY_PATH": str(path),
            "O2_FOCOM_DEFAULT_CNI": CNI,
            "O2_FOCOM_SSH_KEY_DIR": str(pool.client_key_path.parent),
            "O2_FOCOM_KUBE_ENABLED": "true",
            "O2_FOCOM_KUBECONFIG": str(kubeconfig),
        },
        "o2ims": {**common},
        "hostprep": {
            **common,
            "O2_HOSTPREP_INVENTORY_FILE": str(path),
            "O2_HOSTPREP_SSH_KEY_DIR": str(pool.client_key_path.parent),
            "O2_HOSTPREP_KNOWN_HOSTS_FILE": str(pool.known_hosts_path),
            "O2_HOSTPREP_KUBECONFIG": str(kubeconfig),
            "O2_HOSTPREP_AGENT_BINARY_FILE": str(pool.agent_binary_path),
            "O2_HOSTPREP_CONNECT_TIMEOUT": "5",
            "O2_HOSTPREP_REGISTRATION_TIMEOUT": "60",
        },
        "capi_renderer": {
            **common,
            "O2_CAPI_RENDERER_KUBECONFIG": str(kubeconfig),
            "O2_CAPI_RENDERER_CNI_MANIFESTS": json.dumps({CNI: str(CNI_FILE)}),
        },
        "status_watcher": {**common, "O2_STATUS_WATCHER_KUBECONFIG": str(kubeconfig)},
    }


@pytest.fixture
async def system(
    bus: Bus,
    nats_url: str,
    kubeconfig: Path,
    capi_sim: CapiSimulators,
    capi_client: KubeClient,
    sandbox_hosts: Callable[..., Awaitable[SandboxHostPool]],
    tmp_path: Path,
) -> AsyncIterator[System]:
    pool = await sandbox_hosts(count=9)
    path = tmp_path / "input.json"
    path.write_text(json.dumps(inventory(pool), indent=1))
    statuses = Recorder()
    await bus.js.subscribe(ALL_FOCOM_STATUS, cb=statuses.on_msg, ordered_consumer=True)
    procs: dict[str, ServiceProcess] = {}
    try:
        for name, env in environments(nats_url, pool, kubeconfig, path).items():
            procs[name] = await ServiceProcess(f"services.{name}", env).start()
        for proc in procs.values():
            await proc.wait_event("service_ready", timeout=60)
        yield System(bus, pool, capi_client, statuses, procs, path)
    finally:
        for proc in procs.values():
            await proc.kill()


MODES: dict[str, dict[str, Any]] = {
    "allClusters": {"allClusters": True},
    "clusterNames": {"clusterNames": ("c2",)},
    "template": {
        "templateName": "byoh-workload-cluster",
        "templateParameters": {
            "clusterName": "t1",
            "k8sVersion": K8S_VERSION,
            "controlPlaneEndpoint": "127.0.9.9",
            "hosts": {"masters": [{"hostId": "host-007"}], "workers": [{"hostId": "host-008"}]},
        },
    },
}
CLUSTERS = {"allClusters": ["c1", "c2", "c3"], "clusterNames": ["c2"], "template": ["t1"]}


def _selection(mode: str) -> dict[str, Any]:
    if mode == "template":
        return {"templateName": "byoh-workload-cluster", "templateParameters": {"clusterName": "t1"}}
    return MODES[mode]


@pytest.mark.parametrize("mode", list(MODES))
async def test_create_scale_delete(system: System, mode: str) -> None:
    name = f"e2e-{mode.lower()}"
    await system.submit(name, **MODES[mode])
    synced = await system.phase(name, "Synced")
    assert sorted(c.cluster for c in synced.children) == CLUSTERS[mode]
    assert all(c.state == "fulfilled" for c in synced.children)
    pr_ids = {c: pr_id_for(name, c) for c in CLUSTERS[mode]}
    for pr in pr_ids.values():
        assert any(o.startswith("Cluster/") for o in await system.capi_objects(pr))

    # Scale: the first cluster gets one more worker, picked from the free inventory hosts.
    first = CLUSTERS[mode][0]
    await system.submit(
        name,
        operation="scale",
        targetWorkerCount=2,
        **(_selection(mode) if mode != "allClusters" else {"clusterNames": (first,)}),
    )
    await system.phase(name, "Scaling")
    await system.phase(name, "Synced")
    workers = [h for h, owner in (await system.leases()).items() if owner == pr_ids[first]]
    assert len(workers) == 3  # one control-plane host and two workers
    md, _ = await system.client.list(
        "cluster.x-k8s.io/v1beta1", "MachineDeployment", "default", label_selector=f"{PR_ID_LABEL}={pr_ids[first]}"
    )
    assert md and md[0]["spec"]["replicas"] == 2

    await system.submit(name, operation="delete", **_selection(mode))
    await system.phase(name, "Deleted")
    leases = await system.leases()
    assert not set(leases.values()) & set(pr_ids.values()), leases
    for pr in pr_ids.values():
        assert await system.capi_objects(pr) == []


async def test_two_requests_for_one_host_exactly_one_accepted(system: System) -> None:
    await asyncio.gather(system.submit("left", clusterNames=("c3",)), system.submit("right", clusterNames=("c3",)))

    def decided() -> tuple[str, str] | None:
        lost = [n for n in ("left", "right") if system.refusals(n)]
        won = [n for n in ("left", "right") if system.last(n) is not None]
        return (won[0], lost[0]) if len(lost) == 1 and len(won) == 1 else None

    winner, loser = await system.statuses.wait(decided, 60)
    assert system.refusals(loser)[0].reason == "HostLeased"
    await system.phase(winner, "Synced")
    assert set((await system.leases()).values()) == {pr_id_for(winner, "c3")}


async def test_cr_applied_to_the_emulator_ends_synced(system: System) -> None:
    cr = yaml.safe_load((REPO / "examples" / "focom-cluster-names.yaml").read_text())
    cr["metadata"]["name"] = "cr-e2e"
    cr["spec"] = {"clusterNames": ["c1"]}
    await system.client.apply(cr, field_manager="kubectl")
    await system.phase("cr-e2e", "Synced")
    obj = await wait_cr(system.client, "cr-e2e", lambda o: ((o or {}).get("status") or {}).get("phase") == "Synced")
    assert obj is not None and [c["state"] for c in obj["status"]["children"]] == ["fulfilled"]
