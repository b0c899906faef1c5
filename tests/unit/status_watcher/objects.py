"""Small builders of CAPI/BYOH objects in the v1beta1 and v1beta2 status shapes, for reducer tests."""

from __future__ import annotations

from typing import Any

NS = "default"


def obj(
    kind: str,
    name: str,
    *,
    labels: dict[str, str] | None = None,
    spec: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    rv: str = "1",
    **meta: Any,
) -> dict[str, Any]:
    m: dict[str, Any] = {"name": name, "namespace": NS, "resourceVersion": rv, **meta}
    if labels:
        m["labels"] = labels
    out: dict[str, Any] = {"kind": kind, "metadata": m, "spec": spec or {}}
    if status is not None:
        out["status"] = status
    return out


def cluster(
    name: str = "c1",
    *,
    phase: str = "Provisioned",
    initialized: bool = True,
    v2: bool = False,
    labels: dict[str, str] | None = None,
    **status: Any,
) -> dict[str, Any]:
    st: dict[str, Any] = {"phase": phase, **status}
    if v2:
        st["initialization"] = {"infrastructureProvisioned": True, "controlPlaneInitialized": initialized}
        st["conditions"] = [
            {
                "type": "ControlPlaneInitialized",
                "status": str(initialized),
                "reason": "Initialized" if initialized else "NotInitialized",
                "message": "",
            }
        ]
    else:
        st["conditions"] = [{"type": "ControlPlaneInitialized", "status": str(initialized)}]
    ref = (
        {"apiGroup": "controlplane.cluster.x-k8s.io", "kind": "KubeadmControlPlane", "name": f"{name}-cp"}
        if v2
        else {
            "apiVersion": "controlplane.cluster.x-k8s.io/v1beta1",
            "kind": "KubeadmControlPlane",
            "name": f"{name}-cp",
        }
    )
    return obj(
        "Cluster", name, labels={"cni": f"{name}-crs", **(labels or {})}, spec={"controlPlaneRef": ref}, status=st
    )


def kcp(
    name: str = "c1-cp", *, replicas: int = 1, ready: int = 1, initialized: bool = True, v2: bool = False, **status: Any
) -> dict[str, Any]:
    st: dict[str, Any] = {
        "replicas": replicas if "current" not in status else status.pop("current"),
        "readyReplicas": ready,
        **status,
    }
    if v2:
        st["initialization"] = {"controlPlaneInitialized": initialized}
    else:
        st["initialized"] = initialized
    return obj("KubeadmControlPlane", name, spec={"replicas": replicas}, status=st)


def md(
    name: str = "c1-md-0", cluster_name: str = "c1", *, replicas: int = 2, ready: int = 2, **status: Any
) -> dict[str, Any]:
    return obj(
        "MachineDeployment",
        name,
        spec={"clusterName": cluster_name, "replicas": replicas},
        status={"replicas": replicas, "readyReplicas": ready, **status},
    )


def machine(
    name: str,
    cluster_name: str = "c1",
    *,
    phase: str = "Running",
    node: bool = True,
    cp: bool = False,
    v2: bool = False,
    **status: Any,
) -> dict[str, Any]:
    labels = {"cluster.x-k8s.io/cluster-name": cluster_name}
    if cp:
        labels["cluster.x-k8s.io/control-plane"] = ""
    st: dict[str, Any] = {"phase": phase, **status}
    if node:
        st["nodeRef"] = {"name": name} if v2 else {"apiVersion": "v1", "kind": "Node", "name": name}
    return obj("Machine", name, labels=labels, spec={"clusterName": cluster_name}, status=st)


def crs(name: str = "c1-crs", *, applied: bool = True, selector: dict[str, Any] | None = None) -> dict[str, Any]:
    sel = selector if selector is not None else {"matchLabels": {"cni": "c1-crs"}}
    return obj(
        "ClusterResourceSet",
        name,
        spec={"clusterSelector": sel},
        status={"conditions": [{"type": "ResourcesApplied", "status": str(applied)}]},
    )


def kubeconfig_secret(cluster_name: str = "c1") -> dict[str, Any]:
    return {
        "kind": "Secret",
        "type": "cluster.x-k8s.io/secret",
        "data": {"value": "c2VjcmV0"},
        "metadata": {
            "name": f"{cluster_name}-kubeconfig",
            "namespace": NS,
            "resourceVersion": "1",
            "labels": {"cluster.x-k8s.io/cluster-name": cluster_name},
        },
    }


def byohost(
    name: str,
    *,
    reason: str | None = "WaitingForMachineRefToBeAssigned",
    status: str = "False",
    cluster_name: str | None = None,
    message: str = "",
    ref_ns: str | None = None,
    host_id: str = "h1",
    **meta: Any,
) -> dict[str, Any]:
    labels = {"o2ims.oran.org/host-id": host_id}
    st: dict[str, Any] = {"hostinfo": {"osname": "linux"}}
    if reason is not None or status == "True":
        cond: dict[str, Any] = {"type": "K8sNodeBootstrapSucceeded", "status": status}
        if reason and status != "True":
            cond.update(reason=reason, severity="Info", message=message)
        st["conditions"] = [cond]
    if cluster_name:
        labels["cluster.x-k8s.io/cluster-name"] = cluster_name
        st["machineRef"] = {"kind": "ByoMachine", "name": f"{name}-bm", "namespace": ref_ns or NS}
    return obj("ByoHost", name, labels=labels, status=st, **meta)


def healthy(v2: bool = False) -> list[dict[str, Any]]:
    """A ready cluster: 1 control plane, 2 workers, CNI applied, kubeconfig present."""
    return [
        cluster(v2=v2),
        kcp(v2=v2),
        md(),
        crs(),
        kubeconfig_secret(),
        machine("c1-cp-a", cp=True, v2=v2),
        machine("c1-md-0-a", v2=v2),
        machine("c1-md-0-b", v2=v2),
    ]


def deleting(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "metadata": {**item["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"}}
