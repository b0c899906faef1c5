"""A capi_renderer scale job on the simulators removes exactly the leaving host, whatever the deletion policy.

The cluster is applied through the handler with three workers on fake BYOH hosts; the MachineDeployment's
deletion policy is set (as an operator might) to each of CAPI's; then a scale job drops the middle worker.
The Machine on that host is the one deleted (it was annotated before the count went down) and the other
workers keep their Machines.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox.capi import CapiSimulators, HostAgent
from sandbox.capi.machines import DELETE_POLICIES
from services.capi_renderer.domain import RenderOptions
from services.capi_renderer.handlers import Deps, make_handler
from shared.bus import Bus
from shared.crd_schema import CrdSchemas
from shared.dispatch import dispatch
from shared.kube import KubeClient
from shared.messages import decode
from shared.models import ClusterSpec, HostRef
from shared.objects import K8S_VERSION_LABEL, dig
from shared.payloads import CapiApplied, CapiJob
from shared.subjects import CAPI_JOBS_CONSUMER, capi_event, capi_job
from tests.integration.capi.support import wait_list

#: A PR id as the bus carries it (a canonical UUID).
PR7 = "7e0d9a4c-1b2f-5c3d-8e4f-a5b6c7d8e9f0"

REPO = Path(__file__).resolve().parents[3]
CNI = REPO / "examples" / "cni" / "bridge-pool.yaml"
CORE = "cluster.x-k8s.io/v1beta1"
WORKERS = "cluster.x-k8s.io/deployment-name=c7-md-0"


def _spec(workers: tuple[int, ...]) -> ClusterSpec:
    def ref(i: int) -> HostRef:
        return HostRef(host_id=f"h{i}", host_name=f"host-{i}", host_ip=f"10.0.0.{10 + i}")

    return ClusterSpec(
        name="c7",
        k8s_version="1.30.2",
        control_plane=(ref(1),),
        workers=tuple(ref(i) for i in workers),
        vip="10.0.0.250",
        cni="bridge-pool",
    )


def _on_hosts(machines: list[dict[str, Any]]) -> dict[str, str]:
    return {
        dig(m, "status", "nodeRef", "name"): m["metadata"]["name"]
        for m in machines
        if dig(m, "status", "phase") == "Running"
    }


@pytest.mark.parametrize("policy", DELETE_POLICIES)
async def test_scale_down_removes_exactly_the_leaving_host(
    bus: Bus,
    capi_sim: CapiSimulators,
    capi_client: KubeClient,
    served_schemas: CrdSchemas,
    fake_hosts: Callable[..., Awaitable[list[HostAgent]]],
    policy: str,
) -> None:
    await fake_hosts(4, extra_labels={K8S_VERSION_LABEL: "v1.30.2"})  # agents registered at the spec's version
    deps = Deps(client=capi_client, options=RenderOptions(cni_manifests={"bridge-pool": CNI}), schemas=served_schemas)
    await bus.consumer(CAPI_JOBS_CONSUMER, dispatch(make_handler(deps))).start()
    events = await bus.nc.subscribe(capi_event(PR7))
    await bus.emit(capi_job(PR7), CapiJob(pr_id=PR7, action="apply", spec=_spec((2, 3, 4))))
    assert isinstance(decode((await events.next_msg(timeout=30)).data).payload, CapiApplied)
    await capi_client.patch(
        CORE,
        "MachineDeployment",
        "c7-md-0",
        "default",
        {"spec": {"strategy": {"rollingUpdate": {"deletePolicy": policy}}}},
    )
    before = _on_hosts(
        await wait_list(capi_client, CORE, "Machine", lambda ms: len(_on_hosts(ms)) == 3, label_selector=WORKERS)
    )

    await bus.emit(capi_job(PR7), CapiJob(pr_id=PR7, action="scale", spec=_spec((2, 4))))
    scaled = decode((await events.next_msg(timeout=30)).data).payload
    assert isinstance(scaled, CapiApplied) and scaled.action == "scale"
    after = _on_hosts(await wait_list(capi_client, CORE, "Machine", lambda ms: len(ms) == 2, label_selector=WORKERS))
    assert after == {h: m for h, m in before.items() if h != "host-3"}
    md = await capi_client.get(CORE, "MachineDeployment", "c7-md-0", "default")
    assert dig(md, "spec", "replicas") == 2
    assert dig(md, "spec", "strategy", "rollingUpdate", "deletePolicy") == policy  # our apply kept the operator's
    await events.unsubscribe()
