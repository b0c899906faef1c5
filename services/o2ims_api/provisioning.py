"""Provisioning requests as O2IMS shows them, and the records the API keeps about the ones it accepted.

A PR is one object whichever way it was made: the o2ims record in ``pr`` is its state, and for
PRs created through this API the ``ProvisioningRequestData`` as submitted (name, description,
template, parameters) is kept in ``o2ims-api-prs``. A PR FOCOM made is shown with data derived
from its record (template parameters from its cluster spec). Pure: no I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, StrictStr, StringConstraints, ValidationError

from services.o2ims_api.catalogue import resource_id
from services.o2ims_api.state import PrView
from shared.models import ClusterSpec
from shared.safe_json import Problem, json_path
from shared.upgrades import is_upgrade, upgrade_refusal

Phase = Literal["PENDING", "PROGRESSING", "FULFILLED", "FAILED", "DELETING"]
#: ``fpr`` of PRs created through the API: no FOCOM request owns them.
API_FPR = "o2ims-api"
PHASES: dict[str, Phase] = {
    "pending": "PENDING",
    "progressing": "PROGRESSING",
    "fulfilled": "FULFILLED",
    "failed": "FAILED",
    "deleting": "DELETING",
}
Uuid = Annotated[
    str,
    StringConstraints(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
        r"[0-9a-fA-F]{12}$"
    ),
]


class PrData(BaseModel):
    """``ProvisioningRequestData``: exactly these fields, nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    provisioningRequestId: Uuid
    name: Annotated[StrictStr, StringConstraints(min_length=1, max_length=253)]
    description: Annotated[StrictStr, StringConstraints(max_length=1024)] = ""
    templateName: Annotated[StrictStr, StringConstraints(min_length=1, max_length=253)]
    templateVersion: Annotated[StrictStr, StringConstraints(min_length=1, max_length=64)]
    templateParameters: dict[str, Any]

    @property
    def id(self) -> str:
        return self.provisioningRequestId.lower()


class PrDataRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data: PrData
    created_at: datetime
    updated_at: datetime
    deleting: bool = False


def parse_data(body: dict[str, Any]) -> PrData | list[Problem]:
    try:
        return PrData.model_validate(body)
    except ValidationError as exc:
        rules = {"extra_forbidden": "unknown-field", "missing": "required", "string_pattern_mismatch": "pattern"}
        return [
            Problem(json_path(err["loc"]), rules.get(err["type"], err["type"]), err["msg"])
            for err in exc.errors(include_url=False, include_input=False)
        ]


def parameters_of(spec: ClusterSpec) -> dict[str, Any]:
    """A cluster spec in the vocabulary of the ``byoh-workload-cluster`` template's parameters."""
    out: dict[str, Any] = {
        "clusterName": spec.name,
        "k8sVersion": spec.k8s_version,
        "hosts": {
            "masters": [{"hostId": h.host_id} for h in spec.control_plane],
            "workers": [{"hostId": h.host_id} for h in spec.workers],
        },
        "podCidr": spec.pod_cidr,
        "serviceCidr": spec.service_cidr,
    }
    if spec.vip is not None:  # a single control plane without a VIP is reached at its host's address
        out["controlPlaneEndpoint"] = spec.vip
    if spec.cni is not None:
        out["cni"] = spec.cni
    return out


def derived_data(pr: PrView) -> dict[str, Any]:
    return {
        "provisioningRequestId": pr.pr_id,
        "name": pr.cluster or pr.pr_id,
        "description": f"cluster {pr.cluster} of FOCOM request {pr.fpr}",
        "templateName": pr.template_name,
        "templateVersion": pr.template_version,
        "templateParameters": parameters_of(pr.spec) if pr.spec else {},
    }


