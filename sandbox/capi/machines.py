"""What the KCP, MachineDeployment and Cluster simulators share: reading cluster state and making Machines."""

from __future__ import annotations

import copy
import zlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, assert_never, get_args

from sandbox.capi.options import INFRA_GROUP, INFRA_VERSION
from sandbox.capi.rollout import CLONED_FROM_GROUPKIND_ANNOTATION, CLONED_FROM_NAME_ANNOTATION
from sandbox.capi.runtime import SimContext
from sandbox.capi.shapes import Obj, make_ref, owner_ref, ref_name
from shared.errors import TemporaryError
from shared.objects import (
    CLUSTER_NAME_LABEL,
    CONTROL_PLANE_LABEL,
    DELETE_MACHINE_ANNOTATION,
    annotations_of,
    deleting,
    dig,
    labels_of,
    meta,
    name_of,
)


def machine_ready(machine: Mapping[str, Any]) -> bool:
    """A Machine counts as ready once its node exists (the sandbox's nodes are Ready when they appear)."""
    return bool(ref_name(dig(machine, "status", "nodeRef")))


def cluster_machines(ctx: SimContext, namespace: str, cluster: str) -> list[Obj]:
    return [
        m
        for m in ctx.informer("Machine").items(namespace)
        if dig(m, "spec", "clusterName") == cluster or labels_of(m).get(CLUSTER_NAME_LABEL) == cluster
    ]


def is_control_plane(machine: Mapping[str, Any]) -> bool:
    return CONTROL_PLANE_LABEL in labels_of(machine)


def infra_ready(cluster: Mapping[str, Any] | None) -> bool:
    return bool(
        dig(cluster, "status", "infrastructureReady")
        or dig(cluster, "status", "initialization", "infrastructureProvisioned")
    )


def cluster_cp_initialized(cluster: Mapping[str, Any] | None) -> bool:
    if dig(cluster, "status", "initialization", "controlPlaneInitialized"):
        return True
    for cond in dig(cluster, "status", "conditions") or []:
        if cond.get("type") == "ControlPlaneInitialized" and cond.get("status") == "True":
            return True
    return False


def kcp_initialized(kcp: Mapping[str, Any] | None) -> bool:
    return bool(dig(kcp, "status", "initialized") or dig(kcp, "status", "initialization", "controlPlaneInitialized"))


def endpoint_of(cluster: Mapping[str, Any] | None) -> tuple[str, int] | None:
    ep = dig(cluster, "spec", "controlPlaneEndpoint")
    if isinstance(ep, Mapping) and ep.get("host"):
        return str(ep["host"]), int(ep.get("port") or 6443)
    return None


DeletePolicy = Literal["Random", "Newest", "Oldest"]
DELETE_POLICIES: tuple[DeletePolicy, ...] = get_args(DeletePolicy)


def delete_policy(md: Mapping[str, Any]) -> DeletePolicy:
    """The MachineDeployment's deletion order (v1beta1 ``strategy.rollingUpdate.deletePolicy``, v1beta2
    ``deletion.order``); ``Random`` when unset, as CAPI defaults it."""
    value = dig(md, "spec", "deletion", "order") or dig(md, "spec", "strategy", "rollingUpdate", "deletePolicy")
    return value if value in DELETE_POLICIES else "Random"


def _random_rank(name: str) -> float:
    # CAPI's Random policy ranks by a hash of the Machine name: arbitrary, but stable between reconciles.
    return (zlib.crc32(name.encode()) % 1_000_000) / 1_000_000


def _created(machine: Obj) -> float:
    stamp = str(meta(machine).get("creationTimestamp") or "")
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def scale_down_order(machines: list[Obj], policy: DeletePolicy = "Oldest") -> list[Obj]:
    """Which Machines go first when scaling down, CAPI's priority: Machines annotated
    ``cluster.x-k8s.io/delete-machine``, then unhealthy ones (no node), then by ``policy``:
    ``Oldest`` / ``Newest`` by creation time, ``Random`` by a hash of the name. Ties go by name."""

    def key(m: Obj) -> tuple[int, float, str]:
        if DELETE_MACHINE_ANNOTATION in annotations_of(m):
            tier = 0
        elif not machine_ready(m):
            tier = 1
        else:
            tier = 2
        match policy:
            case "Random":
                rank = _random_rank(name_of(m))
            case "Oldest":
                rank = _created(m)
            case "Newest":
                rank = -_created(m)
            case _:
                assert_never(policy)
        return tier, rank, name_of(m)

    return sorted(machines, key=key)


