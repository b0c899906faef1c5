"""Pure helpers of the renderer: render options, object naming, template choice, apply order.

Nothing here does I/O; ``render``, ``validate`` and ``apply`` build on these so that the rules
(what is called what, what is applied before what, which template a role keeps) live in one place.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.models import version_tuple

FIELD_MANAGER = "focom-o2ims"
#: Filled in by the BYOH agent's Go template with the host's default NIC; must survive rendering verbatim.
AGENT_NIC_PLACEHOLDER = "{{ .DefaultNetworkInterfaceName }}"
KUBE_VIP_PATH = "/etc/kubernetes/manifests/kube-vip.yaml"
ADMIN_CONF = "/etc/kubernetes/admin.conf"
SUPER_ADMIN_CONF = "/etc/kubernetes/super-admin.conf"
#: ``kubeadm init`` writes this file only on the first control-plane node; joins never see it.
KUBEADM_INIT_MARKER = "/run/kubeadm/kubeadm.yaml"
#: The CRS selector label put on the Cluster (value ``<cluster>-crs-0``).
CRS_LABEL = "cni"
#: An object (ConfigMap/Secret) must stay below the API server's 1 MiB limit, metadata included.
MAX_OBJECT_BYTES = 1024 * 1024
#: Kubernetes minor from which kube-vip must use super-admin.conf during ``kubeadm init``.
SUPER_ADMIN_SINCE = (1, 29)

CORE_GROUP = "cluster.x-k8s.io"
CONTROLPLANE_GROUP = "controlplane.cluster.x-k8s.io"
BOOTSTRAP_GROUP = "bootstrap.cluster.x-k8s.io"
INFRA_GROUP = "infrastructure.cluster.x-k8s.io"
ADDONS_GROUP = "addons.cluster.x-k8s.io"
BYOH_VERSION = "v1beta1"

CoreApiVersion = Literal["v1beta1", "v1beta2"]

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$")
_ARG_NAME = re.compile(r"^[a-z0-9][-a-z0-9.]*$")


def is_label_key(key: str) -> bool:
    """Kubernetes label key syntax: optional DNS subdomain prefix, ``/``, then a name of ≤ 63 chars."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.fullmatch(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(_LABEL_NAME.fullmatch(name))


def is_label_value(value: str) -> bool:
    return len(value) <= 63 and bool(_LABEL_VALUE.fullmatch(value))


