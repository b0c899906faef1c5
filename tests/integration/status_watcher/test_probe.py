"""The optional workload probe: ``cluster.ready`` waits until the workload API lists every node Ready.

The sandbox has no workload cluster, so the test serves a minimal one (discovery + ``/api/v1/nodes``)
and points the ``c1-kubeconfig`` Secret at it before the simulated KCP would write its own.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml
from aiohttp import web

from sandbox.capi import CapiSimulators
from services.status_watcher.probe import WorkloadProbe
from shared.bus import Bus
from shared.kube import KubeClient
from tests.integration.status_watcher.support import RunningWatcher, StreamReader
from tests.integration.status_watcher.test_transitions import C1, Hosts, apply_cluster, transitions


class WorkloadApi:
    def __init__(self) -> None:
        self.ready: dict[str, bool] = {}
        self.requests = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/v1", self._discovery)
        app.router.add_get("/api/v1/nodes", self._nodes)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _discovery(self, _req: web.Request) -> web.Response:
        return web.json_response(
            {
                "kind": "APIResourceList",
                "groupVersion": "v1",
                "resources": [
                    {"name": "nodes", "singularName": "node", "kind": "Node", "namespaced": False, "verbs": ["list"]}
                ],
            }
        )

    async def _nodes(self, req: web.Request) -> web.Response:
        assert req.headers.get("Authorization") == "Bearer workload-token"
        self.requests += 1
        items = [
            {"metadata": {"name": name}, "status": {"conditions": [{"type": "Ready", "status": str(ok)}]}}
            for name, ok in sorted(self.ready.items())
        ]
        return web.json_response(
            {"kind": "NodeList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}
        )


@pytest.fixture
async def workload() -> AsyncIterator[WorkloadApi]:
    api = WorkloadApi()
    await api.start()
    yield api
    await api.stop()


def kubeconfig_secret(port: int) -> dict[str, Any]:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "c1-admin@c1",
        "clusters": [{"name": "c1", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "c1-admin", "user": {"token": "workload-token"}}],
        "contexts": [{"name": "c1-admin@c1", "context": {"cluster": "c1", "user": "c1-admin"}}],
    }
    value = base64.b64encode(yaml.safe_dump(config).encode()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "cluster.x-k8s.io/secret",
        "data": {"value": value},
        "metadata": {
            "name": "c1-kubeconfig",
            "namespace": "default",
            "labels": {"cluster.x-k8s.io/cluster-name": "c1"},
        },
    }


async def test_cluster_ready_waits_for_every_workload_node_ready(
    capi_sim: CapiSimulators,
    fake_hosts: Hosts,
    capi_client: KubeClient,
    kubeconfig: Any,
    bus: Bus,
    workload: WorkloadApi,
) -> None:
    workload.ready = {"host-1": True, "host-2": True, "host-3": False}
    await capi_client.create(kubeconfig_secret(workload.port))
    stream = await StreamReader(bus).start()
    client = await KubeClient.from_kubeconfig(kubeconfig)
    probing = RunningWatcher(kubeconfig, bus, probe=WorkloadProbe(client, timeout=5.0), probe_interval=0.2)
    try:
        await probing.start()
        await fake_hosts(3)
        await apply_cluster(capi_client)
        held = await stream.wait_summary(C1, lambda s: (s.waiting_for or "").startswith("workload probe:"))
        assert held.waiting_for == "workload probe: nodes not Ready: host-3" and not held.ready
        assert transitions(stream, "cluster.ready") == []

        workload.ready["host-3"] = True
        await stream.wait_for(lambda _: transitions(stream, "cluster.ready"))
        assert len(transitions(stream, "cluster.ready")) == 1
        assert workload.requests >= 2
    finally:
        await probing.stop()
        await client.close()
        await stream.stop()
