"""The payloads of the two job services: hostprep (prepare/tear down hosts) and capi_renderer (CAPI objects).

Each is a command from o2ims and the outcomes it reports back. Like every payload (see
``shared.payloads``), hosts are named by id only and every string field has a constrained type.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from shared.fields import (
    MAX_HOSTS,
    ApiVersion,
    ClusterName,
    HostId,
    K8sVersion,
    Kind,
    Namespace,
    ObjectName,
    PrId,
    Reason,
    StepName,
    Text,
)
from shared.kinds import CapiAction, HostprepAction, HostStepStatus
from shared.models import ClusterSpec
from shared.payload_base import Payload, Value

# ── hostprep ───────────────────────────────────────────────────────────────────────────


class HostprepJob(Payload):
    """Prepare, tear down or upgrade hosts, named by id only: hostprep takes each host's address, port,
    login and credentials from its own inventory, so a job cannot point a host's secret at another machine.

    ``k8s_version`` is the version the hosts' kubelet/kubeadm are installed at and their agents labelled
    with (``prepare``), or the target version (``upgrade``: only hosts whose ByoHost is unclaimed are
    upgraded; a claimed one fails that host).
    """

    type: Literal["hostprep.job"] = "hostprep.job"
    pr_id: PrId
    action: HostprepAction
    cluster: ClusterName
    namespace: Namespace = "default"
    k8s_version: K8sVersion
    hosts: tuple[HostId, ...] = Field(min_length=1, max_length=MAX_HOSTS)
    purge_packages: StrictBool = False


class HostProgress(Payload):
    type: Literal["hostprep.host.progress"] = "hostprep.host.progress"
    pr_id: PrId
    host_id: HostId
    step: StepName
    status: HostStepStatus
    detail: Text | None = None


class HostprepDone(Payload):
    type: Literal["hostprep.job.done"] = "hostprep.job.done"
    pr_id: PrId
    action: HostprepAction
    hosts: tuple[HostId, ...] = Field(max_length=MAX_HOSTS)


class HostFailure(BaseModel):
    """Why one host of a hostprep job failed (an item of ``HostprepFailed.failures``, not a message)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host_id: HostId
    step: StepName | None = None
    reason: Reason
    message: Text
    exit_code: int | None = None
    stderr_tail: Text | None = None


class HostprepFailed(Payload):
    type: Literal["hostprep.job.failed"] = "hostprep.job.failed"
    pr_id: PrId
    action: HostprepAction
    host_id: HostId | None = None
    step: StepName | None = None
    exit_code: int | None = None
    stderr_tail: Text | None = None
    reason: Reason
    message: Text
    #: Every failed host (the fields above repeat the first one); hosts not listed here nor in
    #: ``ready_hosts`` were not reached.
    failures: tuple[HostFailure, ...] = Field(default=(), max_length=MAX_HOSTS)
    ready_hosts: tuple[HostId, ...] = Field(default=(), max_length=MAX_HOSTS)


# ── capi_renderer ──────────────────────────────────────────────────────────────────────


class ObjectRef(Value):
    api_version: ApiVersion
    kind: Kind
    namespace: Namespace | None = None
    name: ObjectName


class CapiJob(Payload):
    """Render ``spec`` and apply it (``apply``/``scale``/``upgrade``) or delete the cluster.

    An ``upgrade`` renders versioned machine templates for ``spec.k8s_version`` and points the control plane
    at them; with ``workers_version`` set (the control-plane step of a rollout) the MachineDeployment and its
    template stay at that version, without it the workers roll too. Only ``apply`` removes the machine
    templates of earlier versions (once a rollout is over).
    """

    type: Literal["capi.job"] = "capi.job"
    pr_id: PrId
    action: CapiAction
    spec: ClusterSpec
    workers_version: K8sVersion | None = None


class CapiApplied(Payload):
    type: Literal["capi.applied"] = "capi.applied"
    pr_id: PrId
    action: Literal["apply", "scale", "upgrade"]
    objects: tuple[ObjectRef, ...] = Field(max_length=1000)


class CapiDeleted(Payload):
    type: Literal["capi.deleted"] = "capi.deleted"
    pr_id: PrId
    cluster: ClusterName
    namespace: Namespace
    gone: StrictBool


class CapiFailed(Payload):
    type: Literal["capi.failed"] = "capi.failed"
    pr_id: PrId
    action: CapiAction
    reason: Reason
    message: Text
