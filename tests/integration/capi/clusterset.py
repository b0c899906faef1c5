"""A hand-written BYOH cluster set (v1beta1, or v1beta2 for the core objects) for the simulator tests."""

from __future__ import annotations

from typing import Any

HOST_ID = "o2ims.oran.org/host-id"
INFRA = "infrastructure.cluster.x-k8s.io/v1beta1"


def cluster_set(
    name: str = "c1",
    namespace: str = "default",
    *,
    version: str = "v1.30.2",
    vip: str = "10.0.0.100",
    cp_hosts: tuple[str, ...] = ("h1",),
    worker_hosts: tuple[str, ...] = ("h2", "h3"),
    workers: int = 2,
    core: str = "v1beta1",
) -> list[dict[str, Any]]:
    """Objects in apply order: ConfigMap, ByoCluster, templates, KCP, MD, CRS, Cluster."""
    v2 = core == "v1beta2"
    cp = f"{name}-control-plane"
    md = f"{name}-md-0"
    meta = lambda n, **extra: {"name": n, "namespace": namespace, **extra}  # noqa: E731

    def ref(api_version: str, kind: str, ref_name: str) -> dict[str, Any]:
        if v2:
            return {"apiGroup": api_version.rpartition("/")[0], "kind": kind, "name": ref_name}
        return {"apiVersion": api_version, "kind": kind, "name": ref_name}

    node_registration = {
        "criSocket": "unix:///var/run/containerd/containerd.sock",
        "ignorePreflightErrors": [
            "DirAvailable--etc-kubernetes-manifests",
            "FileAvailable--etc-kubernetes-kubelet.conf",
        ],
    }
    kube_vip = (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-vip\n  namespace: kube-system\n"
        f"spec:\n  hostNetwork: true\n  containers:\n  - name: kube-vip\n    image: ghcr.io/kube-vip/kube-vip:v0.8.0\n"
        f'    args: [manager]\n    env:\n    - name: vip_address\n      value: "{vip}"\n'
        '    - name: vip_interface\n      value: "{{ .DefaultNetworkInterfaceName }}"\n'
    )
    kcp_spec: dict[str, Any] = {
        "replicas": len(cp_hosts),
        "version": version,
        "kubeadmConfigSpec": {
            "files": [{"path": "/etc/kubernetes/manifests/kube-vip.yaml", "owner": "root:root", "content": kube_vip}],
            "initConfiguration": {"nodeRegistration": node_registration},
            "joinConfiguration": {"nodeRegistration": node_registration},
        },
    }
    cp_template_ref = ref(INFRA, "ByoMachineTemplate", cp)
    if v2:
        kcp_spec["machineTemplate"] = {"spec": {"infrastructureRef": cp_template_ref}}
    else:
        kcp_spec["machineTemplate"] = {"infrastructureRef": cp_template_ref}
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta(f"cni-{name}-crs-0"),
            "data": {"cni.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: cni-test\n"},
        },
        {
            "apiVersion": INFRA,
            "kind": "ByoCluster",
            "metadata": meta(name),
            "spec": {"controlPlaneEndpoint": {"host": vip, "port": 6443}},
        },
        {
            "apiVersion": INFRA,
            "kind": "ByoMachineTemplate",
            "metadata": meta(cp),
            "spec": {
                "template": {
                    "spec": {
                        "selector": {"matchExpressions": [{"key": HOST_ID, "operator": "In", "values": list(cp_hosts)}]}
                    }
                }
            },
        },
        {
            "apiVersion": INFRA,
            "kind": "ByoMachineTemplate",
            "metadata": meta(md),
            "spec": {
                "template": {
                    "spec": {
                        "selector": {
                            "matchExpressions": [{"key": HOST_ID, "operator": "In", "values": list(worker_hosts)}]
                        }
                    }
                }
            },
        },
        {
            "apiVersion": f"bootstrap.cluster.x-k8s.io/{core}",
            "kind": "KubeadmConfigTemplate",
            "metadata": meta(md),
            "spec": {
                "template": {
                    "spec": {
                        "joinConfiguration": {
                            "nodeRegistration": {"criSocket": "unix:///var/run/containerd/containerd.sock"}
                        }
                    }
                }
            },
        },
        {
            "apiVersion": f"controlplane.cluster.x-k8s.io/{core}",
            "kind": "KubeadmControlPlane",
            "metadata": meta(cp),
            "spec": kcp_spec,
        },
        {
            "apiVersion": f"cluster.x-k8s.io/{core}",
            "kind": "MachineDeployment",
            "metadata": meta(md, labels={"cluster.x-k8s.io/cluster-name": name}),
            "spec": {
                "clusterName": name,
                "replicas": workers,
                "selector": {"matchLabels": {"cluster.x-k8s.io/deployment-name": md}},
                "template": {
                    "metadata": {"labels": {"cluster.x-k8s.io/deployment-name": md}},
                    "spec": {
                        "clusterName": name,
                        "version": version,
                        "bootstrap": {
                            "configRef": ref(f"bootstrap.cluster.x-k8s.io/{core}", "KubeadmConfigTemplate", md)
                        },
                        "infrastructureRef": ref(INFRA, "ByoMachineTemplate", md),
                    },
                },
            },
        },
        {
            "apiVersion": f"addons.cluster.x-k8s.io/{core}",
            "kind": "ClusterResourceSet",
            "metadata": meta(f"{name}-crs-0"),
            "spec": {
                "strategy": "ApplyOnce",
                "clusterSelector": {"matchLabels": {"cni": f"{name}-crs-0"}},
                "resources": [{"kind": "ConfigMap", "name": f"cni-{name}-crs-0"}],
            },
        },
        {
            "apiVersion": f"cluster.x-k8s.io/{core}",
            "kind": "Cluster",
            "metadata": meta(name, labels={"cni": f"{name}-crs-0"}),
            "spec": {
                "clusterNetwork": {
                    "pods": {"cidrBlocks": ["192.168.0.0/16"]},
                    "services": {"cidrBlocks": ["10.128.0.0/12"]},
                    "serviceDomain": "cluster.local",
                },
                "infrastructureRef": ref(INFRA, "ByoCluster", name),
                "controlPlaneRef": ref(f"controlplane.cluster.x-k8s.io/{core}", "KubeadmControlPlane", cp),
            },
        },
    ]
