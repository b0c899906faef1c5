"""Simulated MachineDeployment controller: worker Machines for ``replicas``, scale up and down, counters.

There is no MachineSet CRD in the sandbox, so the MachineDeployment owns its
Machines directly; the Machines carry the upstream labels
(``cluster.x-k8s.io/cluster-name``, ``cluster.x-k8s.io/deployment-name``).
"""

from __future__ import annotations

from typing import Any

from sandbox.capi.machines import alive, create_machine, delete_policy, machine_ready, scale_down_order
from sandbox.capi.runtime import Controller, Key
from sandbox.capi.shapes import Conditions, Obj, differs, ref_name, selector_string, suffix, with_owner
from shared.objects import CLUSTER_NAME_LABEL, DEPLOYMENT_NAME_LABEL, deleting, dig, labels_of, meta, namespace_of


class MachineDeploymentController(Controller):
    kind = "MachineDeployment"

    def setup(self) -> None:
        def from_machine(machine: Obj) -> list[Key]:
            name = labels_of(machine).get(DEPLOYMENT_NAME_LABEL)
            return [(namespace_of(machine), name)] if name else []

        def from_cluster(cluster: Obj) -> list[Key]:
            ns, name = namespace_of(cluster), meta(cluster).get("name")
            return [
                (ns, str(meta(md)["name"]))
                for md in self.ctx.informer(self.kind).items(ns)
                if dig(md, "spec", "clusterName") == name
            ]

        self.watch("Machine", from_machine)
        self.watch("Cluster", from_cluster)

    async def reconcile(self, namespace: str, name: str) -> float | None:
        md = self.ctx.get(self.kind, namespace, name)
        if md is None or deleting(md):
            return None
        cluster_name = str(dig(md, "spec", "clusterName") or "")
        cluster = self.ctx.get("Cluster", namespace, cluster_name)
        if cluster is not None and not deleting(cluster):
            refs = with_owner(md, cluster)
            if refs is not None:
                rv = meta(md).get("resourceVersion")
                md = await self.ctx.patch(md, {"metadata": {"ownerReferences": refs, "resourceVersion": rv}})
        machines = [
            m for m in self.ctx.informer("Machine").items(namespace) if labels_of(m).get(DEPLOYMENT_NAME_LABEL) == name
        ]
        live = alive(machines)
        desired = int(dig(md, "spec", "replicas") if dig(md, "spec", "replicas") is not None else 1)
        again: float | None = None
        if cluster is not None and not deleting(cluster):
            again = await self._scale(md, cluster_name, live, desired)
        status = self._status(md, cluster_name, live, desired)
        if differs(md.get("status"), status):
            await self.ctx.patch_status(md, status)
        return again

    async def _scale(self, md: Obj, cluster: str, live: list[Obj], desired: int) -> float | None:
        if len(live) < desired:
            wait = self.ctx.wait_step(f"md-create-{len(live)}", md, self.ctx.options.machine_create_delay)
            if wait:
                return wait
            template = dig(md, "spec", "template") or {}
            tmpl = ref_name(dig(template, "spec", "infrastructureRef"))
            if not tmpl:
                return None
            labels = dict(dig(template, "metadata", "labels") or {})
            labels.update({CLUSTER_NAME_LABEL: cluster, DEPLOYMENT_NAME_LABEL: str(meta(md)["name"])})
            for _ in range(desired - len(live)):
                await create_machine(
                    self.ctx,
                    owner=md,
                    name=f"{meta(md)['name']}-{suffix()}",
                    cluster=cluster,
                    labels=labels,
                    version=dig(template, "spec", "version"),
                    template_name=tmpl,
                )
        elif len(live) > desired:
            for machine in scale_down_order(live, delete_policy(md))[: len(live) - desired]:
                await self.ctx.delete(machine)
        return None

    def _status(self, md: Obj, cluster: str, live: list[Obj], desired: int) -> dict[str, Any]:
        v1beta2 = self.ctx.options.v1beta2
        replicas = len(live)
        ready = sum(1 for m in live if machine_ready(m))
        unavailable = max(desired - ready, 0)
        if replicas < desired:
            phase = "ScalingUp"
        elif replicas > desired:
            phase = "ScalingDown"
        else:
            phase = "Running" if ready == desired else "ScalingUp"
        selector = selector_string({CLUSTER_NAME_LABEL: cluster, DEPLOYMENT_NAME_LABEL: str(meta(md)["name"])})
        conds = Conditions(dig(md, "status", "conditions"), v1beta2=v1beta2)
        available = ready >= desired
        status: dict[str, Any] = {
            "replicas": replicas,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "phase": phase,
            "selector": selector,
        }
        if not v1beta2:
            conds.set(
                "Available",
                available,
                "WaitingForAvailableMachines",
                f"{ready} of {desired} machines available",
                "Warning",
            )
            conds.set("MachineSetReady", ready == replicas and replicas == desired, "WaitingForMachines")
            conds.summary("Ready", "Available", "MachineSetReady")
            status.update(updatedReplicas=replicas, unavailableReplicas=unavailable)
        else:
            conds.set("Available", available, v1beta2_reason="Available" if available else "NotAvailable")
            all_ready = ready == replicas
            conds.set("MachinesReady", all_ready, v1beta2_reason="Ready" if all_ready else "NotReady")
            conds.replica_set_v1beta2(replicas, desired)
            status.update(
                upToDateReplicas=replicas,
                deprecated={
                    "v1beta1": {
                        "readyReplicas": ready,
                        "availableReplicas": ready,
                        "updatedReplicas": replicas,
                        "unavailableReplicas": unavailable,
                    }
                },
            )
        status["conditions"] = conds.build()
        if meta(md).get("generation") is not None:
            status["observedGeneration"] = meta(md)["generation"]
        return status
