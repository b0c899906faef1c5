"""The user guide's own inventories, unchanged, on the sandbox; and HA control planes with a VIP from the pool.

Seed format, as operators write ``input.json``: numeric ``host_id``, ``host_pwd`` logins (hostprep has no
default key here, so only the password can log in), ``k8s_version`` without the ``v``, single control-plane
clusters, no ``control_plane_endpoint`` and no ``cni``. Each cluster reaches fulfilled with its control-plane
host's own address as the endpoint, no kube-vip, and Calico (the default CNI) carried by an applied
ClusterResourceSet.

The pool: clusters of three control-plane hosts without an endpoint, requested by two FOCOM requests at once,
each get a different VIP from ``O2_FOCOM_VIP_POOL`` (never a host's address), rendered as the ByoCluster
endpoint and kube-vip's address; deleting a cluster returns its VIP to the pool.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.payloads import pr_id_for
from shared.subjects import BUCKET_VIPS
from tests.e2e.harness import K8S_VERSION, Stack, StackOptions, eventually
from tests.e2e.invariants import run_problems

pytestmark = pytest.mark.e2e

PASSWORD = "pw-" + secrets.token_urlsafe(12)
KUBE_VIP = "/etc/kubernetes/manifests/kube-vip.yaml"
POOL = "127.0.210.0/29"


def seed_inventory(stack: Stack, clusters: list[tuple[str, int, int]]) -> dict[str, Any]:
    """The sandbox hosts in the user guide's format: clusters of (name, control-plane hosts, workers)."""
    hosts = []
    for n, h in enumerate(stack.inventory["hosts"], start=1):
        assert "ssh_key_file" not in h and h["host_pwd"] == PASSWORD
        # ssh_port only because the sandbox hosts cannot listen on 22; everything else as the guide writes it.
        hosts.append(
            {
                "host_id": n,
                "host_name": h["host_name"],
                "host_ip": h["host_ip"],
                "host_user": h["host_user"],
                "host_pwd": PASSWORD,
                "ssh_port": h["ssh_port"],
            }
        )
        stack.host_dirs[str(n)] = h["host_id"]
    out, next_id = [], 1
    for name, cp, workers in clusters:
        ids = list(range(next_id, next_id + cp + workers))
        next_id += cp + workers
        out.append(
            {
                "cluster_name": name,
                "cluster_masters": [{"host_id": i} for i in ids[:cp]],
                "cluster_workers": [{"host_id": i} for i in ids[cp:]],
            }
        )
    return {"k8s_version": K8S_VERSION.removeprefix("v"), "hosts": hosts, "clusters": out}


def options(hosts: int, **env: dict[str, str | None]) -> StackOptions:
    every = frozenset(f"host-{i:03d}" for i in range(1, hosts + 1))
    return StackOptions(
        clusters=0,
        hosts_per_cluster=1,
        spare_hosts=hosts,
        password=PASSWORD,
        password_hosts=every,
        env={"hostprep": {"O2_HOSTPREP_SSH_KEY_FILE": None}, **env},
    )


async def objects(stack: Stack, cluster: str) -> dict[str, dict[str, Any]]:
    found = {}
    for api_version, kind, name in (
        ("infrastructure.cluster.x-k8s.io/v1beta1", "ByoCluster", cluster),
        ("controlplane.cluster.x-k8s.io/v1beta1", "KubeadmControlPlane", f"{cluster}-control-plane"),
        ("addons.cluster.x-k8s.io/v1beta1", "ClusterResourceSet", f"{cluster}-crs-0"),
        ("v1", "ConfigMap", f"cni-{cluster}-crs-0"),
    ):
        obj = await stack.kube.get(api_version, kind, name, "default")
        assert obj is not None, f"{kind}/{name} missing"
        found[kind] = obj
    return found


def kube_vip_env(kcp: dict[str, Any]) -> dict[str, str] | None:
    files = [f for f in kcp["spec"]["kubeadmConfigSpec"].get("files", []) if f["path"] == KUBE_VIP]
    if not files:
        return None
    pod = yaml.safe_load(files[0]["content"])
    return {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}


