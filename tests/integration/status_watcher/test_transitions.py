"""status_watcher against the API emulator and the simulated CAPI/BYOH controllers, on a real nats-server.

What is asserted is what reaches the K8S stream (after JetStream de-duplication): that is what
every consumer downstream sees.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from sandbox.capi import CapiSimulators, HostAgent
from sandbox.kubeapi import KubeApiServer
from shared.bus import Bus
from shared.kube import KubeClient
from shared.objects import PR_ID_LABEL, dig
from shared.payloads import ByoHostSummary, ClusterSummary
from shared.subjects import K8S, k8s_status
from tests.integration.capi.clusterset import cluster_set
from tests.integration.capi.support import is_true, wait_for, wait_list
from tests.integration.status_watcher.support import Proxy, RunningWatcher, StreamReader, kubeconfig_via, summaries

C1 = k8s_status("cluster", "default", "c1")
Sim = Callable[..., Awaitable[CapiSimulators]]
Hosts = Callable[..., Awaitable[list[HostAgent]]]

PR1 = "00000000-0000-4000-8000-000000000001"
#: A second PR id: relabelling the Cluster with it is a barrier (its summary comes after everything before it).
PR1B = "00000000-0000-4000-8000-00000000001b"


async def apply_cluster(client: KubeClient, core: str = "v1beta1") -> None:
    for obj in cluster_set(core=core):
        if obj["kind"] == "Cluster":
            obj["metadata"]["labels"][PR_ID_LABEL] = PR1
        await client.apply(obj, field_manager="test")


@pytest.fixture
async def stream(bus: Bus) -> AsyncIterator[StreamReader]:
    reader = await StreamReader(bus).start()
    yield reader
    await reader.stop()


@pytest.fixture
async def watchers(kubeconfig: Path, bus: Bus) -> AsyncIterator[Callable[..., Awaitable[RunningWatcher]]]:
    started: list[RunningWatcher] = []

    async def start(path: Path | None = None, *, wait: bool = True, **options: Any) -> RunningWatcher:
        w = RunningWatcher(path or kubeconfig, bus, **options)
        started.append(w)
        return await w.start(wait=wait)

    yield start
    for w in started:
        await w.stop()


def transitions(stream: StreamReader, kind: str) -> list[Any]:
    return [e for e in stream.on(C1) if e.type == kind]


def assert_no_duplicate_summaries(stream: StreamReader) -> None:
    by_subject: dict[str, list[Any]] = {}
    for subject, env in stream.items:
        if env.type.startswith("k8s."):
            by_subject.setdefault(subject, []).append(env.payload)
    for subject, payloads in by_subject.items():
        for before, after in itertools.pairwise(payloads):
            assert before != after, f"{subject} published the same summary twice in a row"


async def barrier(client: KubeClient, stream: StreamReader, value: str) -> None:
    """Everything published for c1 before now has arrived once a pr-id change comes through."""
    await client.patch(
        "cluster.x-k8s.io/v1beta1", "Cluster", "c1", "default", {"metadata": {"labels": {PR_ID_LABEL: value}}}
    )
    await stream.wait_summary(C1, lambda s: s.pr_id == value)


@pytest.mark.parametrize("core", ["v1beta1", "v1beta2"])
async def test_creation_to_ready_yields_exactly_one_cluster_ready_after_the_last_worker_runs(
    core: str, capi_sim_factory: Sim, fake_hosts: Hosts, capi_client: KubeClient, watchers: Any, stream: StreamReader
) -> None:
    await capi_sim_factory(core_version=core, node_ready_delay=0.3)
    await fake_hosts(3)
    await watchers()
    await apply_cluster(capi_client, core)

    ready = await stream.wait_for(lambda _: transitions(stream, "cluster.ready"))
    assert ready[0].payload.pr_id == PR1
    # Not before: when cluster.ready arrives every worker Machine is Running with a node.
    machines, _ = await capi_client.list(f"cluster.x-k8s.io/{core}", "Machine", "default")
    assert len(machines) == 3
    assert all(m["status"]["phase"] == "Running" and m["status"]["nodeRef"]["name"] for m in machines)
    await barrier(capi_client, stream, PR1B)

    assert len(transitions(stream, "cluster.ready")) == 1
    states = summaries(stream.on(C1))
    first_ready = next(i for i, s in enumerate(states) if s.ready)
    assert all(s.ready for s in states[first_ready:])
    assert set(states[first_ready].machines.values()) == {"Running"} and len(states[first_ready].machines) == 3
    assert not any(s.ready for s in states[:first_ready])
    trapped = [s for s in states[:first_ready] if s.phase == "Provisioned" and not s.control_plane_initialized]
    assert trapped, "the Provisioned-but-not-initialized window should have been observed"
    assert transitions(stream, "cluster.failed") == []
    assert_no_duplicate_summaries(stream)


@pytest.mark.parametrize("expire", [False, True], ids=["broken-stream", "410-gone"])
async def test_a_broken_watch_and_a_forced_410_lose_no_transition_and_duplicate_none(
    expire: bool,
    kubeapi: KubeApiServer,
    kubeconfig: Path,
    tmp_path: Path,
    capi_sim: CapiSimulators,
    fake_hosts: Hosts,
    capi_client: KubeClient,
    watchers: Any,
    stream: StreamReader,
) -> None:
    proxy = Proxy(kubeapi.port)
    await proxy.start()
    try:
        w = await watchers(kubeconfig_via(kubeconfig, proxy.port, tmp_path / "via-proxy"))
        await fake_hosts(3)
        await apply_cluster(capi_client)
        await stream.wait_summary(C1, lambda s: s.exists)
        relists_before = sum(x.relists for x in w.watcher.watches)

        proxy.cut()  # mid-stream: every watch connection drops, reconnects are refused
        # The cluster becomes ready while the watcher is blind.
        await wait_until_up(capi_client)
        if expire:
            kubeapi.compact_history()
        proxy.resume()

        await stream.wait_for(lambda _: transitions(stream, "cluster.ready"))
        await barrier(capi_client, stream, PR1B)
        assert len(transitions(stream, "cluster.ready")) == 1
        assert summaries(stream.on(C1))[-1].ready
        relists = sum(x.relists for x in w.watcher.watches) - relists_before
        assert relists > 0 if expire else relists == 0
        for host in ("host-1", "host-2", "host-3"):
            # Each watch resumes on its own schedule: the host statuses catch up too.
            await stream.wait_summary(
                k8s_status("byohost", "default", host),
                lambda s: s.claimed_by == "c1" and s.bootstrap_condition == "True",
            )
        assert_no_duplicate_summaries(stream)
    finally:
        await proxy.close()


async def wait_until_up(client: KubeClient) -> None:
    """Waits (watching the API directly, not through the watcher) until c1 is up: Machines with nodes, CRS applied."""
    await wait_list(
        client,
        "cluster.x-k8s.io/v1beta1",
        "Machine",
        lambda ms: len(ms) == 3 and all(dig(m, "status", "nodeRef") for m in ms),
    )
    await wait_for(
        client,
        "addons.cluster.x-k8s.io/v1beta1",
        "ClusterResourceSet",
        "c1-crs-0",
        lambda o: is_true(o, "ResourcesApplied"),
    )
    await wait_for(
        client,
        "cluster.x-k8s.io/v1beta1",
        "MachineDeployment",
        "c1-md-0",
        lambda o: dig(o, "status", "readyReplicas") == 2,
    )


async def test_a_restart_republishes_nothing_new_inside_the_duplicate_window_and_catches_up(
    capi_sim: CapiSimulators, fake_hosts: Hosts, capi_client: KubeClient, watchers: Any, stream: StreamReader, bus: Bus
) -> None:
    await fake_hosts(3)
    first = await watchers()
    await apply_cluster(capi_client)
    await stream.wait_summary(C1, lambda s: s.exists)
    await first.stop()  # down while the cluster comes up

    await wait_until_up(capi_client)
    second = await watchers()
    await stream.wait_for(lambda _: transitions(stream, "cluster.ready"))
    await second.stop()

    stored = (await bus.js.stream_info(K8S.name)).state.messages
    third = await watchers()  # nothing changed: the same ids again, all dropped as duplicates
    assert third.pipeline.published > 0
    assert (await bus.js.stream_info(K8S.name)).state.messages == stored
    await barrier(capi_client, stream, PR1B)
    assert len(transitions(stream, "cluster.ready")) == 1
    assert_no_duplicate_summaries(stream)


async def test_a_byohost_registering_is_published_registered_and_free(
    capi_sim: CapiSimulators, fake_hosts: Hosts, watchers: Any, stream: StreamReader
) -> None:
    await watchers()
    await fake_hosts(1, host_ids=["h-77"], names=["node-77"])
    subject = k8s_status("byohost", "default", "node-77")
    summary = await stream.wait_summary(subject, lambda s: s.free)
    assert isinstance(summary, ByoHostSummary)
    assert summary.registered and summary.host_id == "h-77" and summary.claimed_by is None
    assert summary.bootstrap_condition == "WaitingForMachineRefToBeAssigned"
    assert not isinstance(summary, ClusterSummary)
