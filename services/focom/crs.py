"""The FocomProvisioningRequest CR ↔ focom's bus vocabulary (pure; no I/O).

A CR's ``spec`` is a FOCOM request whose name is the CR's name; its ``status`` mirrors the FPR
status (phase, message, children, lastUpdated) or, when focom refused the request, the refusal
(phase ``Failed``, the reason and the JSON path). The finalizer lets focom delete the clusters
before the CR goes away.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from services.focom.request import RequestError
from shared.objects import meta, name_of, timestamp
from shared.payloads import FocomRequest, FprStatus
from shared.safe_json import Problem, json_path

GROUP = "focom.nephio.org"
API_VERSION = f"{GROUP}/v1alpha1"
KIND = "FocomProvisioningRequest"
FINALIZER = f"{GROUP}/cleanup"
#: Field managers: the watcher owns ``observedGeneration``, the status writer everything else in status.
#: Change control on the CR face: an approver sets this annotation to ``approve`` or ``reject`` on a CR whose
#: request waits in ``PendingApproval`` (``kubectl annotate fpr NAME focom.nephio.org/decision=approve``).
DECISION_ANNOTATION = f"{GROUP}/decision"
WATCH_MANAGER = "focom-watch"
STATUS_MANAGER = "focom"
SPEC_FIELDS = (
    "operation",
    "allClusters",
    "clusterNames",
    "templateName",
    "templateVersion",
    "templateParameters",
    "workers",
    "targetWorkerCount",
)


def request_from_cr(obj: dict[str, Any]) -> FocomRequest:
    """The FOCOM request a CR asks for; ``RequestError`` with ``$.spec…`` paths when it cannot be one."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise RequestError([Problem("$.spec", "required", "the CR has no spec")], name=name_of(obj))
    fields = {k: spec[k] for k in SPEC_FIELDS if k in spec and spec[k] is not None}
    try:
        return FocomRequest.model_validate({"name": name_of(obj), **fields})
    except ValidationError as exc:
        problems = [
            Problem(json_path(("spec", *e["loc"])), str(e["type"]), str(e["msg"]))
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise RequestError(problems, name=name_of(obj)) from None


def delete_request(name: str) -> FocomRequest:
    """What deleting the CR means: delete every cluster of its FPR."""
    return FocomRequest(name=name, operation="delete", allClusters=True)


def _envelope(obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    m = meta(obj)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": m.get("name"), "namespace": m.get("namespace")},
        "status": status,
    }


def status_body(obj: dict[str, Any], status: FprStatus) -> dict[str, Any]:
    """The status focom writes for an FPR status (every field, so stale ones are replaced)."""
    children = [
        {
            "cluster": c.cluster,
            "prId": c.pr_id,
            "state": c.state,
            "stage": c.stage or "",
            "reason": c.reason or "",
            "message": c.message or "",
        }
        for c in status.children
    ]
    return _envelope(
        obj,
        {
            "phase": status.phase,
            "message": status.message,
            "reason": "",
            "path": "",
            "operation": status.operation or "",
            "fprGeneration": status.generation,
            "children": children,
            "plan": [
                {
                    "cluster": c.cluster,
                    "prId": c.pr_id,
                    "controlPlane": list(c.control_plane),
                    "workers": list(c.workers),
                }
                for c in status.plan
            ],
            "lastUpdated": timestamp(status.updated_at),
        },
    )


def refusal_body(
    obj: dict[str, Any],
    *,
    reason: str,
    message: str,
    path: str | None,
    at: datetime,
    children: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    current = obj.get("status") if isinstance(obj.get("status"), dict) else {}
    assert isinstance(current, dict)
    return _envelope(
        obj,
        {
            "phase": "Failed",
            "message": message[:2000],
            "reason": reason,
            "path": path or "",
            "operation": str(current.get("operation", "")),
            "fprGeneration": int(current.get("fprGeneration", 0) or 0),
            "children": children if children is not None else list(current.get("children") or []),
            "lastUpdated": timestamp(at),
        },
    )


def observed_body(obj: dict[str, Any]) -> dict[str, Any]:
    return _envelope(obj, {"observedGeneration": int(meta(obj).get("generation", 0) or 0)})


def finalizer_patch(obj: dict[str, Any], *, present: bool) -> dict[str, Any] | None:
    """A merge patch adding or removing our finalizer (guarded by resourceVersion), or None if already so."""
    m = meta(obj)
    finalizers = [str(f) for f in m.get("finalizers") or []]
    if (FINALIZER in finalizers) == present:
        return None
    wanted = [*finalizers, FINALIZER] if present else [f for f in finalizers if f != FINALIZER]
    return {"metadata": {"finalizers": wanted, "resourceVersion": m.get("resourceVersion")}}


def decision_of(obj: dict[str, Any]) -> str | None:
    """The approver's decision written on the CR (``approve``/``reject``), or None (absent or anything else)."""
    annotations = meta(obj).get("annotations")
    value = annotations.get(DECISION_ANNOTATION) if isinstance(annotations, dict) else None
    return value if value in ("approve", "reject") else None


def deleting(obj: dict[str, Any]) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def observed(obj: dict[str, Any]) -> bool:
    status = obj.get("status") if isinstance(obj.get("status"), dict) else {}
    assert isinstance(status, dict)
    return status.get("observedGeneration") == meta(obj).get("generation")


def phase_of(obj: dict[str, Any]) -> str | None:
    status = obj.get("status")
    return str(status.get("phase")) if isinstance(status, dict) and status.get("phase") else None
