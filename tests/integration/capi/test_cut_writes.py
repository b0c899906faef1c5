"""Reconciles cut between two writes (the emulator restarted, say): the next reconcile finishes the job.

Each test makes one write of a multi-write reconcile fail once, as if the process had stopped right after
the writes before it, and checks that the simulators, level-based, still reach the end state from what is
stored. Without the corresponding fix each of them waits forever.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from sandbox.capi import CapiSimulators, HostAgent
from shared.kube import KubeClient
from shared.objects import dig
from tests.integration.capi.clusterset import cluster_set
from tests.integration.capi.support import INFRA, is_true, wait_for, wait_list

CORE = "cluster.x-k8s.io/v1beta1"
Hosts = Callable[..., Awaitable[list[HostAgent]]]
Obj = dict[str, Any]


async def _apply(client: KubeClient) -> None:
    for obj in cluster_set():
        await client.apply(obj, field_manager="test")


def _controller(sim: CapiSimulators, kind: str) -> Any:
    (found,) = (c for c in sim.controllers if c.kind == kind)
    return found


@pytest.mark.parametrize("owner", ["c1-md-0", "c1-control-plane"])
async def test_a_machine_create_cut_between_its_two_objects_is_completed(
    owner: str, capi_sim: CapiSimulators, fake_hosts: Hosts, capi_client: KubeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A new Machine is two objects, the Machine and its ByoMachine. Whichever is written second, a stop before
    # it must not leave a Machine without infrastructure (it would hold its KubeadmControlPlane forever) nor
    # an unreferenced ByoMachine behind.
    ctx = _controller(capi_sim, "KubeadmControlPlane").ctx
    real = ctx.create
    seen: set[str] = set()
    cut: list[str] = []

    async def create(obj: Obj) -> Obj:
        if obj.get("kind") in ("Machine", "ByoMachine"):
            name = str(dig(obj, "metadata", "name"))
            if name in seen and name.startswith(f"{owner}-") and not cut:
                cut.append(f"{obj['kind']} {name}")
                raise ConnectionResetError("stopped between the two creates of a Machine")
            seen.add(name)
        return await real(obj)

    monkeypatch.setattr(ctx, "create", create)
    await fake_hosts(3)
    await _apply(capi_client)
    for name in ("host-1", "host-2", "host-3"):
        await wait_for(capi_client, INFRA, "ByoHost", name, lambda o: is_true(o, "K8sNodeBootstrapSucceeded"))
    assert len(cut) == 1, "no Machine create was cut"
    machines = await wait_list(
        capi_client, CORE, "Machine", lambda ms: len(ms) == 3 and all(dig(m, "status", "nodeRef") for m in ms)
    )
    names = sorted(m["metadata"]["name"] for m in machines)
    # The half-made pair's ByoMachine, if it is the one that was written, is removed.
    byomachines = await wait_list(
        capi_client, INFRA, "ByoMachine", lambda bms: sorted(b["metadata"]["name"] for b in bms) == names
    )
    for bm in byomachines:
        controllers = [r for r in bm["metadata"].get("ownerReferences") or [] if r.get("controller")]
        assert [(r["kind"], r["name"]) for r in controllers] == [("Machine", bm["metadata"]["name"])]