async def test_a_seed_format_inventory_reaches_fulfilled(tmp_path: Path) -> None:
    async with Stack(tmp_path / "stack", options(4)) as stack:
        inventory = seed_inventory(stack, [("smo", 1, 1), ("ran", 1, 1)])
        stack.write_inventory(inventory)
        await stack.submit("seed", allClusters=True)
        record = await stack.settled("seed", timeout=240)
        assert record["phase"] == "Synced", record
        assert {c: v["state"] for c, v in record["children"].items()} == {"smo": "fulfilled", "ran": "fulfilled"}
        problems = await run_problems(stack, {"seed": {}})
        assert problems == [], "\n".join(problems)
        by_id = {h["host_id"]: h["host_ip"] for h in inventory["hosts"]}
        for cluster in inventory["clusters"]:
            name, cp_ip = cluster["cluster_name"], by_id[cluster["cluster_masters"][0]["host_id"]]
            found = await objects(stack, name)
            assert found["ByoCluster"]["spec"]["controlPlaneEndpoint"] == {"host": cp_ip, "port": 6443}
            assert kube_vip_env(found["KubeadmControlPlane"]) is None, f"{name} runs kube-vip without a VIP"
            # Calico, the default CNI, carried by the ClusterResourceSet and applied once the cluster came up.
            assert "calico.yaml" in found["ConfigMap"]["data"]
            conditions = {c["type"]: c["status"] for c in found["ClusterResourceSet"]["status"]["conditions"]}
            assert conditions.get("ResourcesApplied") == "True", conditions
        # Each host registered under its numeric id, logged in with the password only.
        leases = await stack.leases()
        assert sorted(leases) == ["1", "2", "3", "4"]
        assert leases["1"] == pr_id_for("seed", "smo") and leases["3"] == pr_id_for("seed", "ran")


async def test_ha_control_planes_get_distinct_pool_vips_and_give_them_back(tmp_path: Path) -> None:
    async with Stack(tmp_path / "stack", options(7, focom={"O2_FOCOM_VIP_POOL": POOL})) as stack:
        inventory = seed_inventory(stack, [("ha-a", 3, 1), ("ha-b", 3, 0)])
        stack.write_inventory(inventory)
        # Two requests at once, each for one HA cluster: each takes its own VIP from the pool.
        await asyncio.gather(stack.submit("fpr-a", clusterNames=["ha-a"]), stack.submit("fpr-b", clusterNames=["ha-b"]))
        for name in ("fpr-a", "fpr-b"):
            record = await stack.settled(name, timeout=300)
            assert record["phase"] == "Synced", record
        held = {k: v["owner"] for k, v in (await stack._records(BUCKET_VIPS)).items()}
        assert sorted(held.values()) == sorted([pr_id_for("fpr-a", "ha-a"), pr_id_for("fpr-b", "ha-b")])
        host_ips = {h["host_ip"] for h in inventory["hosts"]}
        net = ipaddress.ip_network(POOL)
        vip_of = {}
        for cluster, fpr in (("ha-a", "fpr-a"), ("ha-b", "fpr-b")):
            found = await objects(stack, cluster)
            vip = found["ByoCluster"]["spec"]["controlPlaneEndpoint"]["host"]
            assert ipaddress.ip_address(vip) in net and vip not in host_ips
            assert vip not in (str(net.network_address), str(net.broadcast_address))
            assert held[vip] == pr_id_for(fpr, cluster)
            assert (kube_vip_env(found["KubeadmControlPlane"]) or {}).get("vip_address") == vip
            assert found["KubeadmControlPlane"]["spec"]["replicas"] == 3
            vip_of[cluster] = vip
        assert vip_of["ha-a"] != vip_of["ha-b"]
        problems = await run_problems(stack, {"fpr-a": {}, "fpr-b": {}})
        assert problems == [], "\n".join(problems)
        # Deleting a cluster returns its VIP (and its hosts); the other cluster keeps its own.
        await stack.submit("fpr-a", operation="delete", allClusters=True)

        async def released() -> bool:
            rec = await stack.fpr("fpr-a")
            vips = await stack._records(BUCKET_VIPS)
            return bool(rec and rec.get("phase") == "Deleted") and sorted(vips) == [vip_of["ha-b"]]

        await eventually(released, 240, "fpr-a Deleted and its VIP back in the pool", wake=stack.changed)
        assert set((await stack.leases()).values()) == {pr_id_for("fpr-b", "ha-b")}
        problems = await run_problems(stack, {"fpr-b": {}})
        assert problems == [], "\n".join(problems)
