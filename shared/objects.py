"""Kubernetes objects as plain dicts: the readers every service and the sandbox share, and our label names.

Objects come from the API server (or the emulator) as JSON dicts, and nothing guarantees a
field is where it should be: every reader here tolerates a missing or ill-typed level and
answers "absent" (``None``, ``{}``, ``False``) instead of raising. ``meta`` and ``labels``
return the object's own dict when there is one, so a caller building an object may write
through them. Conditions are found in both CAPI shapes: ``v1beta1`` (``status.conditions``)
and ``v1beta2``, which keeps the other shape alongside.

The label and annotation names are the contract between the parts: capi_renderer writes
``PR_ID_LABEL`` on every object it applies and status_watcher reads it back; the BYOH agent
is started with ``HOST_ID_LABEL``; the CAPI names are the upstream controllers' own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

Obj = Mapping[str, Any]

# ── our labels ─────────────────────────────────────────────────────────────────────────
#: The ProvisioningRequest an object was applied for (written by capi_renderer, read back by
#: status_watcher: cluster status is addressed to that PR).
PR_ID_LABEL = "o2ims.oran.org/pr-id"
#: The inventory host id a BYOH agent registers its ByoHost with (and a ByoMachine selects).
HOST_ID_LABEL = "o2ims.oran.org/host-id"
#: The Kubernetes version a host's kubelet and kubeadm are installed at, as its BYOH agent registered it
#: (``--label``; value ``vX.Y.Z``, the normalised version). ByoMachineTemplates select on it too, so a host
#: released during an upgrade matches no template until it is re-prepared at the new version.
K8S_VERSION_LABEL = "o2ims.oran.org/k8s-version"
#: The cluster name on objects capi_renderer applies (the ClusterResourceSet selector, ownership).
CLUSTER_LABEL = "o2ims.oran.org/cluster"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"

# ── Cluster API and BYOH labels and annotations (upstream names) ────────────────────────
CLUSTER_NAME_LABEL = "cluster.x-k8s.io/cluster-name"
CONTROL_PLANE_LABEL = "cluster.x-k8s.io/control-plane"
DEPLOYMENT_NAME_LABEL = "cluster.x-k8s.io/deployment-name"
DELETE_MACHINE_ANNOTATION = "cluster.x-k8s.io/delete-machine"
UNREGISTERING_ANNOTATION = "byoh.infrastructure.cluster.x-k8s.io/unregistering"

#: ``metav1.Time`` as the API server writes it (RFC 3339, seconds, UTC).
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

#: Where conditions live: the object's own version first, then the other shape CAPI ≥ 1.11 keeps alongside.
CONDITION_PATHS: tuple[tuple[str, ...], ...] = (
    ("status", "conditions"),
    ("status", "v1beta2", "conditions"),
    ("status", "deprecated", "v1beta1", "conditions"),
)


def dig(obj: Any, *path: str) -> Any:
    """``obj[path[0]][path[1]]…``, or None as soon as a level is missing or not a mapping."""
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def meta(obj: Obj | None) -> dict[str, Any]:
    """The object's ``metadata`` (its own dict), or an empty one."""
    found = dig(obj, "metadata")
    return found if isinstance(found, dict) else {}


def labels_of(obj: Obj | None) -> dict[str, str]:
    found = meta(obj).get("labels")
    return found if isinstance(found, dict) else {}


def annotations_of(obj: Obj | None) -> dict[str, str]:
    found = meta(obj).get("annotations")
    return found if isinstance(found, dict) else {}


def name_of(obj: Obj | None) -> str:
    return str(meta(obj).get("name") or "")


def namespace_of(obj: Obj | None) -> str:
    return str(meta(obj).get("namespace") or "")


def deleting(obj: Obj | None) -> bool:
    """The object is being deleted (it has a ``deletionTimestamp``; finalizers may still hold it)."""
    return bool(meta(obj).get("deletionTimestamp"))


def condition(
    obj: Obj | None, ctype: str, paths: Sequence[Sequence[str]] = CONDITION_PATHS
) -> Mapping[str, Any] | None:
    """The first condition of type ``ctype`` found along ``paths`` (both CAPI shapes by default)."""
    for path in paths:
        found = dig(obj, *path)
        for cond in found if isinstance(found, list | tuple) else ():
            if isinstance(cond, Mapping) and cond.get("type") == ctype:
                return cond
    return None


def condition_true(obj: Obj | None, ctype: str, paths: Sequence[Sequence[str]] = CONDITION_PATHS) -> bool:
    cond = condition(obj, ctype, paths)
    return bool(cond and cond.get("status") == "True")


def timestamp(at: datetime) -> str:
    """``at`` as a ``metav1.Time`` string (a naive datetime is taken as UTC)."""
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime(TIME_FORMAT)


def now_timestamp() -> str:
    return timestamp(datetime.now(UTC))
