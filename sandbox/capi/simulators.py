"""Runs the simulated CAPI core, KCP, CABPK, CRS and BYOH controllers against one API server.

``CapiSimulators(client, options)`` is for in-process use (tests); ``run_simulators``
is the entry point of ``python -m sandbox.kubeapi --simulate-capi``.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import structlog

from sandbox.capi.bootstrapkubeconfig import BootstrapKubeconfigController
from sandbox.capi.byocluster import ByoClusterController
from sandbox.capi.byomachine import ByoMachineController
from sandbox.capi.cluster import ClusterController
from sandbox.capi.crs import ClusterResourceSetController
from sandbox.capi.identity import BYOH_ACCOUNT, BYOH_NAMESPACE, service_account_client
from sandbox.capi.kcp import KubeadmControlPlaneController
from sandbox.capi.machine import MachineController
from sandbox.capi.machinedeployment import MachineDeploymentController
from sandbox.capi.options import ADDONS_GROUP, CONTROLPLANE_GROUP, INFRA_VERSION, SimOptions
from sandbox.capi.runtime import Controller, SimContext
from shared.kube import KubeClient

log = structlog.get_logger(__name__)

_CONTROLLERS: tuple[type[Controller], ...] = (
    BootstrapKubeconfigController,
    ByoClusterController,
    ClusterController,
    KubeadmControlPlaneController,
    MachineDeploymentController,
    MachineController,
    ByoMachineController,
    ClusterResourceSetController,
)


class CapiSimulators:
    """The whole set of simulated controllers; ``start()`` returns once every informer has listed."""

    def __init__(self, client: KubeClient, options: SimOptions | None = None, *, sync_timeout: float = 30.0) -> None:
        self.options = options or SimOptions()
        self.ctx = SimContext(client, self.options)
        self._sync_timeout = sync_timeout
        self._task: asyncio.Task[None] | None = None
        core = self.options.core()
        for api_version, kind in (
            (core, "Cluster"),
            (core, "Machine"),
            (core, "MachineDeployment"),
            (self.options.core(CONTROLPLANE_GROUP), "KubeadmControlPlane"),
            (self.options.core(ADDONS_GROUP), "ClusterResourceSet"),
            (INFRA_VERSION, "ByoCluster"),
            (INFRA_VERSION, "ByoMachine"),
            (INFRA_VERSION, "ByoHost"),
            (INFRA_VERSION, "BootstrapKubeconfig"),
        ):
            self.ctx.add_informer(api_version, kind)
        self.controllers = [cls(self.ctx) for cls in _CONTROLLERS]
        self._byoh_client: KubeClient | None = None

    @property
    def client(self) -> KubeClient:
        return self.ctx.client

    async def start(self) -> None:
        if self._task is not None:
            return
        if self._byoh_client is None:
            # The BYOH controllers write as BYOH's controller manager (the ByoHost webhook admits only it).
            self._byoh_client = await service_account_client(self.client, BYOH_NAMESPACE, BYOH_ACCOUNT)
            self.ctx.set_client("byoh", self._byoh_client)
        self._task = asyncio.create_task(self._run(), name="capi-simulators")

        async def all_synced() -> None:
            for informer in self.ctx.informers:
                await informer.synced.wait()

        synced = asyncio.create_task(all_synced())
        done, _ = await asyncio.wait(
            [self._task, synced], timeout=self._sync_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        synced.cancel()
        if self._task in done:
            task, self._task = self._task, None
            task.result()
            raise RuntimeError("simulated CAPI controllers stopped while starting")
        if not all(i.synced.is_set() for i in self.ctx.informers):
            await self.stop()
            raise TimeoutError("simulated CAPI controllers could not list their kinds")
        log.info(
            "capi_simulators_started",
            core_version=self.options.core_version,
            namespaces=self.options.namespaces or "all",
        )

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for informer in self.ctx.informers:
                group.create_task(informer.run(), name=f"informer-{informer.kind}")
            for controller in self.controllers:
                group.create_task(controller.run(), name=f"controller-{type(controller).__name__}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._byoh_client is not None:
            self.ctx.set_client("byoh", self.client)
            await self._byoh_client.close()
            self._byoh_client = None

    async def __aenter__(self) -> CapiSimulators:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def run_simulators(
    kubeconfig_path: Path, *, stop: asyncio.Event, options: SimOptions | None = None, **overrides: Any
) -> None:
    """Run the simulators until ``stop`` is set (``overrides`` are SimOptions fields)."""
    if overrides:
        options = SimOptions(**{**(options.model_dump() if options else {}), **overrides})
    async with await KubeClient.from_kubeconfig(kubeconfig_path) as client:
        sims = CapiSimulators(client, options)
        await sims.start()
        try:
            await stop.wait()
        finally:
            await sims.stop()