class RenderOptions(BaseModel):
    """Deployment-level choices that are the same for every cluster (the service's settings feed these)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    core_api_version: CoreApiVersion = "v1beta1"
    kube_vip_image: str = Field("ghcr.io/kube-vip/kube-vip:v1.2.2", max_length=255)
    #: CNI name (``ClusterSpec.cni``) → multi-document manifest file carried by the ClusterResourceSet.
    cni_manifests: Mapping[str, Path] = Field(default_factory=dict)
    service_domain: str = Field("cluster.local", max_length=253)
    control_plane_port: int = Field(6443, ge=1, le=65535)
    #: Added to every rendered object's labels.
    extra_labels: Mapping[str, str] = Field(default_factory=dict)
    cri_socket: str = Field("unix:///var/run/containerd/containerd.sock", min_length=1, max_length=512)
    ignore_preflight_errors: tuple[str, ...] = (
        "DirAvailable--etc-kubernetes-manifests",
        "FileAvailable--etc-kubernetes-kubelet.conf",
    )
    controller_manager_args: Mapping[str, str] = Field(default_factory=lambda: {"enable-hostpath-provisioner": "true"})
    kubelet_extra_args: Mapping[str, str] = Field(default_factory=dict)
    #: kube-vip leader-election timings in seconds: lease duration, renew deadline, retry period.
    vip_lease_seconds: tuple[int, int, int] = (15, 10, 2)

    @field_validator("kube_vip_image")
    @classmethod
    def _image(cls, v: str) -> str:
        if not _IMAGE.fullmatch(v):
            raise ValueError(f"not an image reference: {v!r}")
        return v

    @field_validator("service_domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        if not DNS1123_SUBDOMAIN.fullmatch(v):
            raise ValueError(f"service domain {v!r} is not a DNS-1123 subdomain")
        return v

    @field_validator("cni_manifests")
    @classmethod
    def _cni_names(cls, v: Mapping[str, Path]) -> Mapping[str, Path]:
        for name in v:
            # The name becomes a ConfigMap data key (``<name>.yaml``).
            if not DNS1123_LABEL.fullmatch(name) or len(name) > 63:
                raise ValueError(f"CNI name {name!r} is not a DNS-1123 label")
        return v

    @field_validator("extra_labels")
    @classmethod
    def _labels(cls, v: Mapping[str, str]) -> Mapping[str, str]:
        for key, value in v.items():
            if not is_label_key(key):
                raise ValueError(f"invalid label key {key!r}")
            if not is_label_value(value):
                raise ValueError(f"invalid value {value!r} for label {key!r}")
        return v

    @field_validator("controller_manager_args", "kubelet_extra_args")
    @classmethod
    def _args(cls, v: Mapping[str, str]) -> Mapping[str, str]:
        for key, value in v.items():
            if not _ARG_NAME.fullmatch(key) or len(key) > 256 or len(value) > 1024:
                raise ValueError(f"invalid component argument {key!r}")
        return v

    @field_validator("ignore_preflight_errors")
    @classmethod
    def _preflight(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for item in v:
            if not re.match(r"^[A-Za-z0-9][-A-Za-z0-9.]*$", item):
                raise ValueError(f"invalid preflight check name {item!r}")
        return v

    @field_validator("vip_lease_seconds")
    @classmethod
    def _lease(cls, v: tuple[int, int, int]) -> tuple[int, int, int]:
        duration, renew, retry = v
        if not duration > renew > retry > 0:
            raise ValueError("kube-vip timings must satisfy lease duration > renew deadline > retry period > 0")
        return v


@dataclass(frozen=True)
class ObjectRef:
    """Identity of one applied object (same fields as ``shared.payloads.ObjectRef``)."""

    api_version: str
    kind: str
    namespace: str | None
    name: str


@dataclass(frozen=True)
class ClusterNames:
    """The derived object names of one cluster (the same scheme as the BYOH templates)."""

    cluster: str

    @property
    def control_plane(self) -> str:
        return f"{self.cluster}-control-plane"

    @property
    def workers(self) -> str:
        return f"{self.cluster}-md-0"

    def control_plane_template(self, version: str) -> str:
        """The control plane's ByoMachineTemplate at ``version``: a new name per version, since CAPI rolls
        Machines only on a new template reference (an edited template changes nothing that exists)."""
        return f"{self.control_plane}-{version_slug(version)}"

    def workers_template(self, version: str) -> str:
        return f"{self.workers}-{version_slug(version)}"

    @property
    def crs(self) -> str:
        return f"{self.cluster}-crs-0"

    # An earlier release named each machine template like its owner (``<cluster>-control-plane``,
    # ``<cluster>-md-0``, one per cluster, selecting by host id alone): see ``TemplateChoice``.

    @property
    def legacy_control_plane_template(self) -> str:
        return self.control_plane

    @property
    def legacy_workers_template(self) -> str:
        return self.workers

    @property
    def cni_configmap(self) -> str:
        return f"cni-{self.cluster}-crs-0"


@dataclass(frozen=True)
class TemplateChoice:
    """Per role, whether a render keeps the live unversioned machine template of a cluster an earlier release
    rendered, instead of the versioned one.

    Such a cluster's KCP / MachineDeployment reference ``<cluster>-control-plane`` / ``<cluster>-md-0``,
    whose selectors name host ids only (its agents registered without the version label). Pointing them
    at a versioned template would roll every Machine, and the new selector would match none of its hosts;
    so a render keeps the legacy template (same name, same selector semantics) for as long as it serves the
    version the render asks for. Only a version change moves a role to versioned templates (the hosts the
    rollout frees are re-prepared with the label). Decided from what is live: ``live_template_choice``.
    """

    control_plane_legacy: bool = False
    workers_legacy: bool = False

    def control_plane(self, names: ClusterNames, version: str) -> tuple[str, str | None]:
        """The control plane's template name and the version its selector requires (None: host ids only)."""
        if self.control_plane_legacy:
            return names.legacy_control_plane_template, None
        return names.control_plane_template(version), version

    def workers(self, names: ClusterNames, version: str) -> tuple[str, str | None]:
        """The workers' template name and the version its selector requires (None: host ids only)."""
        if self.workers_legacy:
            return names.legacy_workers_template, None
        return names.workers_template(version), version


#: Every role on versioned templates (a new cluster, or one rendered by this release).
VERSIONED = TemplateChoice()


def kcp_template_ref(kcp: Mapping[str, Any]) -> Any:
    """The KubeadmControlPlane's machine template name (v1beta1 and v1beta2 keep it at different paths)."""
    return get(kcp, "spec.machineTemplate.infrastructureRef.name") or get(
        kcp, "spec.machineTemplate.spec.infrastructureRef.name"
    )


def live_template_choice(
    names: ClusterNames,
    kcp: Mapping[str, Any] | None,
    md: Mapping[str, Any] | None,
    version: str,
    workers_version: str,
) -> TemplateChoice:
    """Keep a role's legacy template when its live owner references it and already runs the version asked for.

    ``kcp``/``md``: the live KubeadmControlPlane and MachineDeployment (None when absent); ``version`` the
    control plane's version of the render, ``workers_version`` the workers'. Level-based: a re-run, a
    restart, or a render after a half-finished apply decides the same from the same objects.
    """
    cp_legacy = (
        kcp is not None
        and kcp_template_ref(kcp) == names.legacy_control_plane_template
        and get(kcp, "spec.version") == version
    )
    workers_legacy = (
        md is not None
        and get(md, "spec.template.spec.infrastructureRef.name") == names.legacy_workers_template
        and get(md, "spec.template.spec.version") == workers_version
    )
    return TemplateChoice(control_plane_legacy=cp_legacy, workers_legacy=workers_legacy)


