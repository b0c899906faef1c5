"""Simulated KubeadmControlPlane controller: control-plane Machines one at a time, rollouts, kubeconfig Secret.

Like upstream KCP it writes ``<cluster>-kubeconfig`` as soon as the infrastructure
is ready and the endpoint is known (before any machine exists), creates the first
Machine (which gets ``kubeadm init`` data), and adds joining Machines only once the
control plane is initialised, every existing Machine is ready and none is being deleted.
A change of ``spec.version`` or of the machine template makes Machines outdated
(``sandbox.capi.rollout``): they are replaced one at a time, a new Machine first with
``maxSurge: 1``, the oldest outdated one removed first with ``maxSurge: 0``. The status is
built in ``sandbox.capi.kcp_status``.
"""

from __future__ import annotations

import base64

import yaml

from sandbox.capi.kcp_status import KcpView, kcp_status
from sandbox.capi.machines import (
    alive,
    create_machine,
    delete_orphaned_infra,
    endpoint_of,
    infra_ready,
    kcp_initialized,
    machine_ready,
    scale_down_order,
    unadopted_owner,
)
from sandbox.capi.options import CLUSTER_SECRET_TYPE, CONTROL_PLANE_NAME_LABEL
from sandbox.capi.rollout import kcp_max_surge, kcp_outdated_reasons, kcp_template_name
from sandbox.capi.runtime import Controller, Key
from sandbox.capi.shapes import Obj, differs, owner_name, owner_ref, ref_name, suffix
from shared.objects import (
    CLUSTER_NAME_LABEL,
    CONTROL_PLANE_LABEL,
    deleting,
    dig,
    labels_of,
    meta,
    name_of,
    namespace_of,
)


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
        self.watch("ByoMachine", lambda bm: unadopted_owner(bm, self.kind))
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
        await delete_orphaned_infra(self.ctx, kcp)
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
        outdated = {name_of(m): reasons for m in live if (reasons := kcp_outdated_reasons(m, self._infra(m), kcp))}
        stale = [m for m in live if name_of(m) in outdated]
        again: float | None = None
        if infra_ready(cluster) and not deleting(cluster):
            again = await self._scale(kcp, str(cluster_name), machines, desired, initialized, stale)
        status = kcp_status(
            kcp,
            KcpView(str(cluster_name), machines, desired, initialized, outdated),
            v1beta2=self.ctx.options.v1beta2,
        )
        if differs(kcp.get("status"), status):
            await self.ctx.patch_status(kcp, status)
        return again

    async def _scale(
        self, kcp: Obj, cluster: str, machines: list[Obj], desired: int, initialized: bool, outdated: list[Obj]
    ) -> float | None:
        live = alive(machines)
        # Like KCP's preflight: one change at a time, only while every Machine is ready and none is going away.
        settled = all(machine_ready(m) for m in live) and len(live) == len(machines)
        if outdated and initialized:
            if not settled:
                return None
            if len(live) < desired + kcp_max_surge(kcp):
                return await self._create(kcp, cluster, live)
            # Scale in: the outdated Machine annotated delete-machine first, then the oldest.
            await self.ctx.delete(scale_down_order(outdated, "Oldest")[0])
            return None
        if len(live) < desired and (not live or (initialized and settled)):
            return await self._create(kcp, cluster, live)
        if len(live) > desired and settled:
            # KCP removes an annotated Machine first, then the oldest.
            await self.ctx.delete(scale_down_order(live, "Oldest")[0])
        return None

    async def _create(self, kcp: Obj, cluster: str, live: list[Obj]) -> float | None:
        wait = self.ctx.wait_step(f"kcp-create-{len(live)}", kcp, self.ctx.options.machine_create_delay)
        if wait:
            return wait
        tmpl = kcp_template_name(kcp)
        if not tmpl:
            return None
        name = f"{meta(kcp)['name']}-{suffix()}"
        labels = {CLUSTER_NAME_LABEL: cluster, CONTROL_PLANE_LABEL: "", CONTROL_PLANE_NAME_LABEL: meta(kcp)["name"]}
        # A new Machine clones the template referenced now and carries the KCP's current version.
        await create_machine(
            self.ctx,
            owner=kcp,
            name=name,
            cluster=cluster,
            labels=labels,
            version=dig(kcp, "spec", "version"),
            template_name=tmpl,
        )
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

    def _infra(self, machine: Obj) -> Obj | None:
        return self.ctx.get("ByoMachine", namespace_of(machine), ref_name(dig(machine, "spec", "infrastructureRef")))
