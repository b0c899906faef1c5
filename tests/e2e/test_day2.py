"""Day 2 on the sandbox: exact scale-down, worker swap, and hosts reset before they go back to the pool.

The services run as processes against the API emulator with the simulated CAPI/BYOH controllers and
SSH sandbox hosts (the ``system`` fixture of ``test_o2ims_flow``); the test plays focom.

- Scale-down of a named worker, for each MachineDeployment deletion policy: exactly that host
  leaves, the other workers keep their Machines, and its lease is released only after its ByoHost
  was unclaimed (and it was reset).
- A worker swap at the same count ends fulfilled with exactly the requested hosts.
- Cluster → delete → a new cluster on the same hosts is fulfilled; with the reset switched off
  the same sequence fails, as kubeadm's preflight fails on hosts a previous cluster left behind.
"""

# The sandbox fixtures (``system`` and the parts it picks from: ``shared_system``, ``own_system``,
# ``o2ims_env``) are imported from the o2ims e2e module; pytest finds them by name, so test parameters of
# that name are meant to shadow the import. As there, the tests on the shared system take hosts of their own.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from sandbox.capi.machines import DELETE_POLICIES
from shared.kube import KubeClient, WatchExpired
from shared.subjects import BUCKET_HOSTS
from tests.e2e.test_o2ims_flow import (  # noqa: F401
    CORE,
    CORE_LABEL,
    System,
    new_pr,
    o2ims_env,
    own_system,
    shared_system,
    system,
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

INFRA = "infrastructure.cluster.x-k8s.io/v1beta1"


async def worker_machines(client: KubeClient, cluster: str) -> dict[str, str]:
    """host name → Machine name of the cluster's Running workers."""
    machines, _ = await client.list(CORE, "Machine", "default", label_selector=f"{CORE_LABEL}={cluster}")
    return {
        m["status"]["nodeRef"]["name"]: m["metadata"]["name"]
        for m in machines
        if "cluster.x-k8s.io/control-plane" not in (m["metadata"].get("labels") or {})
        and (m.get("status") or {}).get("phase") == "Running"
        and (m.get("status") or {}).get("nodeRef")
    }


class Timeline:
    """When (test clock) each host's ByoHost was last seen claimed/unclaimed, and its lease released."""

    def __init__(self) -> None:
        self.unclaimed_at: dict[str, float] = {}
        self.claimed: dict[str, bool] = {}
        self.released_at: dict[str, float] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, system: System) -> None:
        self._tasks = [asyncio.create_task(self._byohosts(system.client)), asyncio.create_task(self._leases(system))]

    async def _byohosts(self, client: KubeClient) -> None:
        items, rv = await client.list(INFRA, "ByoHost", "default")
        for obj in items:
            self._note(obj, exists=True)
        while True:
            with contextlib.suppress(WatchExpired):
                async for event in client.watch(INFRA, "ByoHost", "default", resource_version=rv):
                    rv = str(event.object["metadata"].get("resourceVersion") or rv)
                    if event.type != "BOOKMARK":
                        self._note(event.object, exists=event.type != "DELETED")

    def _note(self, obj: dict[str, Any], *, exists: bool) -> None:
        host_id = (obj["metadata"].get("labels") or {}).get("o2ims.oran.org/host-id")
        if not host_id:
            return
        claimed = exists and bool((obj.get("status") or {}).get("machineRef"))
        if self.claimed.get(host_id) and not claimed:
            self.unclaimed_at[host_id] = time.monotonic()
        self.claimed[host_id] = claimed

    async def _leases(self, system: System) -> None:
        kv = await system.bus.kv(BUCKET_HOSTS)
        watcher = await kv.watchall()
        async for entry in watcher:
            if entry is not None and entry.operation in ("DEL", "PURGE"):
                self.released_at[entry.key] = time.monotonic()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@pytest_asyncio.fixture(loop_scope="module")
async def timeline(system: System) -> AsyncIterator[Timeline]:
    t = Timeline()
    await t.start(system)
    yield t
    await t.stop()


