"""Simulated CAPI Cluster controller: ownership, endpoint, phase, conditions, and deletion cascade.

The phase follows upstream ``setPhase``: ``Provisioned`` only means the
infrastructure is ready and the endpoint is set, which happens BEFORE any
control-plane machine is up (the trap DESIGN §6 guards against).
"""

from __future__ import annotations

from typing import Any

import structlog

from sandbox.capi.machines import alive, cluster_machines, is_control_plane, kcp_initialized, machine_ready
from sandbox.capi.options import CLUSTER_FINALIZER
from sandbox.capi.rollout import version_counts
from sandbox.capi.runtime import Controller, Key
from sandbox.capi.shapes import Conditions, Obj, differs, own_condition_true, owner_name, ref_name, with_owner
from sandbox.capi.templates import kcp_templates, own_templates
from shared.objects import CLUSTER_NAME_LABEL, deleting, dig, labels_of, meta, namespace_of

log = structlog.get_logger(__name__)


def _cluster_of(obj: Obj) -> list[Key]:
    name = owner_name(obj, "Cluster") or dig(obj, "spec", "clusterName") or labels_of(obj).get(CLUSTER_NAME_LABEL)
    return [(namespace_of(obj), str(name))] if name else []


class ClusterController(Controller):
    kind = "Cluster"

    def setup(self) -> None:
        for kind in ("ByoCluster", "KubeadmControlPlane", "MachineDeployment", "Machine"):
            self.watch(kind, _cluster_of)

    def _children(self, cluster: Obj) -> tuple[Obj | None, Obj | None, list[Obj]]:
        ns, name = namespace_of(cluster), str(meta(cluster)["name"])
        infra_ref = dig(cluster, "spec", "infrastructureRef")
        cp_ref = dig(cluster, "spec", "controlPlaneRef")
        bc = self.ctx.get("ByoCluster", ns, ref_name(infra_ref)) if dig(infra_ref, "kind") == "ByoCluster" else None
        kcp = self.ctx.get("KubeadmControlPlane", ns, ref_name(cp_ref))
        mds = [md for md in self.ctx.informer("MachineDeployment").items(ns) if dig(md, "spec", "clusterName") == name]
        return bc, kcp, mds

    async def reconcile(self, namespace: str, name: str) -> float | None:
        cluster = self.ctx.get(self.kind, namespace, name)
        if cluster is None:
            return None
        if deleting(cluster):
            return await self._delete(cluster)
        finalizers = list(meta(cluster).get("finalizers") or [])
        if CLUSTER_FINALIZER not in finalizers:
            cluster = await self.ctx.set_finalizers(cluster, [*finalizers, CLUSTER_FINALIZER])
        bc, kcp, mds = self._children(cluster)
        for child in (bc, kcp):
            refs = with_owner(child, cluster) if child else None
            if child is not None and refs is not None:
                if child is kcp:
                    await own_templates(self.ctx, cluster, kcp_templates(child))
                rv = meta(child).get("resourceVersion")
                await self.ctx.patch(child, {"metadata": {"ownerReferences": refs, "resourceVersion": rv}})
        endpoint = dig(bc, "spec", "controlPlaneEndpoint") or {}
        if endpoint.get("host"):
            wanted = {"host": endpoint["host"], "port": int(endpoint.get("port") or 6443)}
            if differs(dig(cluster, "spec", "controlPlaneEndpoint"), wanted):
                cluster = await self.ctx.patch(cluster, {"spec": {"controlPlaneEndpoint": wanted}})
        status = self._status(cluster, bc, kcp, mds)
        if differs(cluster.get("status"), status):
            await self.ctx.patch_status(cluster, status)
        return None

    def _status(self, cluster: Obj, bc: Obj | None, kcp: Obj | None, mds: list[Obj]) -> dict[str, Any]:
        v1beta2 = self.ctx.options.v1beta2
        ready_infra = bool(dig(bc, "status", "ready"))
        has_endpoint = bool(dig(cluster, "spec", "controlPlaneEndpoint", "host"))
        has_refs = bool(dig(cluster, "spec", "infrastructureRef") or dig(cluster, "spec", "controlPlaneRef"))
        phase = "Provisioned" if ready_infra and has_endpoint else "Provisioning" if has_refs else "Pending"
        # Initialised is sticky, like upstream: once true it never goes back.
        cp_init = kcp_initialized(kcp) or bool(dig(cluster, "status", "initialization", "controlPlaneInitialized"))
        cp_init = cp_init or own_condition_true(cluster, "ControlPlaneInitialized")
        machines = alive(cluster_machines(self.ctx, namespace_of(cluster), str(meta(cluster)["name"])))
        cps = [m for m in machines if is_control_plane(m)]
        workers = [m for m in machines if not is_control_plane(m)]
        cp_desired = int(dig(kcp, "spec", "replicas") or (1 if kcp else 0))
        cp_ready = sum(1 for m in cps if machine_ready(m))
        kcp_ready = bool(dig(kcp, "status", "ready")) or (cp_init and cp_ready > 0)
        w_desired = sum(int(dig(md, "spec", "replicas") or 0) for md in mds)
        w_ready = sum(1 for m in workers if machine_ready(m))
        conds = Conditions(dig(cluster, "status", "conditions"), v1beta2=v1beta2)
        gen = meta(cluster).get("generation")
        if not v1beta2:
            conds.set("InfrastructureReady", ready_infra, "WaitingForInfrastructure")
            conds.set("ControlPlaneInitialized", cp_init, "WaitingForControlPlaneProviderInitialized")
            conds.set("ControlPlaneReady", kcp_ready, "WaitingForControlPlane")
            conds.summary("Ready", "InfrastructureReady", "ControlPlaneReady")
            status: dict[str, Any] = {
                "phase": phase,
                "infrastructureReady": ready_infra,
                "controlPlaneReady": kcp_ready,
                "conditions": conds.build(),
            }
        else:
            cp_available = cp_init and cp_ready > 0
            workers_available = w_ready >= w_desired
            conds.set("InfrastructureReady", ready_infra, v1beta2_reason="Ready" if ready_infra else "NotReady")
            conds.set("ControlPlaneInitialized", cp_init, v1beta2_reason="Initialized" if cp_init else "NotInitialized")
            conds.set(
                "ControlPlaneAvailable", cp_available, v1beta2_reason="Available" if cp_available else "NotAvailable"
            )
            conds.set(
                "WorkersAvailable",
                workers_available,
                v1beta2_reason="Available" if workers_available else "NotAvailable",
            )
            conds.set(
                "ControlPlaneMachinesReady",
                cp_ready == len(cps),
                v1beta2_reason="Ready" if cp_ready == len(cps) else "NotReady",
            )
            conds.set(
                "WorkerMachinesReady",
                w_ready == len(workers),
                v1beta2_reason="Ready" if w_ready == len(workers) else "NotReady",
            )
            conds.set("RemoteConnectionProbe", cp_init, v1beta2_reason="ProbeSucceeded" if cp_init else "ProbeFailed")
            conds.set("Deleting", False, v1beta2_reason="NotDeleting")
            conds.set("Paused", False, v1beta2_reason="NotPaused")
            available = conds.all_true(
                "InfrastructureReady", "ControlPlaneAvailable", "WorkersAvailable", "RemoteConnectionProbe"
            )
            conds.set("Available", available, v1beta2_reason="Available" if available else "NotAvailable")
            status = {
                "phase": phase,
                "initialization": {"infrastructureProvisioned": ready_infra, "controlPlaneInitialized": cp_init},
                "controlPlane": {
                    "desiredReplicas": cp_desired,
                    "replicas": len(cps),
                    "readyReplicas": cp_ready,
                    "availableReplicas": cp_ready,
                    # As upstream: the control plane's and MachineDeployments' own counts of up-to-date Machines.
                    "upToDateReplicas": int(dig(kcp, "status", "upToDateReplicas") or 0),
                    **({"versions": version_counts(cps)} if cps else {}),
                },
                "workers": {
                    "desiredReplicas": w_desired,
                    "replicas": len(workers),
                    "readyReplicas": w_ready,
                    "availableReplicas": w_ready,
                    "upToDateReplicas": sum(int(dig(md, "status", "upToDateReplicas") or 0) for md in mds),
                    **({"versions": version_counts(workers)} if workers else {}),
                },
                "conditions": conds.build(),
            }
        if gen is not None:
            status["observedGeneration"] = gen
        return status

    async def _delete(self, cluster: Obj) -> float | None:
        ns, name = namespace_of(cluster), str(meta(cluster)["name"])
        v1beta2 = self.ctx.options.v1beta2
        conds = Conditions(dig(cluster, "status", "conditions"), v1beta2=v1beta2)
        if v1beta2:
            conds.set("Deleting", True, v1beta2_reason="Deleting", message="Deleting the cluster's objects")
        else:
            conds.set("Ready", False, "Deleting", severity="Info")
        status = {"phase": "Deleting", "conditions": conds.build()}
        if differs(cluster.get("status"), {"phase": "Deleting"}):
            cluster = await self.ctx.patch_status(cluster, status)
        bc, kcp, mds = self._children(cluster)
        machines = cluster_machines(self.ctx, ns, name)
        workers = [m for m in machines if not is_control_plane(m)]
        # Upstream order: workers (MachineDeployments) first, then the control plane, then the infrastructure.
        for md in mds:
            await self.ctx.delete(md)
        for machine in workers:
            await self.ctx.delete(machine)
        if workers:
            return 2.0
        if kcp is not None:
            await self.ctx.delete(kcp)
        for machine in machines:
            await self.ctx.delete(machine)
        if machines:
            return 2.0
        if bc is not None:
            await self.ctx.delete(bc)
        bc, kcp, mds = self._children(cluster)
        if bc is not None or kcp is not None or mds:
            return 1.0
        finalizers = [f for f in meta(cluster).get("finalizers") or [] if f != CLUSTER_FINALIZER]
        await self.ctx.set_finalizers(cluster, finalizers)
        log.info("cluster_deleted", namespace=ns, name=name)
        return None