def info(pr: PrView | None, kept: PrDataRecord | None) -> dict[str, Any] | None:
    """``ProvisioningRequestInfo``, or None when the PR does not exist (never made, or deleted)."""
    if pr is None or pr.state == "deleted":
        if kept is None or kept.deleting:
            return None
        return _info(
            kept.data.model_dump(mode="json"),
            kept.updated_at,
            "accepted; waiting for o2ims to take it up",
            "PENDING",
            None,
            [],
        )
    data = kept.data.model_dump(mode="json") if kept is not None else derived_data(pr)
    phase: Phase = PHASES.get(pr.state, "PENDING")
    if kept is not None and kept.deleting and phase != "DELETING":
        phase = "DELETING"
    message = pr.message or pr.reason or ""
    if pr.state == "failed" and pr.reason:
        message = f"{pr.stage or 'request'} failed: {pr.reason}: {pr.message or ''}".rstrip(": ")
    resources = sorted(resource_id(h.host_id) for h in pr.spec.all_hosts) if pr.spec and pr.node_cluster_id else []
    return _info(data, pr.updated_at, message, phase, pr.node_cluster_id if resources else None, resources)


def _info(
    data: dict[str, Any], at: datetime, message: str, phase: Phase, cluster_id: str | None, resources: list[str]
) -> dict[str, Any]:
    return {
        "provisioningRequestData": data,
        "status": {"updateTime": at.isoformat().replace("+00:00", "Z"), "message": message, "provisioningPhase": phase},
        "provisionedResourceSet": {"nodeClusterId": cluster_id, "infrastructureResourceIds": resources},
    }


#: Parameters fixed once CAPI objects may exist (o2ims refuses to change them then); workers may always change,
#: and the version by an upgrade (``shared.upgrades``).
FROZEN_ONCE_APPLIED = {
    "vip": "controlPlaneEndpoint",
    "pod_cidr": "podCidr",
    "service_cidr": "serviceCidr",
    "cni": "cni",
}


#: Where the spec fields an upgrade refusal names come from in the template parameters.
_UPGRADE_PARAMS = {
    "spec.k8s_version": "$.templateParameters.k8sVersion",
    "spec.control_plane": "$.templateParameters.hosts.masters",
    "spec.workers": "$.templateParameters.hosts.workers",
    "spec.vip": "$.templateParameters.controlPlaneEndpoint",
}


def immutable_problems(
    old: ClusterSpec, new: ClusterSpec, old_data: PrData | None, new_data: PrData, *, applied: bool
) -> list[Problem]:
    """What an update may not change (o2ims's rules, checked here so a refused change is a 409, not silence).

    A newer ``k8sVersion`` is an upgrade: the rules of ``shared.upgrades`` (a single control plane names its
    spare host in ``hosts.masters``)."""
    p = []
    if old_data is not None and old_data.templateName != new_data.templateName:
        p.append(Problem("$.templateName", "immutable", "the template of a provisioning request cannot change"))
    if new.name != old.name:
        p.append(Problem("$.templateParameters.clusterName", "immutable", "the cluster name cannot change"))
    upgrading = applied and is_upgrade(old, new)
    refusal = upgrade_refusal(old, new) if upgrading else None
    if refusal is not None:
        p.append(Problem(_UPGRADE_PARAMS.get(refusal.path, "$.templateParameters"), refusal.reason, refusal.message))
    if new.control_plane != old.control_plane and not upgrading:
        p.append(
            Problem(
                "$.templateParameters.hosts.masters",
                "immutable",
                "control-plane hosts cannot change; only workers can be scaled",
            )
        )
    if new.namespace != old.namespace:
        p.append(Problem("$", "immutable", "the inventory's namespace changed; the cluster cannot move"))
    if applied:
        for field, param in FROZEN_ONCE_APPLIED.items():
            if getattr(new, field) != getattr(old, field):
                p.append(
                    Problem(
                        f"$.templateParameters.{param}",
                        "immutable",
                        f"{param} cannot change once the cluster exists; only workers can",
                    )
                )
        before = {h.host_id: h for h in old.workers}
        for i, host in enumerate(new.workers):
            if host.host_id in before and before[host.host_id] != host:
                p.append(
                    Problem(
                        f"$.templateParameters.hosts.workers[{i}]",
                        "immutable",
                        f"worker {host.host_id} changed its details in the inventory; remove and re-add it",
                    )
                )
    return p