def alive(machines: list[Obj]) -> list[Obj]:
    return [m for m in machines if not deleting(m)]


async def create_machine(
    ctx: SimContext,
    *,
    owner: Obj,
    name: str,
    cluster: str,
    labels: Mapping[str, str],
    version: str | None,
    template_name: str,
) -> Obj:
    """Create a ByoMachine (from the ByoMachineTemplate), then the Machine referencing it.

    Upstream's order (KCP and MachineSet clone the infrastructure object first, owned by themselves, and
    create the Machine last): a controller stopped between the two writes leaves an unreferenced ByoMachine,
    which :func:`delete_orphaned_infra` removes, never a Machine whose infrastructure does not exist (nothing
    would ever create it, and the Machine would block its owner forever). The Machine controller then makes
    the Machine the ByoMachine's controlling owner.
    """
    namespace = str(meta(owner).get("namespace"))
    template = await ctx.client.get(INFRA_VERSION, "ByoMachineTemplate", template_name, namespace)
    if template is None:
        raise TemporaryError(f"ByoMachineTemplate {namespace}/{template_name} not found", reason="TemplateMissing")
    v1beta2 = ctx.options.v1beta2
    await ctx.create(
        {
            "apiVersion": INFRA_VERSION,
            "kind": "ByoMachine",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": dict(labels),
                # What KCP compares with its current template to tell an outdated Machine.
                "annotations": {
                    CLONED_FROM_NAME_ANNOTATION: template_name,
                    CLONED_FROM_GROUPKIND_ANNOTATION: f"ByoMachineTemplate.{INFRA_GROUP}",
                },
                "ownerReferences": [owner_ref(owner)],
            },
            "spec": copy.deepcopy(dig(template, "spec", "template", "spec") or {}),
        }
    )
    spec: Obj = {
        "clusterName": cluster,
        "bootstrap": {},
        "infrastructureRef": make_ref(INFRA_VERSION, "ByoMachine", name, namespace, v1beta2=v1beta2),
    }
    if version:
        spec["version"] = version
    return await ctx.create(
        {
            "apiVersion": ctx.options.core(),
            "kind": "Machine",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": dict(labels),
                "ownerReferences": [owner_ref(owner, controller=True)],
            },
            "spec": spec,
        }
    )


def unadopted_owner(bm: Obj, kind: str) -> list[tuple[str, str]]:
    """(namespace, name) of the ``kind`` that created ``bm``, while no Machine owns it (watch mapper: an orphan
    or a ByoMachine whose Machine is still to come)."""
    refs = meta(bm).get("ownerReferences") or []
    if any(r.get("kind") == "Machine" for r in refs):
        return []
    return [(str(meta(bm).get("namespace")), str(r["name"])) for r in refs if r.get("kind") == kind and r.get("name")]


async def delete_orphaned_infra(ctx: SimContext, owner: Obj) -> None:
    """Delete the ByoMachines ``owner`` created whose Machine was never created (see :func:`create_machine`).

    One had a Machine once if the Machine owns it; otherwise the server is asked (not the cache, which may
    not have seen a Machine whose create succeeded but whose answer was lost) before deleting.
    """
    uid = meta(owner).get("uid")
    namespace = str(meta(owner).get("namespace"))
    for bm in ctx.informer("ByoMachine").items(namespace):
        refs = meta(bm).get("ownerReferences") or []
        if deleting(bm) or not any(r.get("uid") == uid for r in refs) or any(r.get("kind") == "Machine" for r in refs):
            continue
        if ctx.get("Machine", namespace, name_of(bm)) is not None:
            continue
        if await ctx.client.get(ctx.options.core(), "Machine", name_of(bm), namespace) is not None:
            continue
        await ctx.delete(bm)


def replica_counts(machines: list[Obj]) -> dict[str, int]:
    live = alive(machines)
    ready = sum(1 for m in live if machine_ready(m))
    return {"replicas": len(live), "ready": ready}
