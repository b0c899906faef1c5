"""Which Machines a scale-down marks for deletion: exactly those on hosts leaving the spec, only ours."""

from __future__ import annotations

from typing import Any

import pytest

from services.capi_renderer.scale import DELETE_MACHINE_ANNOTATION, leaving_machines, mark_leaving_workers
from shared.errors import PermanentError
from shared.models import ClusterSpec, HostRef


def ref(host_id: str) -> HostRef:
    return HostRef(host_id=host_id, host_name=f"node-{host_id}", host_ip=f"10.0.0.{int(host_id[1:]) + 10}")


def spec(workers: tuple[str, ...]) -> ClusterSpec:
    return ClusterSpec(
        name="c1",
        k8s_version="v1.30.2",
        control_plane=(ref("h1"),),
        workers=tuple(ref(w) for w in workers),
        vip="10.0.0.100",
    )


def byohost(host_id: str, byomachine: str | None, cluster: str | None = "c1") -> dict[str, Any]:
    labels = {"o2ims.oran.org/host-id": host_id}
    if cluster:
        labels["cluster.x-k8s.io/cluster-name"] = cluster
    status = {"machineRef": {"kind": "ByoMachine", "name": byomachine}} if byomachine else {}
    return {"metadata": {"name": f"node-{host_id}", "labels": labels}, "status": status}


def machine(name: str, *, cp: bool = False, cluster: str = "c1", annotated: bool = False) -> dict[str, Any]:
    labels = {"cluster.x-k8s.io/cluster-name": cluster, "cluster.x-k8s.io/deployment-name": "c1-md-0"}
    if cp:
        labels["cluster.x-k8s.io/control-plane"] = ""
    meta: dict[str, Any] = {"name": name, "labels": labels}
    if annotated:
        meta["annotations"] = {DELETE_MACHINE_ANNOTATION: "true"}
    return {"metadata": meta, "spec": {"infrastructureRef": {"kind": "ByoMachine", "name": f"{name}-bm"}}}


HOSTS = [byohost("h1", "cp-1-bm"), byohost("h2", "w-a-bm"), byohost("h3", "w-b-bm"), byohost("h4", "w-c-bm")]
MACHINES = [machine("cp-1", cp=True), machine("w-a"), machine("w-b"), machine("w-c")]


def test_only_the_machines_on_leaving_hosts_are_picked() -> None:
    got = leaving_machines(spec(("h2", "h4")), HOSTS, MACHINES)
    assert {h: m["metadata"]["name"] for h, m in got.items()} == {"h3": "w-b"}
    assert leaving_machines(spec(("h2", "h3", "h4")), HOSTS, MACHINES) == {}
    gone = leaving_machines(spec(()), HOSTS, MACHINES)
    assert sorted(gone) == ["h2", "h3", "h4"]


def test_hosts_and_machines_of_other_clusters_and_the_control_plane_are_never_picked() -> None:
    hosts = [byohost("h1", "cp-1-bm"), byohost("h5", "x-bm", cluster="other"), byohost("h6", None, cluster=None)]
    machines = [machine("cp-1", cp=True), machine("x", cluster="other")]
    # h1 (control plane) is not in this worker-only spec's workers but is in the spec; h5/h6 are not ours.
    assert leaving_machines(spec(()), hosts, machines) == {}
    # A control-plane Machine is not a worker to scale away even when its host left the spec.
    assert leaving_machines(spec(()).model_copy(update={"control_plane": (ref("h9"),)}), hosts, machines) == {}


class FakeApi:
    def __init__(self, objects: dict[str, list[dict[str, Any]]], pr: str = "pr-1") -> None:
        self.objects = objects
        self.pr = pr
        self.patches: list[tuple[str, str, dict[str, Any]]] = []

    async def list(
        self, api_version: str, kind: str, namespace: str | None = None, *, label_selector: str | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        return self.objects[kind], "1"

    async def patch(
        self, api_version: str, kind: str, name: str, namespace: str | None, patch: dict[str, Any]
    ) -> dict[str, Any]:
        self.patches.append((kind, name, patch))
        return {}

    async def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        return {"metadata": {"name": name, "labels": {"o2ims.oran.org/pr-id": self.pr}}}


async def test_marking_annotates_once_and_is_idempotent() -> None:
    api = FakeApi({"ByoHost": HOSTS, "Machine": [*MACHINES[:2], machine("w-b", annotated=True), MACHINES[3]]})
    assert await mark_leaving_workers(api, spec(("h4",)), "v1beta1", "pr-1") == ["h2", "h3"]
    # w-b already carries the annotation: only w-a is patched.
    assert api.patches == [("Machine", "w-a", {"metadata": {"annotations": {DELETE_MACHINE_ANNOTATION: "true"}}})]


async def test_the_machines_of_another_prs_machinedeployment_are_left_alone() -> None:
    api = FakeApi({"ByoHost": HOSTS, "Machine": MACHINES}, pr="someone-else")
    with pytest.raises(PermanentError) as err:
        await mark_leaving_workers(api, spec(("h4",)), "v1beta1", "pr-1")
    assert err.value.reason == "ForeignObject" and api.patches == []
