"""The pure reducer: from the latest observed CAPI/BYOH objects of one cluster to its truthful summary.

No I/O here. Objects are plain dicts as the API server returns them, in either the
CAPI ``v1beta1`` or ``v1beta2`` status shape (readers look in both places), and the
rules are DESIGN §6: a cluster is ready only when its control plane is initialised,
the KubeadmControlPlane and MachineDeployments have all their replicas ready, every
Machine is ``Running`` with a ``nodeRef``, its CNI ClusterResourceSet (if it has one)
is applied, the ``<cluster>-kubeconfig`` Secret exists and, when enabled, the workload
probe saw every node Ready. ``Cluster.phase == Provisioned`` alone proves nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from services.status_watcher.versions import label_version, version_of
from shared.fields import printable
from shared.objects import (
    CLUSTER_NAME_LABEL,
    CONTROL_PLANE_LABEL,
    HOST_ID_LABEL,
    K8S_VERSION_LABEL,
    PR_ID_LABEL,
    UNREGISTERING_ANNOTATION,
    Obj,
    condition,
    condition_true,
    deleting,
    dig,
    labels_of,
    meta,
)
from shared.payloads import ByoHostSummary, ClusterSummary, ClusterTransition

BOOTSTRAP_CONDITION = "K8sNodeBootstrapSucceeded"
WAITING_FOR_MACHINE_REF = "WaitingForMachineRefToBeAssigned"
CLOUD_INIT_FAILED = "CloudInitExecutionFailed"
KUBECONFIG_SUFFIX = "-kubeconfig"


# ── reading objects in both shapes (the generic readers are shared.objects) ─────────────


def _status_field(obj: Obj | None, name: str) -> Any:
    """A v1beta1 status field, also where v1beta2 keeps the deprecated copy."""
    value = dig(obj, "status", name)
    return value if value not in (None, "") else dig(obj, "status", "deprecated", "v1beta1", name)


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def selector_matches(selector: Mapping[str, Any] | None, have: Mapping[str, str]) -> bool:
    """``metav1.LabelSelector`` semantics, except that an empty selector matches nothing (CRS rule)."""
    if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if have.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or ():
        key, op, values = expr.get("key"), expr.get("operator"), list(expr.get("values") or ())
        present = key in have
        if (op == "In" and (not present or have[key] not in values)) or (
            op == "NotIn" and present and have[key] in values
        ):
            return False
        if (op == "Exists" and not present) or (op == "DoesNotExist" and present):
            return False
    return True


# ── which cluster an object belongs to (as CAPI sets it) ───────────────────────────────


def owner_name(obj: Obj, kind: str) -> str | None:
    for ref in meta(obj).get("ownerReferences") or ():
        if isinstance(ref, Mapping) and ref.get("kind") == kind and ref.get("name"):
            return str(ref["name"])
    return None


def cluster_of(obj: Obj) -> str | None:
    """The cluster name of a KCP, MachineDeployment or Machine: ``spec.clusterName``, label, or owner."""
    found = dig(obj, "spec", "clusterName") or labels_of(obj).get(CLUSTER_NAME_LABEL) or owner_name(obj, "Cluster")
    return str(found) if found else None


def host_cluster(host: Obj) -> tuple[str, str] | None:
    """(namespace, cluster) of the cluster that claimed a ByoHost; its ByoMachine may live in another namespace."""
    name = labels_of(host).get(CLUSTER_NAME_LABEL)
    if not name:
        return None
    namespace = dig(host, "status", "machineRef", "namespace") or meta(host).get("namespace") or ""
    return str(namespace), str(name)


def kubeconfig_owner(secret_name: str) -> str | None:
    """The cluster whose kubeconfig Secret this is (``<cluster>-kubeconfig``), else None."""
    if secret_name.endswith(KUBECONFIG_SUFFIX) and len(secret_name) > len(KUBECONFIG_SUFFIX):
        return secret_name[: -len(KUBECONFIG_SUFFIX)]
    return None


def control_plane_ref(cluster: Obj | None) -> str | None:
    ref = dig(cluster, "spec", "controlPlaneRef")
    if isinstance(ref, Mapping) and ref.get("kind") == "KubeadmControlPlane" and ref.get("name"):
        return str(ref["name"])
    return None


# ── the cluster summary ────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class ProbeResult:
    """What the workload probe saw: ``ok`` only when every expected node answered Ready."""

    ok: bool
    detail: str


@dataclass(frozen=True)
class ClusterView:
    """The latest observed objects of one cluster (the cache assembles it; nothing here does I/O)."""

    namespace: str
    name: str
    cluster: Obj | None
    control_plane: Obj | None = None
    deployments: Sequence[Obj] = ()
    machines: Sequence[Obj] = ()
    #: Every ClusterResourceSet of the namespace; the reducer picks those whose selector matches.
    resource_sets: Sequence[Obj] = ()
    #: ByoHosts claimed by this cluster.
    hosts: Sequence[Obj] = ()
    kubeconfig_present: bool = False
    #: None when the probe is disabled; otherwise its last result for the current state (None = not run yet).
    probe_enabled: bool = False
    probe: ProbeResult | None = None


def is_control_plane_machine(machine: Obj) -> bool:
    return CONTROL_PLANE_LABEL in labels_of(machine)


def machine_phase(machine: Obj) -> str:
    phase = str(dig(machine, "status", "phase") or "Pending")
    return "Deleting" if deleting(machine) and phase != "Deleted" else phase


def machine_up(machine: Obj) -> bool:
    return machine_phase(machine) == "Running" and bool(dig(machine, "status", "nodeRef", "name"))


def _updated(machines: Sequence[Obj], version: str | None) -> int:
    """Machines at ``version`` that run with a node and are not being deleted (a rollout's progress)."""
    if version is None:
        return 0
    return sum(1 for m in machines if machine_up(m) and version_of(dig(m, "spec", "version")) == version)


def control_plane_initialized(cluster: Obj | None, kcp: Obj | None) -> bool:
    return bool(
        dig(kcp, "status", "initialized") is True
        or dig(kcp, "status", "initialization", "controlPlaneInitialized") is True
        or dig(cluster, "status", "initialization", "controlPlaneInitialized") is True
        or condition_true(cluster, "ControlPlaneInitialized")
    )


def _failure_text(reason: str, kind: str, name: str, message: Any) -> str:
    text = f"{reason} on {kind} {name}"
    # Objects' status text is foreign: made printable before it travels on the bus.
    return printable(f"{text}: {str(message).strip()[:300]}" if message else text, 1024)


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def pr_id_of(obj: Obj | None) -> str | None:
    """The object's PR-id label when it is one of our PR ids (a UUID); a hand-made label routes nowhere."""
    value = labels_of(obj).get(PR_ID_LABEL)
    return value if isinstance(value, str) and _UUID.fullmatch(value) else None


def _line(value: str | None) -> str | None:
    return printable(value, 128, single_line=True) if value is not None else None


def cluster_failure(view: ClusterView) -> str | None:
    """The first failure CAPI/BYOH reports for this cluster, as a precise reason string (stuck is not failed)."""
    found: list[str] = []
    cluster, kcp = view.cluster, view.control_plane
    for kind, obj in (("Cluster", cluster), ("KubeadmControlPlane", kcp)):
        reason = _status_field(obj, "failureReason")
        if reason or dig(obj, "status", "phase") == "Failed":
            found.append(
                _failure_text(
                    str(reason or "Failed"), kind, str(meta(obj).get("name")), _status_field(obj, "failureMessage")
                )
            )
    for md in sorted(view.deployments, key=_name):
        if dig(md, "status", "phase") == "Failed":
            found.append(_failure_text("Failed", "MachineDeployment", _name(md), None))
    for machine in sorted(view.machines, key=_name):
        reason = _status_field(machine, "failureReason")
        if reason or machine_phase(machine) == "Failed":
            found.append(
                _failure_text(
                    str(reason or "MachineFailed"), "Machine", _name(machine), _status_field(machine, "failureMessage")
                )
            )
    for host in sorted(view.hosts, key=_name):
        cond = condition(host, BOOTSTRAP_CONDITION)
        if cond is not None and cond.get("status") != "True" and cond.get("reason") == CLOUD_INIT_FAILED:
            found.append(_failure_text(CLOUD_INIT_FAILED, "ByoHost", _name(host), cond.get("message")))
    if not found:
        # CAPI mirrors the ByoMachine's failure into the Machine; this catches hosts we do not see.
        for machine in sorted(view.machines, key=_name):
            cond = condition(machine, "InfrastructureReady")
            if cond is not None and cond.get("status") != "True" and cond.get("reason") == CLOUD_INIT_FAILED:
                found.append(_failure_text(CLOUD_INIT_FAILED, "Machine", _name(machine), cond.get("message")))
    if not found:
        return None
    return found[0] if len(found) == 1 else f"{found[0]} (and {len(found) - 1} more)"


def _name(obj: Obj) -> str:
    return str(meta(obj).get("name") or "")


def matching_resource_sets(view: ClusterView) -> list[Obj]:
    have = labels_of(view.cluster)
    return [
        crs
        for crs in view.resource_sets
        if not deleting(crs) and selector_matches(dig(crs, "spec", "clusterSelector"), have)
    ]


def summarize_cluster(view: ClusterView) -> ClusterSummary:
    """The summary of one cluster; ``ready`` only when every DESIGN §6 requirement holds and nothing failed."""
    cluster = view.cluster
    if cluster is None:
        return ClusterSummary(namespace=view.namespace, name=view.name, exists=False)
    kcp = view.control_plane
    initialized = control_plane_initialized(cluster, kcp)
    cp_desired = _int(dig(kcp, "spec", "replicas"), 1) if kcp is not None else 0
    cp_ready = _int(dig(kcp, "status", "readyReplicas"))
    cp_current = _int(dig(kcp, "status", "replicas"))
    workers_desired = sum(_int(dig(md, "spec", "replicas"), 1) for md in view.deployments if not deleting(md))
    workers_ready = sum(_int(dig(md, "status", "readyReplicas")) for md in view.deployments if not deleting(md))
    workers_current = sum(_int(dig(md, "status", "replicas")) for md in view.deployments if not deleting(md))
    machines = {_name(m): printable(machine_phase(m), 64, single_line=True) for m in sorted(view.machines, key=_name)}
    not_up = sorted(_name(m) for m in view.machines if not machine_up(m))
    crs = matching_resource_sets(view)
    cni_applied = bool(crs) and all(condition_true(c, "ResourcesApplied") for c in crs)
    failure = cluster_failure(view)
    cp_machines = [m for m in view.machines if is_control_plane_machine(m)]
    cp_version = version_of(dig(kcp, "spec", "version"))
    live = [md for md in view.deployments if not deleting(md)]
    md_versions = {version_of(dig(md, "spec", "template", "spec", "version")) for md in live}
    workers_version = md_versions.pop() if len(md_versions) == 1 else None
    machine_versions = {
        _name(m): v for m in sorted(view.machines, key=_name) if (v := version_of(dig(m, "spec", "version")))
    }

    waiting: list[str] = []
    if deleting(cluster):
        waiting.append("cluster is being deleted")
    if kcp is None:
        waiting.append("KubeadmControlPlane not observed")
    if not initialized:
        waiting.append("control plane not initialized")
    if kcp is not None and (cp_ready != cp_desired or cp_current != cp_desired):
        waiting.append(f"control plane ready {cp_ready}/{cp_desired}")
    if workers_ready != workers_desired or workers_current != workers_desired:
        waiting.append(f"workers ready {workers_ready}/{workers_desired}")
    if len(view.machines) < cp_desired + workers_desired:
        waiting.append(f"machines {len(view.machines)}/{cp_desired + workers_desired}")
    if not_up:
        waiting.append(f"machines not Running with a node: {', '.join(not_up[:5])}")
    if crs and not cni_applied:
        waiting.append("CNI ClusterResourceSet not applied")
    if not view.kubeconfig_present:
        waiting.append("kubeconfig Secret missing")
    if view.probe_enabled and not waiting:
        if view.probe is None:
            waiting.append("workload probe pending")
        elif not view.probe.ok:
            waiting.append(f"workload probe: {view.probe.detail}")
    ready = not waiting and failure is None
    return ClusterSummary(
        namespace=view.namespace,
        name=view.name,
        pr_id=pr_id_of(cluster),
        exists=True,
        phase=_line(str(dig(cluster, "status", "phase") or "") or None),
        control_plane_initialized=initialized,
        control_plane_ready=cp_ready,
        control_plane_desired=cp_desired,
        workers_ready=workers_ready,
        workers_desired=workers_desired,
        machines=machines,
        control_plane_version=cp_version,
        control_plane_updated=_updated(cp_machines, cp_version),
        workers_version=workers_version,
        workers_updated=_updated([m for m in view.machines if not is_control_plane_machine(m)], workers_version),
        machine_versions=machine_versions,
        cni_applied=cni_applied,
        kubeconfig_present=view.kubeconfig_present,
        ready=ready,
        failure=failure,
        waiting_for=None if ready or failure else (printable(waiting[0]) if waiting else None),
    )


def needs_probe(view: ClusterView) -> bool:
    """Whether everything but the probe holds, i.e. the probe is what decides readiness now."""
    if not view.probe_enabled or view.cluster is None:
        return False
    summary = summarize_cluster(replace(view, probe_enabled=False))
    return summary.ready


def expected_nodes(view: ClusterView) -> frozenset[str]:
    return frozenset(str(dig(m, "status", "nodeRef", "name")) for m in view.machines if machine_up(m))


# ── the ByoHost summary ────────────────────────────────────────────────────────────────


def summarize_byohost(namespace: str, name: str, host: Obj | None) -> ByoHostSummary:
    """registered = the agent reported in; free = registered, unclaimed, and waiting for a machineRef."""
    if host is None:
        return ByoHostSummary(namespace=namespace, name=name, exists=False)
    cond = condition(host, BOOTSTRAP_CONDITION)
    have = labels_of(host)
    claimed = have.get(CLUSTER_NAME_LABEL) or dig(host, "status", "machineRef", "name")
    registered = cond is not None or bool(dig(host, "status", "hostinfo"))
    annotations = meta(host).get("annotations") or {}
    free = (
        registered
        and not deleting(host)
        and not claimed
        and UNREGISTERING_ANNOTATION not in annotations
        and cond is not None
        and cond.get("status") != "True"
        and cond.get("reason") == WAITING_FOR_MACHINE_REF
    )
    bootstrap = None
    if cond is not None:
        reason = "True" if cond.get("status") == "True" else str(cond.get("reason") or cond.get("status") or "")
        bootstrap = _line(reason)
    failure = None
    if cond is not None and cond.get("status") != "True" and cond.get("reason") == CLOUD_INIT_FAILED:
        failure = _failure_text(CLOUD_INIT_FAILED, "ByoHost", name, cond.get("message"))
    return ByoHostSummary(
        namespace=namespace,
        name=name,
        host_id=have.get(HOST_ID_LABEL) or None,
        k8s_version=label_version(have.get(K8S_VERSION_LABEL)),
        exists=True,
        registered=registered,
        free=bool(free),
        claimed_by=str(claimed) if claimed else None,
        bootstrap_condition=bootstrap,
        failure=failure,
    )


# ── transitions ────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class LastState:
    """What was last published for a cluster: enough to detect the next edge."""

    ready: bool = False
    failed: bool = False


def cluster_transitions(last: LastState | None, new: ClusterSummary) -> list[ClusterTransition]:
    """``cluster.ready`` when it becomes ready, ``cluster.failed`` when a failure first appears."""
    out: list[ClusterTransition] = []
    if new.failure and not (last and last.failed):
        out.append(
            ClusterTransition(
                type="cluster.failed", namespace=new.namespace, name=new.name, pr_id=new.pr_id, reason=new.failure
            )
        )
    if new.ready and not (last and last.ready):
        out.append(ClusterTransition(type="cluster.ready", namespace=new.namespace, name=new.name, pr_id=new.pr_id))
    return out
