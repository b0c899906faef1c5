"""Exact scale-down: before a worker set shrinks, mark the Machine on each leaving host for deletion.

CAPI's MachineSet picks the Machines to delete by its deletion priority: Machines annotated
``cluster.x-k8s.io/delete-machine`` first, then unhealthy ones, then its ``deletePolicy`` (Random
by default). Lowering ``replicas`` alone may therefore remove the Machine on a host that stays
and keep the one on the host that leaves. So, before the re-apply lowers the count, every worker
Machine whose host is no longer in the spec gets the annotation.

A leaving host is found from what BYOH records: a ByoHost claimed by this cluster (its
``cluster.x-k8s.io/cluster-name`` label) whose ``o2ims.oran.org/host-id`` is not in the spec;
``status.machineRef`` names its ByoMachine, which is the ``infrastructureRef`` of exactly one
Machine of the cluster's MachineDeployment. Only Machines of our own MachineDeployment (one that
carries this PR's ``o2ims.oran.org/pr-id``) are touched; another's stops the job (``ForeignObject``).
Level-based: an already annotated Machine is left as it is, so a retry changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import structlog

from services.capi_renderer.domain import BYOH_VERSION, INFRA_GROUP, ClusterNames, CoreApiVersion, api_versions
from shared.errors import PermanentError, ServiceError
from shared.models import ClusterSpec
from shared.objects import (
    CLUSTER_NAME_LABEL,
    CONTROL_PLANE_LABEL,
    DELETE_MACHINE_ANNOTATION,
    DEPLOYMENT_NAME_LABEL,
    HOST_ID_LABEL,
    PR_ID_LABEL,
    annotations_of,
    labels_of,
    meta,
)

log = structlog.get_logger(__name__)

Obj = dict[str, Any]


class MachineApi(Protocol):
    """The part of ``shared.kube.KubeClient`` used here (a fake in unit tests)."""

    async def list(
        self, api_version: str, kind: str, namespace: str | None = None, *, label_selector: str | None = None
    ) -> tuple[list[Obj], str]: ...

    async def patch(
        self, api_version: str, kind: str, name: str, namespace: str | None, patch: Mapping[str, Any]
    ) -> Obj: ...

    async def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None: ...


def _ref_name(ref: Any) -> str | None:
    name = ref.get("name") if isinstance(ref, Mapping) else None
    return str(name) if name else None


def leaving_machines(spec: ClusterSpec, hosts: list[Obj], machines: list[Obj]) -> dict[str, Obj]:
    """host id → the worker Machine on it, for every host claimed by the cluster but not in ``spec``.

    ``hosts`` are the namespace's ByoHosts claimed by the cluster, ``machines`` the Machines of its
    MachineDeployment. Pure, so the selection is tested without an API server.
    """
    wanted = {h.host_id for h in spec.all_hosts}
    by_infra = {
        name: m
        for m in machines
        if (name := _ref_name((m.get("spec") or {}).get("infrastructureRef")))
        and CONTROL_PLANE_LABEL not in labels_of(m)
        and labels_of(m).get(CLUSTER_NAME_LABEL) == spec.name
    }
    out: dict[str, Obj] = {}
    for host in hosts:
        host_id = labels_of(host).get(HOST_ID_LABEL)
        if not host_id or host_id in wanted or labels_of(host).get(CLUSTER_NAME_LABEL) != spec.name:
            continue
        byomachine = _ref_name((host.get("status") or {}).get("machineRef"))
        machine = by_infra.get(byomachine) if byomachine else None
        if machine is not None:
            out[str(host_id)] = machine
    return out


async def mark_leaving_workers(
    client: MachineApi, spec: ClusterSpec, core_api_version: CoreApiVersion, pr_id: str
) -> list[str]:
    """Annotate the Machine on each leaving worker host ``delete-machine``; returns those hosts' ids."""
    machine_av = api_versions(core_api_version)["MachineDeployment"]  # Machines share the core group/version
    names = ClusterNames(spec.name)
    md = await client.get(machine_av, "MachineDeployment", names.workers, spec.namespace)
    if md is None:
        return []  # nothing to scale down yet (the re-apply creates it)
    if labels_of(md).get(PR_ID_LABEL) != pr_id:
        raise PermanentError(
            f"MachineDeployment {spec.namespace}/{names.workers} is not this PR's: its Machines are left alone",
            reason="ForeignObject",
        )
    try:
        hosts, _ = await client.list(
            f"{INFRA_GROUP}/{BYOH_VERSION}",
            "ByoHost",
            spec.namespace,
            label_selector=f"{CLUSTER_NAME_LABEL}={spec.name}",
        )
        machines, _ = await client.list(
            machine_av, "Machine", spec.namespace, label_selector=f"{DEPLOYMENT_NAME_LABEL}={names.workers}"
        )
    except ServiceError as exc:
        exc.message = f"finding the Machines of leaving hosts of {spec.namespace}/{spec.name}: {exc.message}"
        exc.args = (exc.message,)
        raise
    leaving = leaving_machines(spec, hosts, machines)
    for host_id, machine in sorted(leaving.items()):
        name = str(meta(machine).get("name"))
        if DELETE_MACHINE_ANNOTATION in annotations_of(machine):
            continue
        await client.patch(
            machine_av,
            "Machine",
            name,
            spec.namespace,
            {"metadata": {"annotations": {DELETE_MACHINE_ANNOTATION: "true"}}},
        )
        log.info(
            "machine_marked_for_deletion", cluster=spec.name, namespace=spec.namespace, host_id=host_id, machine=name
        )
    return sorted(leaving)
