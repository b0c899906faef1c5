"""Simulated KubeadmControlPlane controller: control-plane Machines one at a time, kubeconfig Secret, status.

Like upstream KCP it writes ``<cluster>-kubeconfig`` as soon as the infrastructure
is ready and the endpoint is known (before any machine exists), creates the first
Machine (which gets ``kubeadm init`` data), and adds joining Machines only once the
control plane is initialised and every existing Machine is ready.
"""

from __future__ import annotations

import base64
from typing import Any

import yaml

from sandbox.capi.machines import (
    alive,
    create_machine,
    endpoint_of,
    infra_ready,
    kcp_initialized,
    machine_ready,
    scale_down_order,
)
from sandbox.capi.options import CLUSTER_SECRET_TYPE, CONTROL_PLANE_NAME_LABEL
from sandbox.capi.runtime import Controller, Key
from sandbox.capi.shapes import Conditions, Obj, differs, owner_name, owner_ref, ref_name, selector_string, suffix
from shared.objects import CLUSTER_NAME_LABEL, CONTROL_PLANE_LABEL, deleting, dig, labels_of, meta, namespace_of


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def workload_kubeconfig(cluster: str, host: str, port: int) -> str:
    """A kubeconfig shaped like the one KCP writes (credentials are sandbox placeholders)."""
    user = f"{cluster}-admin"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster,
                "cluster": {
                    "server": f"https://{host}:{port}",
                    "certificate-authority-data": _b64(f"sandbox CA of {cluster}"),
                },
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(f"sandbox client certificate of {user}"),
                    "client-key-data": _b64(f"sandbox client key of {user}"),
                },
            }
        ],
        "contexts": [{"name": f"{user}@{cluster}", "context": {"cluster": cluster, "user": user}}],
        "current-context": f"{user}@{cluster}",
    }
    return yaml.safe_dump(config, sort_keys=False)


def template_name(kcp: Obj) -> str | None:
    template = dig(kcp, "spec", "machineTemplate") or {}
    return ref_name(template.get("infrastructureRef")) or ref_name(dig(template, "spec", "infrastructureRef"))