def api_versions(core: CoreApiVersion) -> dict[str, str]:
    """kind → apiVersion for every kind the renderer emits."""
    return {
        "Cluster": f"{CORE_GROUP}/{core}",
        "MachineDeployment": f"{CORE_GROUP}/{core}",
        "KubeadmControlPlane": f"{CONTROLPLANE_GROUP}/{core}",
        "KubeadmConfigTemplate": f"{BOOTSTRAP_GROUP}/{core}",
        "ClusterResourceSet": f"{ADDONS_GROUP}/{core}",
        "ByoCluster": f"{INFRA_GROUP}/{BYOH_VERSION}",
        "ByoMachineTemplate": f"{INFRA_GROUP}/{BYOH_VERSION}",
        "ConfigMap": "v1",
    }


#: Core kinds whose shape changes between v1beta1 and v1beta2 (BYOH kinds are v1beta1 only).
CORE_KINDS = frozenset(
    {"Cluster", "MachineDeployment", "KubeadmControlPlane", "KubeadmConfigTemplate", "ClusterResourceSet"}
)

# Cluster goes last: when it appears every object it (transitively) references already exists, so
# CAPI's first reconcile adopts them all at once instead of logging "not found" and requeueing,
# and an apply that fails half-way leaves inert objects rather than a Cluster CAPI starts to act on.
# Templates precede their users (KCP/MD copy them); the CRS content precedes the CRS.
APPLY_ORDER: tuple[str, ...] = (
    "ConfigMap",
    "Secret",
    "ByoCluster",
    "ByoMachineTemplate",
    "KubeadmConfigTemplate",
    "KubeadmControlPlane",
    "MachineDeployment",
    "ClusterResourceSet",
    "Cluster",
)


def apply_order(objects: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The objects sorted for applying (stable; unknown kinds go just before the Cluster)."""
    rank = {kind: i for i, kind in enumerate(APPLY_ORDER)}
    unknown = rank["Cluster"] - 0.5
    return sorted(objects, key=lambda o: rank.get(str(o.get("kind")), unknown))


def object_ref(obj: Mapping[str, Any]) -> ObjectRef:
    meta = obj.get("metadata") or {}
    return ObjectRef(
        api_version=str(obj.get("apiVersion")),
        kind=str(obj.get("kind")),
        namespace=meta.get("namespace"),
        name=str(meta.get("name")),
    )


def describe(obj: Mapping[str, Any]) -> str:
    """``Kind/name``: how issues and logs name an object."""
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"


def derived_objects(
    cluster: str, namespace: str, core: CoreApiVersion = "v1beta1", versions: Iterable[str] = ()
) -> list[ObjectRef]:
    """Every object a render of ``cluster`` may create, in apply order (used to clean up leftovers); machine
    templates for each of ``versions``."""
    n = ClusterNames(cluster)
    av = api_versions(core)
    templates = [
        ("ByoMachineTemplate", name)
        for v in sorted(set(versions))
        for name in (n.control_plane_template(v), n.workers_template(v))
    ]
    refs = [
        ("ConfigMap", n.cni_configmap),
        ("ByoCluster", n.cluster),
        *templates,
        ("KubeadmConfigTemplate", n.workers),
        ("KubeadmControlPlane", n.control_plane),
        ("MachineDeployment", n.workers),
        ("ClusterResourceSet", n.crs),
        ("Cluster", n.cluster),
    ]
    return [ObjectRef(api_version=av[k], kind=k, namespace=namespace, name=name) for k, name in refs]


def version_slug(version: str) -> str:
    """``v1.31.2`` → ``v1-31-2`` (a name part)."""
    return version.replace(".", "-")


def control_plane_max_surge(replicas: int) -> int:
    """KCP rollout surge: 0 (scale in first, no free host needed) with 3+ replicas, the only case CAPI allows it;
    a single control plane surges by 1 onto a spare host."""
    return 0 if replicas >= 3 else 1


def uses_super_admin(k8s_version: str) -> bool:
    """kube-vip needs super-admin.conf during ``kubeadm init`` from Kubernetes 1.29 on."""
    return version_tuple(k8s_version)[:2] >= SUPER_ADMIN_SINCE


def get(obj: Any, path: str, default: Any = None) -> Any:
    """``get(o, "spec.template.spec")``: nested lookup that tolerates missing or mistyped levels."""
    for part in path.split("."):
        if not isinstance(obj, Mapping) or part not in obj:
            return default
        obj = obj[part]
    return obj
