"""Simulated ClusterResourceSet controller: ``ResourcesApplied`` once a matching cluster's control plane is up.

Upstream applies the resources through the workload cluster's API as soon as it
is reachable; the sandbox has no workload API, so "reachable" means the Cluster
reports its control plane initialised. Strategy ApplyOnce: once applied, the
condition stays True. ClusterResourceSetBindings are not simulated (no CRD).
"""

from __future__ import annotations

from typing import Any

from sandbox.capi.machines import cluster_cp_initialized
from sandbox.capi.runtime import Controller, Key
from sandbox.capi.shapes import Conditions, Obj, differs, own_condition_true, selector_matches
from shared.objects import deleting, dig, labels_of, meta, name_of, namespace_of


class ClusterResourceSetController(Controller):
    kind = "ClusterResourceSet"

    def setup(self) -> None:
        def from_cluster(cluster: Obj) -> list[Key]:
            ns = namespace_of(cluster)
            return [(ns, name_of(crs)) for crs in self.ctx.informer(self.kind).items(ns)]

        self.watch("Cluster", from_cluster)

    async def reconcile(self, namespace: str, name: str) -> float | None:
        crs = self.ctx.get(self.kind, namespace, name)
        if crs is None or deleting(crs):
            return None
        selector = dig(crs, "spec", "clusterSelector") or {}
        # An empty selector matches no cluster (upstream semantics for CRS).
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            return None
        clusters = [
            c
            for c in self.ctx.informer("Cluster").items(namespace)
            if selector_matches(selector, labels_of(c)) and not deleting(c)
        ]
        v1beta2 = self.ctx.options.v1beta2
        conds = Conditions(dig(crs, "status", "conditions"), v1beta2=v1beta2)
        applied = own_condition_true(crs, "ResourcesApplied")
        missing = await self._missing_resources(crs)
        again: float | None = None
        if missing and not applied:
            message = f"failed to get {missing}"
            conds.set(
                "ResourcesApplied", False, "RetrievingResourceFailed", message, "Warning", v1beta2_reason="NotApplied"
            )
            again = 5.0
        elif applied or any(cluster_cp_initialized(c) for c in clusters):
            wait = None if applied else self.ctx.wait_step("crs-apply", crs, self.ctx.options.crs_apply_delay)
            if wait:
                return wait
            conds.set("ResourcesApplied", True, v1beta2_reason="Applied")
        else:
            return None
        status: dict[str, Any] = {"conditions": conds.build()}
        if meta(crs).get("generation") is not None:
            status["observedGeneration"] = meta(crs)["generation"]
        if differs(crs.get("status"), status):
            await self.ctx.patch_status(crs, status)
        return again

    async def _missing_resources(self, crs: Obj) -> str | None:
        for res in dig(crs, "spec", "resources") or []:
            kind, name = str(res.get("kind")), str(res.get("name"))
            if kind not in {"ConfigMap", "Secret"}:
                continue
            if await self.ctx.client.get("v1", kind, name, namespace_of(crs)) is None:
                return f"{kind} {namespace_of(crs)}/{name}"
        return None