class KubeadmControlPlaneController(Controller):
    kind = "KubeadmControlPlane"

    def setup(self) -> None:
        def from_machine(machine: Obj) -> list[Key]:
            name = labels_of(machine).get(CONTROL_PLANE_NAME_LABEL)
            return [(namespace_of(machine), name)] if name else []

        def from_cluster(cluster: Obj) -> list[Key]:
            name = ref_name(dig(cluster, "spec", "controlPlaneRef"))
            return [(namespace_of(cluster), name)] if name else []

        self.watch("Machine", from_machine)
        self.watch("Cluster", from_cluster)

    async def reconcile(self, namespace: str, name: str) -> float | None:
        kcp = self.ctx.get(self.kind, namespace, name)
        if kcp is None:
            return None
        machines = [
            m
            for m in self.ctx.informer("Machine").items(namespace)
            if labels_of(m).get(CONTROL_PLANE_NAME_LABEL) == name
        ]
        if deleting(kcp):
            for machine in machines:
                await self.ctx.delete(machine)
            return None
        cluster_name = owner_name(kcp, "Cluster") or labels_of(kcp).get(CLUSTER_NAME_LABEL)
        cluster = self.ctx.get("Cluster", namespace, cluster_name)
        if cluster is None:
            return None
        endpoint = endpoint_of(cluster)
        if infra_ready(cluster) and endpoint:
            await self._ensure_kubeconfig(kcp, str(cluster_name), *endpoint)
        live = alive(machines)
        initialized = kcp_initialized(kcp) or any(machine_ready(m) for m in live)
        desired = int(dig(kcp, "spec", "replicas") or 1)
        again: float | None = None
        if infra_ready(cluster) and not deleting(cluster):
            again = await self._scale(kcp, str(cluster_name), live, desired, initialized)
        status = self._status(kcp, str(cluster_name), live, desired, initialized)
        if differs(kcp.get("status"), status):
            await self.ctx.patch_status(kcp, status)
        return again

    async def _scale(self, kcp: Obj, cluster: str, live: list[Obj], desired: int, initialized: bool) -> float | None:
        all_ready = all(machine_ready(m) for m in live)
        if len(live) < desired and (not live or (initialized and all_ready)):
            wait = self.ctx.wait_step(f"kcp-create-{len(live)}", kcp, self.ctx.options.machine_create_delay)
            if wait:
                return wait
            tmpl = template_name(kcp)
            if not tmpl:
                return None
            name = f"{meta(kcp)['name']}-{suffix()}"
            labels = {CLUSTER_NAME_LABEL: cluster, CONTROL_PLANE_LABEL: "", CONTROL_PLANE_NAME_LABEL: meta(kcp)["name"]}
            await create_machine(
                self.ctx,
                owner=kcp,
                name=name,
                cluster=cluster,
                labels=labels,
                version=dig(kcp, "spec", "version"),
                template_name=tmpl,
            )
        elif len(live) > desired and all_ready:
            # KCP removes an annotated Machine first, then the oldest.
            await self.ctx.delete(scale_down_order(live, "Oldest")[0])
        return None

    async def _ensure_kubeconfig(self, kcp: Obj, cluster: str, host: str, port: int) -> None:
        name = f"{cluster}-kubeconfig"
        namespace = namespace_of(kcp)
        if await self.ctx.client.get("v1", "Secret", name, namespace) is not None:
            return
        await self.ctx.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": CLUSTER_SECRET_TYPE,
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": {CLUSTER_NAME_LABEL: cluster},
                    "ownerReferences": [owner_ref(kcp, controller=True)],
                },
                "data": {"value": _b64(workload_kubeconfig(cluster, host, port))},
            }
        )

    def _status(self, kcp: Obj, cluster: str, live: list[Obj], desired: int, initialized: bool) -> dict[str, Any]:
        v1beta2 = self.ctx.options.v1beta2
        replicas = len(live)
        ready = sum(1 for m in live if machine_ready(m))
        selector = selector_string({CLUSTER_NAME_LABEL: cluster, CONTROL_PLANE_LABEL: ""})
        version = dig(kcp, "spec", "version")
        conds = Conditions(dig(kcp, "status", "conditions"), v1beta2=v1beta2)
        scaling = "ScalingUp" if replicas < desired else "ScalingDown" if replicas > desired else ""
        resized = not scaling and ready == replicas
        status: dict[str, Any] = {"replicas": replicas, "readyReplicas": ready, "selector": selector}
        if not v1beta2:
            conds.set("Available", initialized, "WaitingForKubeadmInit")
            conds.set("CertificatesAvailable", True)
            conds.set("MachinesCreated", replicas > 0, "WaitingForMachines")
            conds.set("MachinesReady", ready == replicas and replicas > 0, "WaitingForNodeRef")
            conds.set(
                "Resized",
                resized,
                scaling or "WaitingForMachines",
                f"scaling to {desired} replicas (actual {replicas})",
                "Warning" if scaling else "Info",
            )
            conds.summary("Ready", "Available", "CertificatesAvailable", "MachinesReady", "Resized")
            status.update(
                initialized=initialized,
                # Upstream: ready once an API server answered during provisioning; never reset.
                ready=bool(dig(kcp, "status", "ready")) or (initialized and ready > 0),
                updatedReplicas=replicas,
                unavailableReplicas=replicas - ready,
            )
        else:
            available = initialized and ready > 0
            conds.set("Available", available, v1beta2_reason="Available" if available else "NotAvailable")
            conds.set("Initialized", initialized, v1beta2_reason="Initialized" if initialized else "NotInitialized")
            conds.set("CertificatesAvailable", True, v1beta2_reason="Available")
            healthy = ready == replicas and replicas > 0
            for ctype in ("EtcdClusterHealthy", "ControlPlaneComponentsHealthy"):
                conds.set(ctype, healthy, v1beta2_reason="Healthy" if healthy else "NotHealthy")
            conds.set("MachinesReady", healthy, v1beta2_reason="Ready" if healthy else "NotReady")
            conds.replica_set_v1beta2(replicas, desired)
            status.update(
                initialization={"controlPlaneInitialized": initialized},
                availableReplicas=ready,
                upToDateReplicas=replicas,
                deprecated={
                    "v1beta1": {
                        "readyReplicas": ready,
                        "updatedReplicas": replicas,
                        "unavailableReplicas": replicas - ready,
                    }
                },
            )
        status["conditions"] = conds.build()
        if initialized and version:
            status["version"] = version
        if meta(kcp).get("generation") is not None:
            status["observedGeneration"] = meta(kcp)["generation"]
        return status
