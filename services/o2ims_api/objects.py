"""The inventory objects (O-Cloud, resource types, pools, resources, deployment managers) built
from one snapshot of the system's state. Pure: no I/O.

Hosts are the resources; their type is BYOH bare metal by architecture and OS (host labels
``kubernetes.io/arch`` / ``kubernetes.io/os``, default amd64/linux); their pool is the host label
``o2ims.oran.org/resource-pool`` (default: the inventory's namespace). Clusters that came up are
the deployment managers; the id of one is its ``nodeClusterId``. No credential is ever shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.o2ims_api.catalogue import (
    CLUSTER_TYPE_ID,
    SUBSCRIPTION_TYPE_ID,
    VENDOR,
    dictionary,
    host_type_id,
    oid,
    pool_id,
    resource_id,
)
from services.o2ims_api.state import PrView
from shared.inventory import Inventory, InventoryHost
from shared.payloads import ByoHostSummary

ARCH_LABELS = ("kubernetes.io/arch", "arch")
OS_LABELS = ("kubernetes.io/os", "os")
POOL_LABEL = "o2ims.oran.org/resource-pool"


@dataclass(frozen=True)
class Site:
    """Settings that describe this O-Cloud."""

    global_cloud_id: str
    name: str
    description: str
    global_location_id: str
    location: str


@dataclass
class Snapshot:
    site: Site
    inventory: Inventory | None
    prs: dict[str, PrView] = field(default_factory=dict)
    leases: dict[str, str] = field(default_factory=dict)
    byohosts: dict[str, ByoHostSummary] = field(default_factory=dict)

    @property
    def cloud_id(self) -> str:
        return oid("ocloud", self.site.global_cloud_id)

    @property
    def hosts(self) -> list[InventoryHost]:
        return list(self.inventory.hosts) if self.inventory else []


def o_cloud(snap: Snapshot, service_uri: str) -> dict[str, Any]:
    return {
        "oCloudId": snap.cloud_id,
        "globalCloudId": snap.site.global_cloud_id,
        # Some clients read this spelling: the same value under both names.
        "globalcloudId": snap.site.global_cloud_id,
        "name": snap.site.name,
        "description": snap.site.description,
        "serviceUri": service_uri,
        "extensions": {"resourcePools": len(pools(snap)), "deploymentManagers": len(deployment_managers(snap))},
    }


def _label(host: InventoryHost, names: tuple[str, ...], default: str) -> str:
    return next((host.labels[n] for n in names if host.labels.get(n)), default)


def host_kind(host: InventoryHost) -> tuple[str, str]:
    return _label(host, ARCH_LABELS, "amd64"), _label(host, OS_LABELS, "linux")


def pool_name(snap: Snapshot, host: InventoryHost) -> str:
    return host.labels.get(POOL_LABEL) or (snap.inventory.namespace if snap.inventory else "default")


def resource_types(snap: Snapshot) -> list[dict[str, Any]]:
    kinds = sorted({host_kind(h) for h in snap.hosts})
    out = [
        {
            "resourceTypeId": host_type_id(arch, os_name),
            "name": f"byoh-bare-metal-{os_name}-{arch}",
            "description": f"Bare-metal host ({os_name}/{arch}) prepared over SSH and joined through the BYOH agent",
            "vendor": VENDOR,
            "model": f"byoh-host-{arch}",
            "version": "v1",
            "resourceKind": "PHYSICAL",
            "resourceClass": "COMPUTE",
            "extensions": {"architecture": arch, "operatingSystem": os_name},
            "alarmDictionary": dictionary(host_type_id(arch, os_name), "host", f"byoh-bare-metal-{os_name}-{arch}"),
        }
        for arch, os_name in kinds
    ]
    out.append(
        {
            "resourceTypeId": CLUSTER_TYPE_ID,
            "name": "byoh-workload-cluster",
            "description": "A Kubernetes workload cluster on BYOH hosts (a provisioning request's node cluster)",
            "vendor": VENDOR,
            "model": "cluster-api-byoh",
            "version": "v1",
            "resourceKind": "LOGICAL",
            "resourceClass": "COMPUTE",
            "extensions": {},
            "alarmDictionary": dictionary(CLUSTER_TYPE_ID, "cluster", "byoh-workload-cluster"),
        }
    )
    out.append(
        {
            "resourceTypeId": SUBSCRIPTION_TYPE_ID,
            "name": "o2ims-notification-subscription",
            "description": "An SMO's notification subscription (the source of callback delivery alarms)",
            "vendor": VENDOR,
            "model": "o2ims-api",
            "version": "v1",
            "resourceKind": "LOGICAL",
            "resourceClass": "UNDEFINED",
            "extensions": {},
            "alarmDictionary": dictionary(SUBSCRIPTION_TYPE_ID, "subscription", "o2ims-notification-subscription"),
        }
    )
    return out


def pools(snap: Snapshot) -> list[dict[str, Any]]:
    names = sorted({pool_name(snap, h) for h in snap.hosts})
    return [
        {
            "resourcePoolId": pool_id(name),
            "oCloudId": snap.cloud_id,
            "globalLocationId": snap.site.global_location_id,
            "name": name,
            "description": f"Bare-metal hosts of pool {name}",
            "location": snap.site.location or name,
            "extensions": {"hosts": sum(1 for h in snap.hosts if pool_name(snap, h) == name)},
        }
        for name in names
    ]


def _byohost(snap: Snapshot, host: InventoryHost) -> dict[str, Any]:
    found = snap.byohosts.get(host.host_id) or snap.byohosts.get(host.host_name)
    if found is None:
        return {"registered": False, "claimedBy": None, "failure": None}
    return {
        "name": found.name,
        "namespace": found.namespace,
        "registered": found.registered,
        "claimedBy": found.claimed_by,
        "failure": found.failure,
    }


def resources(snap: Snapshot) -> list[dict[str, Any]]:
    out = []
    for host in snap.hosts:
        arch, os_name = host_kind(host)
        holder = snap.leases.get(host.host_id)
        out.append(
            {
                "resourceId": resource_id(host.host_id),
                "resourcePoolId": pool_id(pool_name(snap, host)),
                "resourceTypeId": host_type_id(arch, os_name),
                "globalAssetId": f"urn:focom-o2ims:host:{host.host_id}",
                "description": f"bare-metal host {host.host_name}",
                "elements": [],
                "extensions": {
                    "hostId": host.host_id,
                    "hostName": host.host_name,
                    "address": host.host_ip,
                    "labels": dict(host.labels),
                    "leaseHolder": holder,
                    "allocated": holder is not None,
                    "byoHost": _byohost(snap, host),
                },
            }
        )
    return out


def deployment_managers(snap: Snapshot) -> list[dict[str, Any]]:
    out = []
    pool_names = sorted({pool_name(snap, h) for h in snap.hosts})
    for pr in snap.prs.values():
        spec = pr.spec
        if spec is None or not pr.is_cluster or pr.node_cluster_id is None:
            continue
        out.append(
            {
                "deploymentManagerId": pr.node_cluster_id,
                "oCloudId": snap.cloud_id,
                "name": spec.name,
                "description": f"Kubernetes {spec.k8s_version} workload cluster {spec.name} (Cluster API, BYOH)",
                "serviceUri": f"https://{_host_part(spec.endpoint)}:6443",
                "supportedLocations": [snap.site.location or n for n in pool_names] or [snap.site.global_location_id],
                "capabilities": {"kubernetesVersion": spec.k8s_version, "cni": spec.cni},
                "capacity": {"controlPlaneNodes": len(spec.control_plane), "workerNodes": len(spec.workers)},
                "extensions": {
                    "clusterName": spec.name,
                    "namespace": spec.namespace,
                    "provisioningRequestId": pr.pr_id,
                    "state": pr.state,
                    "resourceIds": sorted(resource_id(h.host_id) for h in spec.all_hosts),
                },
            }
        )
    return out


def _host_part(address: str) -> str:
    return f"[{address}]" if ":" in address else address
