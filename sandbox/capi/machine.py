"""Simulated CAPI Machine controller, with the CABPK step that writes each Machine's bootstrap data Secret.

Phases follow upstream: ``Pending`` → ``Provisioning`` (bootstrap data exists)
→ ``Provisioned`` (providerID) → ``Running`` (nodeRef). Join data is only
produced once the control plane is initialised, so workers wait in ``Pending``
exactly like they do with CABPK. Deleting a Machine deletes its ByoMachine
first (which releases the host) and then drops the finalizer.
"""

from __future__ import annotations

import base64
from typing import Any

from sandbox.capi.bootstrapdata import Role, cloud_config
from sandbox.capi.machines import cluster_cp_initialized, endpoint_of, is_control_plane, kcp_initialized
from sandbox.capi.options import (
    BOOTSTRAP_GROUP,
    BYOMACHINE_NAME_LABEL,
    CLUSTER_SECRET_TYPE,
    CONTROL_PLANE_NAME_LABEL,
    KUBELET_VERSION_ANNOTATION,
    MACHINE_FINALIZER,
)
from sandbox.capi.rollout import TEMPLATE_HASH_LABEL, kcp_outdated_reasons, template_hash
from sandbox.capi.runtime import Controller, Key
from sandbox.capi.shapes import Conditions, Obj, differs, find_condition, owner_name, owner_ref, ref_name
from shared.objects import (
    CLUSTER_NAME_LABEL,
    DEPLOYMENT_NAME_LABEL,
    annotations_of,
    deleting,
    dig,
    labels_of,
    meta,
    name_of,
    namespace_of,
    now_timestamp,
)


def _node_name(provider_id: str) -> str | None:
    # byoh://<host>/<random>: the Node is named like the host.
    if not provider_id.startswith("byoh://"):
        return None
    return provider_id.removeprefix("byoh://").split("/", 1)[0] or None


