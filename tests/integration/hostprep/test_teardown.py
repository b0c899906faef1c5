"""Teardown leaves the host clean and the ByoHost (and its BootstrapKubeconfig) gone."""

from __future__ import annotations

from services.hostprep import hostlayout
from services.hostprep.bootstrap import INFRA_VERSION
from services.hostprep.domain import bootstrap_kubeconfig_name
from services.hostprep.teardown import PURGE_PACKAGES
from shared.kube import KubeClient
from shared.payloads import HostprepDone, HostprepFailed
from tests.integration.hostprep.conftest import HarnessFactory
from tests.integration.hostprep.harness import byohosts_by_host_id, claim


async def test_teardown_cleans_the_hosts_and_removes_their_byohosts(
    hostprep: HarnessFactory, capi_client: KubeClient
) -> None:
    harness, pool = await hostprep(3)
    assert isinstance(await harness.run(harness.job(pool)), HostprepDone)
    assert len(await byohosts_by_host_id(capi_client)) == 3

    # host-001 had joined a cluster (kubeadm left its kubelet.conf) and must be reset.
    joined = pool.host("host-001").vfs.real("/etc/kubernetes/kubelet.conf")
    joined.parent.mkdir(parents=True, exist_ok=True)
    joined.write_text("# kubelet kubeconfig written by kubeadm join\n")
    # host-001 and host-002 leave; host-002 also loses its packages; host-003 stays.
    teardown = harness.job(pool, ids=["host-001"], action="teardown")
    purge = harness.job(pool, ids=["host-002"], action="teardown", purge=True)
    await harness.submit(teardown)
    result = await harness.run(purge)
    assert isinstance(result, HostprepDone) and result.action == "teardown", result
    assert isinstance(await harness.result(teardown.pr_id), HostprepDone)

    assert sorted(await byohosts_by_host_id(capi_client)) == ["host-003"]
    for host_id in ("host-001", "host-002"):
        bkc = await capi_client.get(INFRA_VERSION, "BootstrapKubeconfig", bootstrap_kubeconfig_name(host_id), "default")
        assert bkc is None
        host = pool.host(host_id)
        vfs = host.vfs
        assert (
            hostlayout.AGENT_UNIT_NAME not in host.state.services
            or host.state.services[hostlayout.AGENT_UNIT_NAME].active != "active"
        )
        assert host.agents is not None and host.agents.units == []
        for path in (hostlayout.AGENT_UNIT, hostlayout.AGENT_CONFIG_DIR, "/etc/byoh", "/etc/kubernetes/kubelet.conf"):
            assert not vfs.real(path).exists(), path
    assert pool.host("host-001").state.kubeadm == "reset"
    assert any("\nkubeadm reset -f\n" in r.command and r.changed for r in pool.host("host-001").state.log)
    purged = pool.host("host-002").state
    assert not any(purged.installed(p) for p in PURGE_PACKAGES)
    assert not purged.holds & set(hostlayout.K8S_PACKAGES)
    kept = pool.host("host-001").state
    assert all(kept.installed(p) for p in hostlayout.K8S_PACKAGES)

    # Teardown twice is harmless: every check already holds.
    marks = {h: pool.host(h).state.mark() for h in ("host-001", "host-002")}
    again = await harness.run(harness.job(pool, ids=["host-001", "host-002"], action="teardown", purge=True))
    assert isinstance(again, HostprepDone)
    assert pool.host("host-002").state.changed_since(marks["host-002"]) == []
    assert pool.host("host-003").state.services[hostlayout.AGENT_UNIT_NAME].active == "active"


async def test_a_host_whose_byohost_is_claimed_is_never_reset(
    hostprep: HarnessFactory, capi_client: KubeClient
) -> None:
    harness, pool = await hostprep(2)
    assert isinstance(await harness.run(harness.job(pool)), HostprepDone)
    before = await byohosts_by_host_id(capi_client)
    await claim(capi_client, before["host-002"]["metadata"]["name"])
    untouched = pool.host("host-002").state.mark()
    result = await harness.run(harness.job(pool, action="teardown"))
    assert isinstance(result, HostprepFailed), result
    assert (result.host_id, result.step, result.reason) == ("host-002", "byohost-version", "ByoHostClaimed")
    assert result.ready_hosts == ("host-001",)
    assert pool.host("host-002").state.since(untouched) == [], "not a command ran on the node"
    assert pool.host("host-002").state.services[hostlayout.AGENT_UNIT_NAME].active == "active"
    assert sorted(await byohosts_by_host_id(capi_client)) == ["host-002"]
