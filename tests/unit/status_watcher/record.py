"""Regenerates the recorded object sequences under ``fixtures/`` from the sandbox simulators.

    .venv/bin/python -m tests.unit.status_watcher.record

Each fixture is the ordered list of watch events (kind, type, object) of every kind the
watcher reads, while hosts register and one cluster goes from creation to ready (or to a
bootstrap failure). Secrets are reduced to metadata, managedFields dropped, as the watcher's
cache does; the tests replay them through the cache and the pure reducer.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from sandbox.capi import CapiSimulators, SimOptions, register_fake_hosts
from sandbox.kubeapi import KubeApiServer
from sandbox.kubeapi.paths import default_crd_dirs
from shared.kube import KubeClient, WatchExpired
from shared.objects import PR_ID_LABEL
from tests.integration.capi.clusterset import cluster_set

HERE = Path(__file__).parent / "fixtures"
INFRA = "infrastructure.cluster.x-k8s.io/v1beta1"


def _kinds(core: str) -> list[tuple[str, str, str | None]]:
    return [
        (f"cluster.x-k8s.io/{core}", "Cluster", None),
        (f"controlplane.cluster.x-k8s.io/{core}", "KubeadmControlPlane", None),
        (f"cluster.x-k8s.io/{core}", "MachineDeployment", None),
        (f"cluster.x-k8s.io/{core}", "Machine", None),
        (f"addons.cluster.x-k8s.io/{core}", "ClusterResourceSet", None),
        (INFRA, "ByoHost", None),
        ("v1", "Secret", "cluster.x-k8s.io/cluster-name"),
    ]


def _clean(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in obj["metadata"].items() if k != "managedFields"}
    if kind == "Secret":
        return {"apiVersion": "v1", "kind": "Secret", "type": obj.get("type"), "metadata": meta}
    return {**obj, "metadata": meta}


async def _record(client: KubeClient, kinds: list[tuple[str, str, str | None]], out: list[Any]) -> None:
    async def one(api_version: str, kind: str, selector: str | None) -> None:
        _, rv = await client.list(api_version, kind, "default", label_selector=selector)
        while True:
            try:
                async for ev in client.watch(
                    api_version, kind, "default", resource_version=rv, label_selector=selector, timeout_seconds=60
                ):
                    rv = ev.object["metadata"]["resourceVersion"]
                    if ev.type != "BOOKMARK":
                        out.append((int(rv), kind, ev.type, _clean(kind, ev.object)))
            except WatchExpired:
                return

    await asyncio.gather(*(one(*k) for k in kinds))


async def _wait_ready(client: KubeClient, core: str, workers: int) -> None:
    while True:
        items, _ = await client.list(f"cluster.x-k8s.io/{core}", "Machine", "default")
        crs, _ = await client.list(f"addons.cluster.x-k8s.io/{core}", "ClusterResourceSet", "default")
        applied = (
            any(
                c.get("type") == "ResourcesApplied" and c.get("status") == "True"
                for c in (crs[0].get("status") or {}).get("conditions") or []
            )
            if crs
            else False
        )
        running = [m for m in items if (m.get("status") or {}).get("phase") == "Running"]
        if len(running) == 1 + workers and applied:
            return
        await asyncio.sleep(0.2)


async def _wait_failed(client: KubeClient) -> None:
    while True:
        hosts, _ = await client.list(INFRA, "ByoHost", "default")
        for h in hosts:
            for c in (h.get("status") or {}).get("conditions") or []:
                if c.get("reason") == "CloudInitExecutionFailed":
                    return
        await asyncio.sleep(0.2)


async def record(name: str, core: str, options: SimOptions, expect: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = KubeApiServer(crd_dirs=default_crd_dirs())
        await server.start()
        path = server.write_kubeconfig(Path(tmp) / "kubeconfig")
        client = await KubeClient.from_kubeconfig(path)
        sim_client = await KubeClient.from_kubeconfig(path)
        sims = CapiSimulators(sim_client, options)
        await sims.start()
        events: list[Any] = []
        recorder = asyncio.create_task(_record(client, _kinds(core), events))
        await asyncio.sleep(0.5)
        agents = await register_fake_hosts(client, 3, "default", workdir=Path(tmp) / "hosts")
        for obj in cluster_set(core=core):
            obj.setdefault("metadata", {})
            if obj["kind"] == "Cluster":
                obj["metadata"]["labels"][PR_ID_LABEL] = "0d9c3c4e-5b6a-5f7e-8a9b-0c1d2e3f4a5b"
            await client.apply(obj, field_manager="record")
        await asyncio.wait_for(_wait_ready(client, core, 2) if expect == "ready" else _wait_failed(client), 60)
        await asyncio.sleep(1.0)
        recorder.cancel()
        await asyncio.gather(recorder, return_exceptions=True)
        for agent in agents:
            await agent.stop()
        await sims.stop()
        await sim_client.close()
        await client.close()
        await server.stop()
    events.sort(key=lambda e: e[0])
    data = [{"kind": k, "type": t, "object": o} for _, k, t, o in events]
    (HERE / f"{name}.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"{name}: {len(data)} events")


async def main() -> None:
    HERE.mkdir(exist_ok=True)
    await record("provision_v1beta1", "v1beta1", SimOptions(core_version="v1beta1"), "ready")
    await record("provision_v1beta2", "v1beta2", SimOptions(core_version="v1beta2"), "ready")
    await record(
        "bootstrap_failure_v1beta1",
        "v1beta1",
        SimOptions(core_version="v1beta1", fail_bootstrap_hosts=frozenset({"host-3"})),
        "failed",
    )


if __name__ == "__main__":
    asyncio.run(main())
