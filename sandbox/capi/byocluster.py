"""Simulated BYOH ByoCluster controller: ready as soon as a Cluster owns it; port defaults to 6443."""

from __future__ import annotations

from sandbox.capi.runtime import Controller
from sandbox.capi.shapes import Obj, differs, owner_name, ref_name
from shared.objects import deleting, dig, meta


class ByoClusterController(Controller):
    kind = "ByoCluster"
    identity = "byoh"  # BYOH objects are written as BYOH's controller manager

    def setup(self) -> None:
        def from_cluster(cluster: Obj) -> list[tuple[str, str]]:
            ref = dig(cluster, "spec", "infrastructureRef")
            name = ref_name(ref)
            if name and ref.get("kind") == self.kind:
                return [(str(meta(cluster).get("namespace")), name)]
            return []

        self.watch("Cluster", from_cluster)

    async def reconcile(self, namespace: str, name: str) -> float | None:
        bc = self.ctx.get(self.kind, namespace, name)
        if bc is None or deleting(bc) or not owner_name(bc, "Cluster"):
            return None
        endpoint = dig(bc, "spec", "controlPlaneEndpoint") or {}
        if endpoint.get("host") and not endpoint.get("port"):
            bc = await self.ctx.patch(bc, {"spec": {"controlPlaneEndpoint": {"port": 6443}}})
        wait = self.ctx.wait_step("infra-ready", bc, self.ctx.options.infra_ready_delay)
        if wait:
            return wait
        status = {"ready": True}
        if differs(bc.get("status"), status):
            await self.ctx.patch_status(bc, status)
        return None