class MachineController(Controller):
    kind = "Machine"

    def setup(self) -> None:
        def from_byomachine(bm: Obj) -> list[Key]:
            return [(namespace_of(bm), owner_name(bm, "Machine") or name_of(bm))]

        def from_cluster(cluster: Obj) -> list[Key]:
            ns, name = namespace_of(cluster), name_of(cluster)
            return [
                (ns, name_of(m))
                for m in self.ctx.informer(self.kind).items(ns)
                if dig(m, "spec", "clusterName") == name and not dig(m, "spec", "bootstrap", "dataSecretName")
            ]

        def owned(label: str, owner: Obj) -> list[Key]:
            # v1beta2 only: a Machine's UpToDate condition follows its owner's spec.
            if not self.ctx.options.v1beta2:
                return []
            ns, name = namespace_of(owner), name_of(owner)
            return [(ns, name_of(m)) for m in self.ctx.informer(self.kind).items(ns) if labels_of(m).get(label) == name]

        def from_control_plane(kcp: Obj) -> list[Key]:
            cluster = owner_name(kcp, "Cluster") or labels_of(kcp).get(CLUSTER_NAME_LABEL)
            waiting = from_cluster({"metadata": {"namespace": namespace_of(kcp), "name": cluster}})
            return [*waiting, *owned(CONTROL_PLANE_NAME_LABEL, kcp)]

        self.watch("ByoMachine", from_byomachine)
        self.watch("Cluster", from_cluster)
        self.watch("KubeadmControlPlane", from_control_plane)
        self.watch("MachineDeployment", lambda md: owned(DEPLOYMENT_NAME_LABEL, md))

    async def reconcile(self, namespace: str, name: str) -> float | None:
        machine = self.ctx.get(self.kind, namespace, name)
        if machine is None:
            return None
        bm = self.ctx.get("ByoMachine", namespace, ref_name(dig(machine, "spec", "infrastructureRef")))
        if deleting(machine):
            return await self._delete(machine, bm)
        finalizers = list(meta(machine).get("finalizers") or [])
        if MACHINE_FINALIZER not in finalizers:
            machine = await self.ctx.set_finalizers(machine, [*finalizers, MACHINE_FINALIZER])
        if bm is not None:
            bm = await self._adopt(machine, bm)
        again: float | None = None
        if not dig(machine, "spec", "bootstrap", "dataSecretName"):
            machine, again = await self._bootstrap_data(machine)
        provider_id = dig(bm, "spec", "providerID")
        if provider_id and dig(machine, "spec", "providerID") != provider_id:
            machine = await self.ctx.patch(machine, {"spec": {"providerID": provider_id}})
        status = self._status(machine, bm)
        node_info = self._node_info(bm) if status.get("nodeRef") else None
        if node_info is not None:
            status["nodeInfo"] = node_info
        if differs(machine.get("status"), status):
            if status.get("phase") != dig(machine, "status", "phase"):
                status["lastUpdated"] = now_timestamp()
            await self.ctx.patch_status(machine, status)
        return again

    async def _adopt(self, machine: Obj, bm: Obj) -> Obj:
        """Make the Machine the controlling owner of its ByoMachine, as CAPI's Machine controller does with the
        infrastructure object its owner cloned (owned by the KCP or MachineDeployment until then)."""
        refs = list(meta(bm).get("ownerReferences") or [])
        if any(r.get("uid") == meta(machine).get("uid") or r.get("controller") for r in refs):
            return bm  # already ours, or another controller's (never taken over)
        ref = owner_ref(machine, controller=True)
        # An append (JSON patch), not the whole list: the BYOH controller writes the object meanwhile, and a
        # list written from a stale copy could bring back an owner reference the collector just removed.
        op: Obj = {"op": "add", "path": "/metadata/ownerReferences/-", "value": ref}
        if not refs:
            op = {"op": "add", "path": "/metadata/ownerReferences", "value": [ref]}
        return await self.ctx.patch(bm, [op])

    def _role(self, machine: Obj) -> Role | None:
        """init, join, or None while the bootstrap data must wait (CABPK's control-plane lock)."""
        ns = namespace_of(machine)
        cluster = self.ctx.get("Cluster", ns, dig(machine, "spec", "clusterName"))
        if cluster is None or deleting(cluster):
            return None
        if not is_control_plane(machine):
            return "join" if cluster_cp_initialized(cluster) else None
        kcp_name = labels_of(machine).get(CONTROL_PLANE_NAME_LABEL)
        if kcp_initialized(self.ctx.get("KubeadmControlPlane", ns, kcp_name)) or cluster_cp_initialized(cluster):
            return "join"
        others = [
            m
            for m in self.ctx.informer(self.kind).items(ns)
            if labels_of(m).get(CONTROL_PLANE_NAME_LABEL) == kcp_name and name_of(m) != name_of(machine)
        ]
        return None if any(dig(m, "spec", "bootstrap", "dataSecretName") for m in others) else "init"

    async def _bootstrap_data(self, machine: Obj) -> tuple[Obj, float | None]:
        role = self._role(machine)
        if role is None:
            return machine, None
        wait = self.ctx.wait_step("bootstrap-data", machine, self.ctx.options.bootstrap_data_delay)
        if wait:
            return machine, wait
        ns = namespace_of(machine)
        cluster_name = str(dig(machine, "spec", "clusterName"))
        cluster = self.ctx.get("Cluster", ns, cluster_name)
        host, port = endpoint_of(cluster) or ("", 6443)
        if is_control_plane(machine):
            kcp = self.ctx.get("KubeadmControlPlane", ns, labels_of(machine).get(CONTROL_PLANE_NAME_LABEL))
            spec = dig(kcp, "spec", "kubeadmConfigSpec")
        else:
            spec = await self._worker_config_spec(machine)
        value = cloud_config(
            role,
            spec,
            cluster=cluster_name,
            version=dig(machine, "spec", "version"),
            endpoint=f"{host}:{port}",
            control_plane=is_control_plane(machine),
        )
        await self.ctx.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": CLUSTER_SECRET_TYPE,
                "metadata": {
                    "name": name_of(machine),
                    "namespace": ns,
                    "labels": {CLUSTER_NAME_LABEL: cluster_name},
                    "ownerReferences": [owner_ref(machine, controller=True)],
                },
                "data": {
                    "value": base64.b64encode(value.encode()).decode(),
                    "format": base64.b64encode(b"cloud-config").decode(),
                },
            }
        )
        machine = await self.ctx.patch(machine, {"spec": {"bootstrap": {"dataSecretName": name_of(machine)}}})
        return machine, None

    async def _worker_config_spec(self, machine: Obj) -> dict[str, Any] | None:
        md = self.ctx.get("MachineDeployment", namespace_of(machine), owner_name(machine, "MachineDeployment"))
        ref = dig(md, "spec", "template", "spec", "bootstrap", "configRef")
        name = ref_name(ref)
        if not name:
            return None
        tmpl = await self.ctx.client.get(
            f"{BOOTSTRAP_GROUP}/v1beta1", "KubeadmConfigTemplate", name, namespace_of(machine)
        )
        spec = dig(tmpl, "spec", "template", "spec")
        return dict(spec) if isinstance(spec, dict) else None

    async def _delete(self, machine: Obj, bm: Obj | None) -> float | None:
        if dig(machine, "status", "phase") != "Deleting":
            machine = await self.ctx.patch_status(machine, {"phase": "Deleting", "lastUpdated": now_timestamp()})
        if bm is not None:
            await self.ctx.delete(bm)
            return 2.0
        finalizers = [f for f in meta(machine).get("finalizers") or [] if f != MACHINE_FINALIZER]
        if len(finalizers) != len(meta(machine).get("finalizers") or []):
            await self.ctx.set_finalizers(machine, finalizers)
        return None

    def _node_info(self, bm: Obj | None) -> dict[str, Any] | None:
        """The Node's system info as CAPI copies it to the Machine (the kubelet version from the host)."""
        if bm is None:
            return None
        host = next(
            (
                h
                for h in self.ctx.informer("ByoHost").items(namespace_of(bm))
                if labels_of(h).get(BYOMACHINE_NAME_LABEL) == name_of(bm)
            ),
            None,
        )
        kubelet = annotations_of(host).get(KUBELET_VERSION_ANNOTATION) if host is not None else None
        if not kubelet:
            return None
        info = dig(host, "status", "hostinfo") or {}
        return {
            "architecture": str(info.get("architecture") or "amd64"),
            "bootID": "",
            "containerRuntimeVersion": "",
            "kernelVersion": "",
            "kubeProxyVersion": "",
            "kubeletVersion": kubelet,
            "machineID": "",
            "operatingSystem": str(info.get("osname") or "linux"),
            "osImage": str(info.get("osimage") or ""),
            "systemUUID": "",
        }

    def _outdated(self, machine: Obj, bm: Obj | None) -> list[str]:
        """Why the Machine's owner would replace it (v1beta2 ``UpToDate``), from the owner's current spec."""
        ns = namespace_of(machine)
        if is_control_plane(machine):
            kcp = self.ctx.get("KubeadmControlPlane", ns, labels_of(machine).get(CONTROL_PLANE_NAME_LABEL))
            return kcp_outdated_reasons(machine, bm, kcp) if kcp is not None else []
        md = self.ctx.get("MachineDeployment", ns, owner_name(machine, "MachineDeployment"))
        if md is None or labels_of(machine).get(TEMPLATE_HASH_LABEL) == template_hash(md):
            return []
        return ["MachineDeployment template changed (version or template references)"]

    def _status(self, machine: Obj, bm: Obj | None) -> dict[str, Any]:
        v1beta2 = self.ctx.options.v1beta2
        bootstrap_ready = bool(dig(machine, "spec", "bootstrap", "dataSecretName"))
        infra_ready = bool(dig(bm, "status", "ready"))
        provider_id = str(dig(machine, "spec", "providerID") or "")
        node = _node_name(provider_id) if infra_ready else None
        if node:
            phase = "Running"
        elif provider_id:
            phase = "Provisioned"
        elif bootstrap_ready:
            phase = "Provisioning"
        else:
            phase = "Pending"
        bm_ready = find_condition(bm, "BYOHostReady") if bm else None
        infra_reason = str((bm_ready or {}).get("reason") or "WaitingForInfrastructure")
        infra_message = str((bm_ready or {}).get("message") or "")
        infra_severity = str((bm_ready or {}).get("severity") or "Info")
        conds = Conditions(dig(machine, "status", "conditions"), v1beta2=v1beta2)
        status: dict[str, Any] = {"phase": phase}
        if not v1beta2:
            conds.set("BootstrapReady", bootstrap_ready, "WaitingForDataSecret")
            conds.set("InfrastructureReady", infra_ready, infra_reason, infra_message, infra_severity)
            conds.set("NodeHealthy", bool(node), "WaitingForNodeRef")
            conds.summary("Ready", "BootstrapReady", "InfrastructureReady", "NodeHealthy")
            status.update(bootstrapReady=bootstrap_ready, infrastructureReady=infra_ready)
            if node:
                status["nodeRef"] = {"apiVersion": "v1", "kind": "Node", "name": node}
        else:
            conds.set(
                "BootstrapConfigReady",
                bootstrap_ready,
                v1beta2_reason="DataSecretAvailable" if bootstrap_ready else "DataSecretNotAvailable",
            )
            conds.set(
                "InfrastructureReady",
                infra_ready,
                message=infra_message,
                v1beta2_reason="Ready" if infra_ready else infra_reason,
            )
            conds.set("NodeReady", bool(node), v1beta2_reason="NodeReady" if node else "NodeDoesNotExist")
            conds.set("NodeHealthy", bool(node), v1beta2_reason="NodeHealthy" if node else "NodeDoesNotExist")
            outdated = self._outdated(machine, bm)
            conds.set(
                "UpToDate",
                not outdated,
                message="\n".join(f"* {r}" for r in outdated),
                v1beta2_reason="NotUpToDate" if outdated else "UpToDate",
            )
            conds.set("Deleting", False, v1beta2_reason="NotDeleting")
            conds.set("Paused", False, v1beta2_reason="NotPaused")
            ready = conds.all_true("BootstrapConfigReady", "InfrastructureReady", "NodeHealthy")
            conds.set("Ready", ready, v1beta2_reason="Ready" if ready else "NotReady")
            conds.set("Available", ready, v1beta2_reason="Available" if ready else "NotReady")
            status["initialization"] = {
                "bootstrapDataSecretCreated": bootstrap_ready,
                "infrastructureProvisioned": infra_ready,
            }
            if node:
                status["nodeRef"] = {"name": node}
        status["conditions"] = conds.build()
        return status
