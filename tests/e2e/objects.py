"""Every object the Kubernetes API emulator held, by name: the record behind "nothing was created twice".

``ObjectRecorder`` lists and watches each kind that capi_renderer applies and that CAPI and hostprep create,
and keeps every uid it ever saw per (kind, namespace, name), plus the labels; a name seen with two uids was
deleted and created again. It re-lists after a watch ends, a 410 or an error (e.g. while the emulator
restarts), so an object created and deleted within such a gap alone could be missed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from shared.kube import KubeClient, WatchExpired

#: Kinds whose objects must each be created once: what capi_renderer applies, what CAPI and hostprep create.
RECORDED_KINDS = (
    ("cluster.x-k8s.io/v1beta1", "Cluster"),
    ("cluster.x-k8s.io/v1beta1", "MachineDeployment"),
    ("cluster.x-k8s.io/v1beta1", "Machine"),
    ("controlplane.cluster.x-k8s.io/v1beta1", "KubeadmControlPlane"),
    ("addons.cluster.x-k8s.io/v1beta1", "ClusterResourceSet"),
    ("bootstrap.cluster.x-k8s.io/v1beta1", "KubeadmConfigTemplate"),
    ("infrastructure.cluster.x-k8s.io/v1beta1", "ByoCluster"),
    ("infrastructure.cluster.x-k8s.io/v1beta1", "ByoMachineTemplate"),
    ("infrastructure.cluster.x-k8s.io/v1beta1", "ByoHost"),
    ("infrastructure.cluster.x-k8s.io/v1beta1", "BootstrapKubeconfig"),
)
CLUSTER_LABEL = "cluster.x-k8s.io/cluster-name"


class ObjectRecorder:
    """Every uid ever seen per object name (list + watch per kind, re-listing after errors or 410)."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self.uids: dict[tuple[str, str, str], set[str]] = {}
        self.labels: dict[tuple[str, str, str], dict[str, str]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._record(av, kind)) for av, kind in RECORDED_KINDS]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _see(self, kind: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        key = (kind, str(meta.get("namespace") or ""), str(meta.get("name")))
        self.uids.setdefault(key, set()).add(str(meta.get("uid")))
        self.labels[key] = dict(meta.get("labels") or {})

    async def _record(self, api_version: str, kind: str) -> None:
        failures = 0
        while True:
            try:
                items, rv = await self.kube.list(api_version, kind)
                for obj in items:
                    self._see(kind, obj)
                failures = 0
                while True:
                    async for ev in self.kube.watch(api_version, kind, resource_version=rv, timeout_seconds=60):
                        rv = str((ev.object.get("metadata") or {}).get("resourceVersion") or rv)
                        if ev.type in ("ADDED", "MODIFIED"):
                            self._see(kind, ev.object)
            except WatchExpired:
                continue
            except Exception:
                failures += 1
                await asyncio.sleep(min(0.2 * 2**failures, 2.0))  # reconnect backoff while the emulator restarts
