"""Simulated BYOH ByoMachine controller: claim a free matching ByoHost, then report the node.

Claiming follows upstream: hosts matching the template ``selector`` AND without
a ``cluster.x-k8s.io/cluster-name`` label, first by name. Unlike upstream v0.5.0
(which lists hosts in every namespace) only hosts in the ByoMachine's own
namespace are considered, as the maintained fork does. On deletion the host is
annotated ``…/unregistering`` and the finalizer removed at once; the agent then
resets and frees the host.
"""

from __future__ import annotations

from typing import Any

import structlog

from sandbox.capi.machines import endpoint_of, infra_ready
from sandbox.capi.options import (
    BOOTSTRAP_CONDITION,
    BYOMACHINE_FINALIZER,
    BYOMACHINE_NAME_LABEL,
    ENDPOINT_IP_ANNOTATION,
    FAIL_BOOTSTRAP_ANNOTATION,
    INFRA_VERSION,
    K8S_VERSION_ANNOTATION,
)
from sandbox.capi.runtime import Controller, Key
from sandbox.capi.shapes import Conditions, Obj, differs, find_condition, owner_name, ref_name, selector_matches, suffix
from shared.objects import (
    CLUSTER_NAME_LABEL,
    UNREGISTERING_ANNOTATION,
    annotations_of,
    deleting,
    dig,
    labels_of,
    meta,
    name_of,
    namespace_of,
)

log = structlog.get_logger(__name__)


