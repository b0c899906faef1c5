"""Knobs of the simulated CAPI + BYOH controllers, and the names they share (groups, labels, finalizers).

Label names the services read too are in ``shared.objects``; the ones only the controllers use are here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.objects import UNREGISTERING_ANNOTATION

CORE_GROUP = "cluster.x-k8s.io"
CONTROLPLANE_GROUP = "controlplane.cluster.x-k8s.io"
ADDONS_GROUP = "addons.cluster.x-k8s.io"
BOOTSTRAP_GROUP = "bootstrap.cluster.x-k8s.io"
INFRA_GROUP = "infrastructure.cluster.x-k8s.io"
#: BYOH serves only v1beta1, whatever the core version.
INFRA_VERSION = f"{INFRA_GROUP}/v1beta1"

CONTROL_PLANE_NAME_LABEL = "cluster.x-k8s.io/control-plane-name"
BYOMACHINE_NAME_LABEL = "byoh.infrastructure.cluster.x-k8s.io/byomachine-name"
ENDPOINT_IP_ANNOTATION = "byoh.infrastructure.cluster.x-k8s.io/endpointip"
K8S_VERSION_ANNOTATION = "byoh.infrastructure.cluster.x-k8s.io/k8sversion"
#: Sandbox-only: tells whichever agent runs the host (in any process) that its bootstrap must fail.
FAIL_BOOTSTRAP_ANNOTATION = "sandbox.focom-o2ims.io/fail-bootstrap"
#: Sandbox-only: the version of the kubelet the agent's bootstrap started (the Node's kubeletVersion).
KUBELET_VERSION_ANNOTATION = "sandbox.focom-o2ims.io/kubelet-version"
CLAIM_ANNOTATIONS = (
    UNREGISTERING_ANNOTATION,
    ENDPOINT_IP_ANNOTATION,
    K8S_VERSION_ANNOTATION,
    FAIL_BOOTSTRAP_ANNOTATION,
    KUBELET_VERSION_ANNOTATION,
)

CLUSTER_FINALIZER = "cluster.cluster.x-k8s.io"
MACHINE_FINALIZER = "machine.cluster.x-k8s.io"
BYOMACHINE_FINALIZER = "byomachine.infrastructure.cluster.x-k8s.io"

CLUSTER_SECRET_TYPE = "cluster.x-k8s.io/secret"  # noqa: S105 - a type name, not a secret
BOOTSTRAP_TOKEN_TYPE = "bootstrap.kubernetes.io/token"  # noqa: S105 - a type name, not a secret
BOOTSTRAP_CONDITION = "K8sNodeBootstrapSucceeded"
FIELD_MANAGER = "sandbox-capi"

CoreVersion = Literal["v1beta1", "v1beta2"]


class SimOptions(BaseModel):
    """Per-step delays (seconds; 0 = as fast as events flow), scope, status shape and injected failures."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Namespaces to reconcile; None watches every namespace.
    namespaces: tuple[str, ...] | None = None
    #: The served core version (Cluster, Machine, MachineDeployment, KCP, CRS) to read and write through.
    core_version: CoreVersion = "v1beta1"

    bootstrap_kubeconfig_delay: float = Field(0.0, ge=0)
    infra_ready_delay: float = Field(0.0, ge=0)
    machine_create_delay: float = Field(0.0, ge=0)
    bootstrap_data_delay: float = Field(0.0, ge=0)
    host_claim_delay: float = Field(0.0, ge=0)
    node_ready_delay: float = Field(0.0, ge=0)
    crs_apply_delay: float = Field(0.0, ge=0)

    #: Host names whose bootstrap fails (K8sNodeBootstrapSucceeded False CloudInitExecutionFailed).
    fail_bootstrap_hosts: frozenset[str] = frozenset()
    #: Cluster names whose control plane never initialises (the first node never appears).
    never_initialize_clusters: frozenset[str] = frozenset()
    #: Host names the ByoMachine controller never claims.
    never_claim_hosts: frozenset[str] = frozenset()

    bootstrap_token_ttl: float = Field(1800.0, gt=0)
    #: Every object is reconciled again at least this often, events or not.
    resync_period: float = Field(30.0, gt=0)
    #: Server-side timeout of each watch request (the informer re-watches from its last resourceVersion).
    watch_timeout: int = Field(300, gt=0)
    #: While no host matches a ByoMachine selector, look again this often (upstream: 10 s).
    claim_retry: float = Field(5.0, gt=0)

    def core(self, group: str = CORE_GROUP) -> str:
        """The apiVersion to use for a core-provider group, e.g. ``cluster.x-k8s.io/v1beta2``."""
        return f"{group}/{self.core_version}"

    @property
    def v1beta2(self) -> bool:
        return self.core_version == "v1beta2"
