"""Simulated MachineDeployment controller: worker Machines for ``replicas``, rolling updates, counters.

There is no MachineSet CRD in the sandbox, so the MachineDeployment owns its
Machines directly; the Machines carry the upstream labels
(``cluster.x-k8s.io/cluster-name``, ``cluster.x-k8s.io/deployment-name``,
``cluster.x-k8s.io/set-name`` and ``machine-template-hash``): the Machines sharing a hash are
one MachineSet. A template change (version, infrastructureRef, bootstrap configRef) starts a new
set and Machines move over at the pace of ``maxSurge``/``maxUnavailable``, old ones leaving by
the deletion priority (``sandbox.capi.rollout``). New Machines pass CAPI's MachineSet preflight
first: none while the control plane is provisioning or upgrading, none at another minor than its.
The status is built in ``sandbox.capi.md_status``.
"""

from __future__ import annotations

from typing import Any

from sandbox.capi.machines import (
    alive,
    create_machine,
    delete_orphaned_infra,
    delete_policy,
    machine_ready,
    scale_down_order,
    unadopted_owner,
)
from sandbox.capi.md_status import MdView, md_status
from sandbox.capi.rollout import (
    SET_NAME_LABEL,
    TEMPLATE_HASH_LABEL,
    md_rollout_step,
    md_surge_unavailable,
    preflight_failure,
    template_hash,
)
from sandbox.capi.runtime import Controller, Key
from sandbox.capi.shapes import Obj, differs, owner_name, ref_name, suffix, with_owner
from sandbox.capi.templates import md_templates, own_templates
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

        def from_control_plane(kcp: Obj) -> list[Key]:
            # The MachineSet preflight waits on the control plane: look again when it changes.
            cluster = owner_name(kcp, "Cluster") or labels_of(kcp).get(CLUSTER_NAME_LABEL)
            return from_cluster({"metadata": {"namespace": namespace_of(kcp), "name": cluster}}) if cluster else []

        self.watch("Machine", from_machine)
        self.watch("ByoMachine", lambda bm: unadopted_owner(bm, self.kind))
        self.watch("Cluster", from_cluster)
        self.watch("KubeadmControlPlane", from_control_plane)

    async def reconcile(self, namespace: str, name: str) -> float | None:
        md = self.ctx.get(self.kind, namespace, name)
        if md is None or deleting(md):
            return None
        await delete_orphaned_infra(self.ctx, md)
        cluster_name = str(dig(md, "spec", "clusterName") or "")
        cluster = self.ctx.get("Cluster", namespace, cluster_name)
        if cluster is not None and not deleting(cluster):
            refs = with_owner(md, cluster)
            if refs is not None:
                await own_templates(self.ctx, cluster, md_templates(md))
                rv = meta(md).get("resourceVersion")
                md = await self.ctx.patch(md, {"metadata": {"ownerReferences": refs, "resourceVersion": rv}})
        machines = [
            m for m in self.ctx.informer("Machine").items(namespace) if labels_of(m).get(DEPLOYMENT_NAME_LABEL) == name
        ]
        live = alive(machines)
        desired = int(dig(md, "spec", "replicas") if dig(md, "spec", "replicas") is not None else 1)
        current = template_hash(md)
        new = [m for m in live if labels_of(m).get(TEMPLATE_HASH_LABEL) == current]
        old = [m for m in live if labels_of(m).get(TEMPLATE_HASH_LABEL) != current]
        again: float | None = None
        blocked: str | None = None
        if cluster is not None and not deleting(cluster):
            again, blocked = await self._scale(md, cluster, new, old, desired)
        view = MdView(cluster_name, live, new, old, desired, blocked)
        status = md_status(md, view, v1beta2=self.ctx.options.v1beta2)
        if differs(md.get("status"), status):
            await self.ctx.patch_status(md, status)
        return again

    async def _scale(
        self, md: Obj, cluster: Obj, new: list[Obj], old: list[Obj], desired: int
    ) -> tuple[float | None, str | None]:
        """One rolling-update step; returns (seconds until the next look, why new Machines are held back)."""
        surge, unavailable = md_surge_unavailable(md, desired)
        policy = delete_policy(md)
        step = md_rollout_step(
            desired, surge, unavailable, new, old, machine_ready, lambda ms: scale_down_order(ms, policy)
        )
        for machine in step.delete:
            await self.ctx.delete(machine)
        if step.create <= 0:
            return None, None
        template = dig(md, "spec", "template") or {}
        version = dig(template, "spec", "version")
        blocked = self._preflight(md, cluster, version)
        if blocked is not None:
            # CAPI re-checks when the control plane changes (a KCP event) and on its periodic resync.
            return None, blocked
        wait = self.ctx.wait_step(f"md-create-{len(new)}", md, self.ctx.options.machine_create_delay)
        if wait:
            return wait, None
        tmpl = ref_name(dig(template, "spec", "infrastructureRef"))
        if not tmpl:
            return None, None
        name, current = str(meta(md)["name"]), template_hash(md)
        labels = dict(dig(template, "metadata", "labels") or {})
        labels.update(
            {
                CLUSTER_NAME_LABEL: str(meta(cluster)["name"]),
                DEPLOYMENT_NAME_LABEL: name,
                TEMPLATE_HASH_LABEL: current,
                SET_NAME_LABEL: f"{name}-{current}",
            }
        )
        for _ in range(step.create):
            await create_machine(
                self.ctx,
                owner=md,
                name=f"{name}-{suffix()}",
                cluster=str(meta(cluster)["name"]),
                labels=labels,
                version=version,
                template_name=tmpl,
            )
        return None, None

    def _preflight(self, md: Obj, cluster: Obj, version: Any) -> str | None:
        ref = dig(cluster, "spec", "controlPlaneRef")
        kcp_name = ref_name(ref)
        if not kcp_name or (isinstance(ref, dict) and ref.get("kind") not in (None, "KubeadmControlPlane")):
            return None
        kcp = self.ctx.get("KubeadmControlPlane", namespace_of(md), kcp_name)
        if kcp is None:
            return f"KubeadmControlPlane {namespace_of(md)}/{kcp_name} is provisioning (not found)"
        return preflight_failure(version, kcp, f"KubeadmControlPlane {namespace_of(md)}/{kcp_name}")