class ByoMachineController(Controller):
    kind = "ByoMachine"
    identity = "byoh"  # BYOH objects are written as BYOH's controller manager

    def setup(self) -> None:
        def from_machine(machine: Obj) -> list[Key]:
            name = ref_name(dig(machine, "spec", "infrastructureRef"))
            return [(namespace_of(machine), name)] if name else []

        def from_host(host: Obj) -> list[Key]:
            ns = namespace_of(host)
            owner = labels_of(host).get(BYOMACHINE_NAME_LABEL)
            if owner:
                return [(ns, owner)]
            # A free host: every ByoMachine still waiting for one may take it.
            waiting = self.ctx.informer(self.kind).items(ns)
            return [(ns, name_of(bm)) for bm in waiting if not dig(bm, "status", "ready")]

        self.watch("Machine", from_machine)
        self.watch("ByoHost", from_host)

    def _claimed_host(self, bm: Obj) -> Obj | None:
        for host in self.ctx.informer("ByoHost").items(namespace_of(bm)):
            if labels_of(host).get(BYOMACHINE_NAME_LABEL) == name_of(bm):
                return host
        return None

    async def reconcile(self, namespace: str, name: str) -> float | None:
        bm = self.ctx.get(self.kind, namespace, name)
        if bm is None:
            return None
        host = self._claimed_host(bm)
        if deleting(bm):
            if host is not None and UNREGISTERING_ANNOTATION not in annotations_of(host):
                await self.ctx.patch(host, {"metadata": {"annotations": {UNREGISTERING_ANNOTATION: ""}}})
                log.info("byohost_release_requested", namespace=namespace, host=name_of(host), byomachine=name)
            finalizers = [f for f in meta(bm).get("finalizers") or [] if f != BYOMACHINE_FINALIZER]
            if len(finalizers) != len(meta(bm).get("finalizers") or []):
                await self.ctx.set_finalizers(bm, finalizers)
            return None
        finalizers = list(meta(bm).get("finalizers") or [])
        if BYOMACHINE_FINALIZER not in finalizers:
            bm = await self.ctx.set_finalizers(bm, [*finalizers, BYOMACHINE_FINALIZER])
        conds = Conditions(dig(bm, "status", "conditions"), v1beta2=False)
        machine = self.ctx.get("Machine", namespace, owner_name(bm, "Machine"))
        cluster = self.ctx.get("Cluster", namespace, dig(machine, "spec", "clusterName"))
        again: float | None = None
        ready = False
        if machine is None:
            conds.set("BYOHostReady", False, "WaitingForMachineOwnerReference")
        elif host is None and not infra_ready(cluster):
            conds.set("BYOHostReady", False, "WaitingForClusterInfrastructure")
        elif host is None and not dig(machine, "spec", "bootstrap", "dataSecretName"):
            conds.set("BYOHostReady", False, "WaitingForBootstrapDataSecret")
        elif host is None:
            host, again = await self._claim(bm, machine, cluster)
            if host is None:
                conds.set("BYOHostReady", False, "BYOHostsUnavailable", "no free ByoHost matches the selector")
        elif not dig(host, "status", "machineRef") and UNREGISTERING_ANNOTATION not in annotations_of(host):
            # Half a claim: labels written, machineRef not (the controller stopped between the two writes).
            # A host being released also lacks machineRef for a moment, but carries the unregistering mark.
            host = await self._attach(bm, machine, cluster, host)
        if host is not None and machine is not None:
            bm, ready, again = await self._track(bm, host, str(dig(machine, "spec", "clusterName")), conds)
        status: dict[str, Any] = {"ready": ready}
        if host is not None and dig(host, "status", "hostinfo"):
            status["hostinfo"] = dig(host, "status", "hostinfo")
        if ready:
            conds.set("BYOHostReady", True)
        conds.summary("Ready", "BYOHostReady")
        status["conditions"] = conds.build()
        if differs(bm.get("status"), status):
            await self.ctx.patch_status(bm, status)
        return again

    async def _claim(self, bm: Obj, machine: Obj, cluster: Obj | None) -> tuple[Obj | None, float | None]:
        wait = self.ctx.wait_step("claim", bm, self.ctx.options.host_claim_delay)
        if wait:
            return None, wait
        selector = dig(bm, "spec", "selector")
        candidates = sorted(
            (
                h
                for h in self.ctx.informer("ByoHost").items(namespace_of(bm))
                if selector_matches(selector, labels_of(h))
                and CLUSTER_NAME_LABEL not in labels_of(h)
                and UNREGISTERING_ANNOTATION not in annotations_of(h)
                and not dig(h, "status", "machineRef")
                and not deleting(h)
                and name_of(h) not in self.ctx.options.never_claim_hosts
            ),
            key=name_of,
        )
        if not candidates:
            return None, self.ctx.options.claim_retry
        return await self._attach(bm, machine, cluster, candidates[0]), None

    async def _attach(self, bm: Obj, machine: Obj, cluster: Obj | None, host: Obj) -> Obj:
        """Claim ``host`` for ``bm``: labels, annotations and bootstrap secret, then ``status.machineRef``.

        Two writes, as upstream's patch helper does; a controller stopped between them finds the host
        labelled for its ByoMachine on the next reconcile and calls this again, which completes the claim.
        """
        cluster_name = str(dig(machine, "spec", "clusterName"))
        annotations = {
            ENDPOINT_IP_ANNOTATION: (endpoint_of(cluster) or ("", 0))[0],
            K8S_VERSION_ANNOTATION: str(dig(machine, "spec", "version") or ""),
        }
        if name_of(host) in self.ctx.options.fail_bootstrap_hosts:
            annotations[FAIL_BOOTSTRAP_ANNOTATION] = "true"
        # The resourceVersion makes the claim conditional: a host taken meanwhile answers 409.
        host = await self.ctx.patch(
            host,
            {
                "metadata": {
                    "resourceVersion": meta(host).get("resourceVersion"),
                    "labels": {CLUSTER_NAME_LABEL: cluster_name, BYOMACHINE_NAME_LABEL: name_of(bm)},
                    "annotations": annotations,
                },
                "spec": {
                    "bootstrapSecret": {
                        "apiVersion": "v1",
                        "kind": "Secret",
                        "namespace": namespace_of(bm),
                        "name": str(dig(machine, "spec", "bootstrap", "dataSecretName")),
                    }
                },
            },
        )
        host = await self.ctx.patch_status(
            host,
            {
                "machineRef": {
                    "apiVersion": INFRA_VERSION,
                    "kind": "ByoMachine",
                    "name": name_of(bm),
                    "namespace": namespace_of(bm),
                    "uid": meta(bm).get("uid"),
                }
            },
        )
        log.info(
            "byohost_claimed",
            namespace=namespace_of(bm),
            host=name_of(host),
            byomachine=name_of(bm),
            cluster=cluster_name,
        )
        return host

    async def _track(self, bm: Obj, host: Obj, cluster: str, conds: Conditions) -> tuple[Obj, bool, float | None]:
        """Follow the host's bootstrap; once it succeeded, the node "appears": providerID and ready."""
        cond = find_condition(host, BOOTSTRAP_CONDITION)
        if cond is None or cond.get("status") != "True":
            if cond is not None and cond.get("reason") == "CloudInitExecutionFailed":
                conds.set(
                    "BYOHostReady",
                    False,
                    "CloudInitExecutionFailed",
                    str(cond.get("message") or f"bootstrap of host {name_of(host)} failed"),
                    "Error",
                )
            else:
                conds.set("BYOHostReady", False, "WaitingForHostBootstrap", f"host {name_of(host)} is bootstrapping")
            return bm, False, None
        if cluster in self.ctx.options.never_initialize_clusters:
            conds.set("BYOHostReady", False, "WaitingForNode", f"node {name_of(host)} has not joined")
            return bm, False, None
        wait = self.ctx.wait_step("node-ready", bm, self.ctx.options.node_ready_delay)
        if wait:
            conds.set("BYOHostReady", False, "WaitingForNode", f"node {name_of(host)} has not joined yet")
            return bm, False, wait
        if not dig(bm, "spec", "providerID"):
            bm = await self.ctx.patch(bm, {"spec": {"providerID": f"byoh://{name_of(host)}/{suffix(6)}"}})
        return bm, True, None
