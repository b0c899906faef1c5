"""Calico by default on the sandbox: a cluster whose inventory entry names no CNI (nor a VIP) gets Calico's
ClusterResourceSet, carrying the sandbox's stand-in with the cluster's own pod CIDR, applied."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.e2e.harness import Stack, StackOptions

pytestmark = pytest.mark.e2e


async def test_a_cluster_that_names_no_cni_gets_calico_applied(tmp_path: Path) -> None:
    async with Stack(tmp_path / "stack", StackOptions(clusters=2, hosts_per_cluster=2)) as stack:
        inventory = dict(stack.inventory)
        # As operators write them: no CNI and, for these single control planes, no VIP either.
        unnamed = ("cni", "control_plane_endpoint")
        inventory["clusters"] = [{k: v for k, v in c.items() if k not in unnamed} for c in inventory["clusters"]]
        inventory["clusters"][1]["pod_cidr"] = "10.128.0.0/16"
        stack.write_inventory(inventory)
        await stack.submit("default-cni", allClusters=True)
        record = await stack.settled("default-cni")
        assert record["phase"] == "Synced", record

        for cluster, pod_cidr in (("c001", "10.244.0.0/16"), ("c002", "10.128.0.0/16")):
            crs = await stack.kube.get(
                "addons.cluster.x-k8s.io/v1beta1", "ClusterResourceSet", f"{cluster}-crs-0", "default"
            )
            assert crs is not None, cluster
            applied = [c for c in crs["status"]["conditions"] if c["type"] == "ResourcesApplied"]
            assert applied and applied[0]["status"] == "True", crs["status"]
            carried = await stack.kube.get("v1", "ConfigMap", f"cni-{cluster}-crs-0", "default")
            assert carried is not None and set(carried["data"]) == {"calico.yaml"}
            docs = list(yaml.safe_load_all(carried["data"]["calico.yaml"]))
            node = next(d for d in docs if d["kind"] == "DaemonSet" and d["metadata"]["name"] == "calico-node")
            env = {e["name"]: e.get("value") for e in node["spec"]["template"]["spec"]["containers"][0]["env"]}
            assert env["CALICO_IPV4POOL_CIDR"] == pod_cidr
