"""Reconciles cut between two writes (the emulator restarted, say): the next reconcile finishes the job.

Each test makes one write of a multi-write reconcile fail once, as if the process had stopped right after
the writes before it, and checks that the simulators, level-based, still reach the end state from what is
stored. Without the corresponding fix each of them waits forever.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox.capi import CapiSimulators, HostAgent
from shared.kube import KubeClient
from shared.objects import dig
from tests.fixtures.capi import kube_client
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


class _SlowFirstList:
    """A client whose first ``list`` waits for ``gate`` (at most a few seconds): a kind listed late."""

    def __init__(self, real: KubeClient, gate: asyncio.Event) -> None:
        self._real = real
        self._gate = gate
        self._first = True

    async def list(self, *args: Any, **kwargs: Any) -> Any:
        if self._first:
            self._first = False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3):
                    await self._gate.wait()
        return await self._real.list(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


async def test_restarted_controllers_act_only_once_every_kind_is_listed(
    capi_sim: CapiSimulators, fake_hosts: Hosts, capi_client: KubeClient, kubeconfig: Path
) -> None:
    # After a restart everything is in the store again. A KubeadmControlPlane or MachineDeployment reconciled
    # before the Machines are listed sees none and creates them again (a second first control-plane Machine
    # takes a host meant for another Machine).
    await fake_hosts(3)
    await _apply(capi_client)
    await wait_list(
        capi_client, CORE, "Machine", lambda ms: len(ms) == 3 and all(dig(m, "status", "nodeRef") for m in ms)
    )
    await capi_sim.stop()
    async with kube_client(kubeconfig) as client:
        again = CapiSimulators(client, capi_sim.options)
        reconciled, settled = asyncio.Event(), asyncio.Event()
        seen_whole: set[str] = set()
        creates: list[str] = []
        machines = again.ctx.informer("Machine")
        machines.client = _SlowFirstList(client, reconciled)  # type: ignore[assignment]
        for controller in again.controllers:
            if controller.kind in ("KubeadmControlPlane", "MachineDeployment"):
                real = controller.reconcile

                async def reconcile(namespace: str, name: str, real: Any = real, kind: str = controller.kind) -> Any:
                    present = again.ctx.get(kind, namespace, name) is not None
                    if present:
                        reconciled.set()  # it can act: let the Machines be listed now
                    whole = present and machines.synced.is_set()
                    result = await real(namespace, name)
                    if whole:  # a reconcile that saw every Machine, done: it had its chance to act
                        seen_whole.add(kind)
                        if seen_whole == {"KubeadmControlPlane", "MachineDeployment"}:
                            settled.set()
                    return result

                controller.reconcile = reconcile  # type: ignore[method-assign]
        real_create = again.ctx.create

        async def create(obj: Obj) -> Obj:
            if obj.get("kind") == "Machine":
                creates.append(str(dig(obj, "metadata", "name")))
            return await real_create(obj)

        again.ctx.create = create  # type: ignore[method-assign]
        async with again:
            await asyncio.wait_for(settled.wait(), timeout=30)
        assert creates == []
        listed, _ = await capi_client.list(CORE, "Machine", "default")
        assert len(listed) == 3