@pytest.mark.parametrize("policy", DELETE_POLICIES)
async def test_scale_down_of_a_named_worker_frees_exactly_that_host(
    system: System, timeline: Timeline, policy: str
) -> None:
    pr, hosts = new_pr(), system.take(4)
    cp, kept, leaving, last = hosts
    vip = f"127.0.9.{31 + DELETE_POLICIES.index(policy)}"
    await system.request("create", pr, system.spec(f"d2s{policy.lower()}", hosts, vip))
    await system.state(pr, "fulfilled", timeout=120)
    # An operator (or a default elsewhere) chose this deletion policy; the scale must not depend on it.
    await system.client.patch(
        CORE,
        "MachineDeployment",
        f"d2s{policy.lower()}-md-0",
        "default",
        {"spec": {"strategy": {"rollingUpdate": {"deletePolicy": policy}}}},
    )
    before = await worker_machines(system.client, f"d2s{policy.lower()}")
    assert set(before) == {system.node(h) for h in (kept, leaving, last)}

    # The leaving host is the middle worker by name and by age: no policy picks it by itself every time.
    await system.request("update", pr, system.spec(f"d2s{policy.lower()}", [cp, kept, last], vip))
    scaling = await system.state(pr, "progressing", "scaling")
    await system.statuses.wait(
        lambda: [s for s in system.states(pr) if s.state == "fulfilled" and s.seq > scaling.seq], timeout=120
    )

    after = await worker_machines(system.client, f"d2s{policy.lower()}")
    assert after == {h: m for h, m in before.items() if h != system.node(leaving)}  # the others kept theirs
    leases = await system.leases()
    assert await leases.owner_of(leaving) is None
    assert all([await leases.owner_of(h) == pr for h in (cp, kept, last)])
    # The lease went back only after the ByoHost was seen unclaimed, and after the host was reset.
    assert timeline.unclaimed_at[leaving] < timeline.released_at[leaving]
    state = system.pool.host(leaving).state
    assert [r["action"] for r in state.kubeadm_runs][-1] == "reset" and state.kubeadm_runs[-1]["source"] == "ssh"
    assert state.services["kubelet"].active != "active"
    # Its kubelet over time: started by the bootstrap at the cluster's version, stopped by the reset.
    timeline_ = [(e["active"], (e["version"] or "").split("-")[0]) for e in state.kubelet_timeline]
    assert timeline_[-2:] == [(True, "1.30.2"), (False, "")]
    assert leaving not in {k for k, v in timeline.claimed.items() if v}
    phases = [(s.state, s.stage) for s in system.states(pr) if s.seq >= scaling.seq]
    assert phases[0] == ("progressing", "scaling") and phases[-2:] == [("progressing", "teardown"), ("fulfilled", None)]


async def test_a_worker_swap_reaches_fulfilled_with_exactly_the_requested_hosts(
    system: System, timeline: Timeline
) -> None:
    pr, (cp, kept, leaving, joining) = new_pr(), system.take(4)
    await system.request("create", pr, system.spec("d2w", [cp, kept, leaving], "127.0.9.22"))
    await system.state(pr, "fulfilled", timeout=120)
    before = await worker_machines(system.client, "d2w")
    created = system.states(pr)[-1].seq
    await system.request("update", pr, system.spec("d2w", [cp, kept, joining], "127.0.9.22"))
    await system.statuses.wait(
        lambda: [s for s in system.states(pr) if s.state == "fulfilled" and s.seq > created], timeout=150
    )
    prep = next(s for s in system.states(pr) if s.seq > created)
    after = await worker_machines(system.client, "d2w")
    assert set(after) == {system.node(kept), system.node(joining)}
    assert after[system.node(kept)] == before[system.node(kept)]
    leases = await system.leases()
    assert await leases.owner_of(leaving) is None and await leases.owner_of(joining) == pr
    assert timeline.unclaimed_at[leaving] < timeline.released_at[leaving]
    phases = [(s.state, s.stage) for s in system.states(pr) if s.seq >= prep.seq]
    # Added first (hostprep, then the interim scale with three workers), then removed, then reset.
    assert phases[0] == ("progressing", "hostprep")
    assert phases[-2:] == [("progressing", "teardown"), ("fulfilled", None)]
    assert phases.count(("progressing", "scaling")) >= 2


async def _create_delete_create(system: System, hosts: list[str]) -> tuple[str, str]:
    first, second = new_pr(), new_pr()
    await system.request("create", first, system.spec("d2a", hosts, "127.0.9.23"))
    await system.state(first, "fulfilled", timeout=120)
    await system.request("delete", first, system.spec("d2a", hosts, "127.0.9.23"))
    await system.state(first, "deleted", timeout=120)
    await system.request("create", second, system.spec("d2b", hosts, "127.0.9.24"))
    return first, second


async def test_a_new_cluster_on_the_hosts_of_a_deleted_one_is_fulfilled(system: System) -> None:
    hosts = system.take(2)
    first, second = await _create_delete_create(system, hosts)
    assert [(s.state, s.stage) for s in system.states(first)][-2:] == [("deleting", "teardown"), ("deleted", None)]
    await system.state(second, "fulfilled", timeout=150)
    for host_id in hosts:
        runs = [r["action"] for r in system.pool.host(host_id).state.kubeadm_runs]
        assert "reset" in runs and runs[-1] in ("init", "join")  # reset between the two clusters


@pytest.mark.parametrize("o2ims_env", [{"O2_O2IMS_TEARDOWN_HOSTS": "false"}], indirect=True)
async def test_without_the_reset_the_same_sequence_fails_like_kubeadm_preflight(system: System) -> None:
    hosts = system.take(2)
    _first, second = await _create_delete_create(system, hosts)
    failed = await system.state(second, "failed", timeout=150)
    assert "preflight" in (failed.message or "") and "[ERROR" in (failed.message or ""), failed.message
    for host_id in hosts:
        assert "reset" not in [r["action"] for r in system.pool.host(host_id).state.kubeadm_runs]
