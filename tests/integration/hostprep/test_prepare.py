"""A prepare job over sandbox hosts: each host ends in the recipe's state with a ByoHost; a re-run only checks."""

from __future__ import annotations

from typing import Any

from sandbox.hosts import SandboxHostPool
from services.hostprep import hostlayout
from shared.kube import KubeClient
from shared.objects import HOST_ID_LABEL, K8S_VERSION_LABEL
from shared.payloads import HostprepDone, HostprepFailed
from tests.integration.hostprep.conftest import HarnessFactory
from tests.integration.hostprep.harness import K8S_VERSION, byohosts_by_host_id, claim

PKG = "1.30.2-1.1"


def assert_prepared(pool: SandboxHostPool, host_id: str) -> None:
    """The host's recorded state matches every step of the recipe."""
    host = pool.host(host_id)
    state = host.state
    fs_root = host.vfs
    # swap off now and after a reboot
    assert state.swap_active == []
    fstab = fs_root.real("/etc/fstab").read_text()
    assert not [ln for ln in fstab.splitlines() if ln.split()[2:3] == ["swap"] and not ln.startswith("#")]
    # modules loaded and persisted
    assert {"overlay", "br_netfilter"} <= state.modules_loaded
    assert fs_root.real(hostlayout.MODULES_CONF).read_text().split() == ["overlay", "br_netfilter"]
    # sysctls set and persisted
    for key, value in hostlayout.SYSCTLS:
        assert state.sysctls[key] == value
        assert f"{key} = {value}" in fs_root.real(hostlayout.SYSCTL_CONF).read_text()
    # packages
    for name in hostlayout.BASE_PACKAGES:
        assert state.installed(name), name
    for name in hostlayout.K8S_PACKAGES:
        assert state.installed(name) == PKG and state.held(name), name
    # containerd
    assert state.installed("containerd")
    assert "SystemdCgroup = true" in fs_root.real(hostlayout.CONTAINERD_CONF).read_text()
    assert state.services["containerd"].enabled and state.services["containerd"].active == "active"
    # hostname resolvable
    assert any(host.state.hostname in ln.split()[1:] for ln in fs_root.real("/etc/hosts").read_text().splitlines())
    # bootstrap kubeconfig uploaded 0600, agent installed and running as a unit with the right flags
    assert state.files[hostlayout.BOOTSTRAP_KUBECONFIG].mode & 0o777 == 0o600
    assert fs_root.real("/usr/local/bin/byoh-hostagent").read_bytes() == pool.agent_binary
    agent = state.services[hostlayout.AGENT_UNIT_NAME]
    assert agent.enabled and agent.active == "active"
    assert f"--label {HOST_ID_LABEL}={host_id}" in (agent.exec_start or "")
    assert f"--label {K8S_VERSION_LABEL}={K8S_VERSION}" in (agent.exec_start or "")
    assert "--skip-installation" in (agent.exec_start or "") and "--namespace default" in (agent.exec_start or "")


def counters(pool: SandboxHostPool) -> dict[str, Any]:
    return {
        h.host_id: {name: (s.start_count, s.restart_count, s.stop_count) for name, s in h.state.services.items()}
        for h in pool.hosts
    }


async def test_twenty_hosts_prepared_registered_and_a_rerun_only_checks(
    hostprep: HarnessFactory, capi_client: KubeClient
) -> None:
    harness, pool = await hostprep(20)
    job = harness.job(pool)
    result = await harness.run(job)
    assert isinstance(result, HostprepDone), result
    assert sorted(result.hosts) == sorted(h.host_id for h in pool.hosts)
    for host in pool.hosts:
        assert_prepared(pool, host.host_id)
        statuses = [(p.step, p.status) for p in harness.progress(job.pr_id, host.host_id)]
        assert ("preflight", "done") in statuses and ("prepare", "ready") in statuses
        assert ("registration", "done") in statuses or ("registration", "skipped") in statuses
    byohosts = await byohosts_by_host_id(capi_client)
    assert sorted(byohosts) == sorted(h.host_id for h in pool.hosts)
    for host in pool.hosts:
        assert byohosts[host.host_id]["metadata"]["name"] == host.state.hostname
        # Registered with the version its packages were installed at: the templates select by it.
        assert byohosts[host.host_id]["metadata"]["labels"][K8S_VERSION_LABEL] == K8S_VERSION

    # The same job again: only checks run, nothing changes, nothing restarts.
    marks = {h.host_id: h.state.mark() for h in pool.hosts}
    before = counters(pool)
    again = harness.job(pool)
    second = await harness.run(again)
    assert isinstance(second, HostprepDone), second
    for host in pool.hosts:
        changed = host.state.changed_since(marks[host.host_id])
        assert changed == [], [c.command for c in changed]
        assert host.state.since(marks[host.host_id]), "the re-run ran its checks"
        statuses = {p.status for p in harness.progress(again.pr_id, host.host_id)}
        assert "running" not in statuses and "skipped" in statuses
    assert counters(pool) == before
    assert sorted(await byohosts_by_host_id(capi_client)) == sorted(byohosts)


async def test_a_non_root_login_prepares_through_sudo(hostprep: HarnessFactory, capi_client: KubeClient) -> None:
    harness, pool = await hostprep(2, pool_kw={"user": "ubuntu"})
    result = await harness.run(harness.job(pool))
    assert isinstance(result, HostprepDone), result
    for host in pool.hosts:
        assert_prepared(pool, host.host_id)
        privileged = [r for r in host.state.log if r.source == "ssh" and r.changed]
        assert privileged and all(r.command.startswith("sudo -n bash -c ") for r in privileged)
    assert sorted(await byohosts_by_host_id(capi_client)) == ["host-001", "host-002"]


async def test_a_prepare_at_another_version_re_registers_free_hosts_and_refuses_a_node(
    hostprep: HarnessFactory, capi_client: KubeClient
) -> None:
    harness, pool = await hostprep(2)
    assert isinstance(await harness.run(harness.job(pool)), HostprepDone)
    before = await byohosts_by_host_id(capi_client)
    await claim(capi_client, before["host-002"]["metadata"]["name"])
    untouched = pool.host("host-002").state.mark()

    job = harness.job(pool, k8s_version="v1.30.3")
    result = await harness.run(job)

    assert isinstance(result, HostprepFailed), result
    assert (result.host_id, result.step, result.reason) == ("host-002", "byohost-version", "ByoHostClaimed")
    assert pool.host("host-002").state.since(untouched) == [], "nothing ran on the node"
    after = await byohosts_by_host_id(capi_client)
    assert after["host-002"]["metadata"]["labels"][K8S_VERSION_LABEL] == K8S_VERSION
    # The free host: packages at the new version, its ByoHost (labels are set only at registration)
    # deleted and registered again by the restarted agent under the new version.
    free = after["host-001"]
    assert free["metadata"]["labels"][K8S_VERSION_LABEL] == "v1.30.3"
    assert free["metadata"]["uid"] != before["host-001"]["metadata"]["uid"]
    assert pool.host("host-001").state.installed("kubelet") == "1.30.3-1.1"
    steps = [(p.step, p.status) for p in harness.progress(job.pr_id, "host-001")]
    assert ("stale-byohost", "done") in steps and ("agent-service", "done") in steps
