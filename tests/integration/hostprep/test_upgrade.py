"""The ``upgrade`` action on sandbox hosts: released hosts get the target packages and a ByoHost registered
under the target version's label; a claimed ByoHost is refused and its host left untouched; re-runs converge."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.hosts import Fault, SandboxHostPool
from services.hostprep import hostlayout
from services.hostprep.bootstrap import INFRA_VERSION
from services.hostprep.domain import bootstrap_kubeconfig_name
from shared.errors import PermanentError, TemporaryError
from shared.kube import KubeClient
from shared.objects import K8S_VERSION_LABEL
from shared.payloads import HostprepDone, HostprepFailed
from tests.integration.hostprep.conftest import HarnessFactory
from tests.integration.hostprep.harness import K8S_VERSION, Harness, byohosts_by_host_id, claim

TARGET = "v1.31.1"
TARGET_PKG = "1.31.1-1.1"
CLAIMED = "host-003"


def joined(pool: SandboxHostPool, host_id: str) -> None:
    """Leave on the host what a node of a cluster leaves once BYOH released it without a reset."""
    vfs = pool.host(host_id).vfs
    for path, text in (
        ("/etc/kubernetes/kubelet.conf", "# kubelet kubeconfig written by kubeadm join\n"),
        ("/var/lib/kubelet/config.yaml", "# kubelet configuration\n"),
        ("/etc/cni/net.d/10-calico.conflist", "{}\n"),
        ("/var/lib/etcd/member/snap/db", "etcd\n"),
    ):
        real = vfs.real(path)
        real.parent.mkdir(parents=True, exist_ok=True)
        real.write_text(text)


def statuses(harness: Harness, pr_id: str, host_id: str) -> list[tuple[str, str]]:
    return [(p.step, p.status) for p in harness.progress(pr_id, host_id)]


def assert_upgraded(pool: SandboxHostPool, host_id: str, byohost: dict[str, Any], old_uid: str) -> None:
    state = pool.host(host_id).state
    for name in hostlayout.K8S_PACKAGES:
        assert state.installed(name) == TARGET_PKG and state.held(name), name
    repo = pool.host(host_id).vfs.real(hostlayout.REPO_LIST).read_text()
    assert "/core:/stable:/v1.31/deb/" in repo
    agent = state.services[hostlayout.AGENT_UNIT_NAME]
    assert agent.enabled and agent.active == "active"
    assert f"--label {K8S_VERSION_LABEL}={TARGET}" in (agent.exec_start or "")
    # A new ByoHost (registered again by the restarted agent, labels from its new flags), free to be claimed.
    assert byohost["metadata"]["uid"] != old_uid
    assert byohost["metadata"]["labels"][K8S_VERSION_LABEL] == TARGET
    assert byohost["metadata"]["name"] == state.hostname
    assert not (byohost.get("status") or {}).get("machineRef")


async def test_released_hosts_are_upgraded_a_claimed_one_is_refused_untouched_and_a_rerun_changes_nothing(
    hostprep: HarnessFactory, capi_client: KubeClient
) -> None:
    harness, pool = await hostprep(3)
    assert isinstance(await harness.run(harness.job(pool)), HostprepDone)
    before = await byohosts_by_host_id(capi_client)
    assert {b["metadata"]["labels"][K8S_VERSION_LABEL] for b in before.values()} == {K8S_VERSION}
    old_bkc = await capi_client.get(INFRA_VERSION, "BootstrapKubeconfig", bootstrap_kubeconfig_name("host-001"))
    assert old_bkc is not None
    # host-001 was a node (released by BYOH, not reset); host-003 is still one: its ByoHost is claimed.
    joined(pool, "host-001")
    await claim(capi_client, before[CLAIMED]["metadata"]["name"])
    claimed_before = (await byohosts_by_host_id(capi_client))[CLAIMED]
    untouched = pool.host(CLAIMED).state.mark()

    job = harness.job(pool, action="upgrade", k8s_version=TARGET)
    result = await harness.run(job)

    assert isinstance(result, HostprepFailed) and result.action == "upgrade", result
    assert (result.host_id, result.step, result.reason) == (CLAIMED, "byohost-version", "ByoHostClaimed")
    assert "c1-md-0-x7k2p" in result.message and CLAIMED in result.message
    assert sorted(result.ready_hosts) == ["host-001", "host-002"]
    # The claimed host: not a single command ran on it, its ByoHost is as it was.
    assert pool.host(CLAIMED).state.since(untouched) == []
    after = await byohosts_by_host_id(capi_client)
    assert after[CLAIMED] == claimed_before
    assert statuses(harness, job.pr_id, CLAIMED) == [("byohost-version", "failed")]

    for host_id in ("host-001", "host-002"):
        assert_upgraded(pool, host_id, after[host_id], before[host_id]["metadata"]["uid"])
        steps = statuses(harness, job.pr_id, host_id)
        for step in ("agent-stopped", "byohost-removed", "agent-config", "kubernetes-repo", "kubernetes-packages"):
            assert (step, "done") in steps, (host_id, step, steps)
        assert ("registration", "done") in steps and steps[-1] == ("upgrade", "ready")
        assert steps[0] == ("byohost-version", "done")
    # The node that was released unreset is reset: kubeadm reset ran, its CNI config and etcd data are gone.
    node = pool.host("host-001")
    assert ("kubeadm-reset", "done") in statuses(harness, job.pr_id, "host-001")
    assert node.state.kubeadm == "reset"
    for path in ("/etc/kubernetes/kubelet.conf", "/var/lib/kubelet/config.yaml"):
        assert not node.vfs.real(path).exists(), path
    for directory in ("/etc/cni/net.d", "/var/lib/etcd"):
        assert node.vfs.real(directory).is_dir() and not list(node.vfs.real(directory).iterdir()), directory
    # Its agent registered with a fresh BootstrapKubeconfig (the old one was deleted with the ByoHost).
    new_bkc = await capi_client.get(INFRA_VERSION, "BootstrapKubeconfig", bootstrap_kubeconfig_name("host-001"))
    assert new_bkc is not None and new_bkc["metadata"]["uid"] != old_bkc["metadata"]["uid"]

    # The same upgrade again: the released hosts are registered at the target, nothing runs on them.
    marks = {h: pool.host(h).state.mark() for h in ("host-001", "host-002")}
    again = harness.job(pool, ids=["host-001", "host-002"], action="upgrade", k8s_version=TARGET)
    second = await harness.run(again)
    assert isinstance(second, HostprepDone) and second.action == "upgrade", second
    for host_id, mark in marks.items():
        assert pool.host(host_id).state.since(mark) == []
        assert statuses(harness, again.pr_id, host_id) == [("byohost-version", "skipped"), ("upgrade", "ready")]
    assert await byohosts_by_host_id(capi_client) == after


async def test_an_upgrade_that_failed_midway_names_host_and_step_and_a_rerun_finishes_it(
    hostprep: HarnessFactory, capi_client: KubeClient
) -> None:
    harness, pool = await hostprep(2)
    assert isinstance(await harness.run(harness.job(pool)), HostprepDone)
    pool.set_fault(
        "host-002",
        Fault.command_failure(
            r"kubelet=1\.31\.1", exit_code=100, stderr="E: Version '1.31.1-1.1' for 'kubelet' was not found"
        ),
    )
    job = harness.job(pool, action="upgrade", k8s_version=TARGET)
    failed = await harness.run(job)
    assert isinstance(failed, HostprepFailed), failed
    assert (failed.host_id, failed.step, failed.reason, failed.exit_code) == (
        "host-002",
        "kubernetes-packages",
        "CommandFailed",
        100,
    )
    assert failed.ready_hosts == ("host-001",)
    # host-002 is out of the pool (its ByoHost deleted, agent stopped) and still at the old packages.
    byohosts = await byohosts_by_host_id(capi_client)
    assert "host-002" not in byohosts and byohosts["host-001"]["metadata"]["labels"][K8S_VERSION_LABEL] == TARGET
    assert pool.host("host-002").state.installed("kubelet") == "1.30.2-1.1"

    pool.set_fault("host-002", None)
    rerun = harness.job(pool, action="upgrade", k8s_version=TARGET)
    done = await harness.run(rerun)
    assert isinstance(done, HostprepDone), done
    steps = statuses(harness, rerun.pr_id, "host-002")
    # The steps done before the failure only check; the rest acts.
    assert ("agent-stopped", "skipped") in steps and ("byohost-removed", "skipped") in steps
    assert ("kubernetes-packages", "done") in steps and ("registration", "done") in steps
    byohost = (await byohosts_by_host_id(capi_client))["host-002"]
    assert byohost["metadata"]["labels"][K8S_VERSION_LABEL] == TARGET
    assert pool.host("host-002").state.installed("kubelet") == TARGET_PKG


async def test_byohost_deletes_are_guarded_by_claim_uid_and_resource_version(
    hostprep: HarnessFactory, capi_client: KubeClient
) -> None:
    harness, pool = await hostprep(1)
    assert isinstance(await harness.run(harness.job(pool)), HostprepDone)
    read = (await byohosts_by_host_id(capi_client))["host-001"]
    name, md = read["metadata"]["name"], read["metadata"]
    # Changed since it was read (here by its own agent): a delete carrying what was read is refused by the
    # API server, and retried from a re-read.
    async with await KubeClient.from_kubeconfig(pool.host("host-001").vfs.real("/root/.byoh/config")) as agent:
        await agent.patch(INFRA_VERSION, "ByoHost", name, "default", {"metadata": {"annotations": {"seen": "1"}}})
    with pytest.raises(TemporaryError) as refused:
        await capi_client.delete(
            INFRA_VERSION,
            "ByoHost",
            name,
            "default",
            preconditions={"uid": md["uid"], "resourceVersion": md["resourceVersion"]},
        )
    assert refused.value.reason == "Conflict"
    # Claimed: the re-read finds it so and nothing is deleted.
    await claim(capi_client, name)
    index = harness.deps.byohosts
    assert index is not None
    with pytest.raises(PermanentError) as claimed:
        await index.delete_unclaimed("default", "host-001", lambda _obj: True)
    assert claimed.value.reason == "ByoHostClaimed" and "c1-md-0-x7k2p" in claimed.value.message
    assert (await byohosts_by_host_id(capi_client))["host-001"]["metadata"]["uid"] == md["uid"]
