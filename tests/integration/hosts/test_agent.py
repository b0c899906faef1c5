"""The byoh-hostagent unit: it registers a ByoHost through the uploaded bootstrap kubeconfig, or fails cleanly."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from sandbox.hosts import Fault
from tests.fixtures.sandbox_hosts import ssh_connect
from tests.integration.hosts.helpers import run

AGENT_URL = "https://github.com/vmware-tanzu/cluster-api-provider-bringyourownhost/releases/download/v0.5.0/byoh-hostagent-linux-amd64"
UNIT = """[Unit]
Description=BYOH host agent
After=network-online.target

[Service]
ExecStart=/usr/local/bin/byoh-hostagent --bootstrap-kubeconfig /etc/byoh/bootstrap-kubeconfig.conf \\
  --namespace default --label o2ims.oran.org/host-id=host-001 --label role=worker,zone=a {extra}
User=root
Restart=always

[Install]
WantedBy=multi-user.target
"""
HAVE_AGENT = importlib.util.find_spec("sandbox.capi.agent") is not None


def install_agent(extra: str = "--skip-installation") -> str:
    unit = UNIT.format(extra=extra)
    return (
        f"curl -fsSL -o /usr/local/bin/byoh-hostagent {AGENT_URL} && chmod 0755 /usr/local/bin/byoh-hostagent && "
        "mkdir -p /etc/byoh && "
        f"cat > /etc/systemd/system/byoh-hostagent.service <<'EOF'\n{unit}EOF\n"
        "systemctl daemon-reload && systemctl enable --now byoh-hostagent.service"
    )


async def upload_kubeconfig(pool, text: str) -> None:
    async with await ssh_connect(pool) as conn:
        await conn.run("mkdir -p /etc/byoh", check=True)
        async with conn.start_sftp_client() as sftp, sftp.open("/etc/byoh/bootstrap-kubeconfig.conf", "w") as fh:
            await fh.write(text)
        await conn.run("chmod 600 /etc/byoh/bootstrap-kubeconfig.conf", check=True)


async def test_agent_binary_from_the_mirror_reports_its_version(sandbox_hosts):
    pool = await sandbox_hosts(count=1, agent_binary_url=AGENT_URL)
    result = await run(
        pool,
        f"curl -fsSL {AGENT_URL} -o /usr/local/bin/byoh-hostagent; "
        "byoh-hostagent --version; chmod +x /usr/local/bin/byoh-hostagent; "
        "byoh-hostagent --version; sha256sum /usr/local/bin/byoh-hostagent",
    )
    assert result.stderr == "bash: /usr/local/bin/byoh-hostagent: Permission denied\n"
    assert result.stdout.startswith("byoh-hostagent version: v0.5.0\n")
    missing = await run(pool, "curl -fsSL https://example.invalid/agent -o /tmp/a")
    assert (missing.exit_status, missing.stderr) == (6, "curl: (6) Could not resolve host: example.invalid\n")
    missing = await run(pool, "curl -fsS https://github.com/nope -o /tmp/a")
    assert (missing.exit_status, missing.stderr) == (22, "curl: (22) The requested URL returned error: 404\n")
    silent = await run(pool, "curl -fs https://github.com/nope")
    assert (silent.exit_status, silent.stderr, silent.stdout) == (22, "", "")


async def test_agent_unit_fails_cleanly_without_the_simulator(sandbox_hosts, monkeypatch):
    monkeypatch.setattr("sandbox.hosts.agents.AGENT_MODULE", "sandbox.capi.no_such_agent_module")
    pool = await sandbox_hosts(count=1, agent_binary_url=AGENT_URL)
    await upload_kubeconfig(pool, "apiVersion: v1\nkind: Config\n")
    assert (await run(pool, install_agent())).exit_status == 0
    status = await run(pool, "systemctl is-active byoh-hostagent; journalctl -u byoh-hostagent --no-pager")
    assert status.exit_status == 0  # the last command's status; is-active printed "failed"
    assert status.stdout.startswith("failed\n")
    assert "BYOH agent simulator unavailable: ModuleNotFoundError" in status.stdout
    assert pool.host("host-001").state.services["byoh-hostagent"].active == "failed"


async def test_agent_without_skip_installation_fails_like_the_real_one(sandbox_hosts):
    pool = await sandbox_hosts(count=1, agent_binary_url=AGENT_URL)
    await upload_kubeconfig(pool, "apiVersion: v1\nkind: Config\n")
    assert (await run(pool, install_agent(extra=""))).exit_status == 0
    journal = await run(pool, "systemctl is-active byoh-hostagent || journalctl -u byoh-hostagent")
    assert "No k8s support for OS" in journal.stdout


async def test_missing_or_non_executable_binary_is_203_exec(sandbox_hosts):
    pool = await sandbox_hosts(count=1)
    unit = UNIT.format(extra="--skip-installation")
    script = f"cat > /etc/systemd/system/byoh-hostagent.service <<'EOF'\n{unit}EOF\nsystemctl start byoh-hostagent"
    assert (await run(pool, script)).exit_status == 0
    journal = await run(pool, "journalctl -u byoh-hostagent")
    assert "status=203/EXEC" in journal.stdout and "No such file or directory" in journal.stdout


async def test_changed_unit_without_daemon_reload_is_recorded(sandbox_hosts):
    pool = await sandbox_hosts(count=1)
    write = "printf '[Service]\\nExecStart=/usr/bin/{0}\\n' > /etc/systemd/system/demo.service"
    assert (await run(pool, write.format("true") + " && systemctl enable demo")).exit_status == 0
    stale = await run(pool, write.format("false") + " && systemctl restart demo")
    assert "Run 'systemctl daemon-reload' to reload units." in stale.stderr
    state = pool.host("host-001").state
    assert state.services["demo"].needs_daemon_reload is True
    assert state.services["demo"].exec_start == "/usr/bin/true"
    assert any("demo.service changed on disk" in w for w in state.warnings)
    mark = state.mark()
    assert (await run(pool, "systemctl daemon-reload")).exit_status == 0
    assert (await run(pool, "systemctl daemon-reload")).exit_status == 0
    assert [r.changed for r in state.since(mark)] == [True, False]
    assert state.services["demo"].exec_start == "/usr/bin/false"


@pytest.mark.skipif(not HAVE_AGENT, reason="sandbox.capi.agent (the BYOH agent simulator) is not available")
async def test_agent_unit_registers_a_byohost(sandbox_hosts, capi_sim, capi_client):
    from sandbox.capi.fakehosts import issue_bootstrap_kubeconfig

    kubeconfig = await issue_bootstrap_kubeconfig(capi_client, "bootstrap-node-001", "default")
    pool = await sandbox_hosts(count=1, agent_binary_url=AGENT_URL)
    host = pool.host("host-001")
    await upload_kubeconfig(pool, kubeconfig)
    assert (await run(pool, install_agent())).exit_status == 0
    assert host.agents is not None
    assert await asyncio.wait_for(host.agents.wait_ready("byoh-hostagent"), 30)
    byohost = await capi_client.get("infrastructure.cluster.x-k8s.io/v1beta1", "ByoHost", "node-001", "default")
    assert byohost is not None
    labels = byohost["metadata"]["labels"]
    assert labels["o2ims.oran.org/host-id"] == "host-001"
    assert (labels["role"], labels["zone"]) == ("worker", "a")
    assert (await run(pool, "systemctl is-active byoh-hostagent")).stdout == "active\n"
    assert (await run(pool, "test -f /root/.byoh/config")).exit_status == 0
    # Stopping the unit stops the in-process agent.
    assert (await run(pool, "systemctl stop byoh-hostagent")).exit_status == 0
    assert host.agents.units == []


@pytest.mark.skipif(not HAVE_AGENT, reason="sandbox.capi.agent (the BYOH agent simulator) is not available")
async def test_bootstrap_hooks_record_kubeadm_and_faults(sandbox_hosts, capi_sim, capi_client):
    from sandbox.capi.fakehosts import issue_bootstrap_kubeconfig

    kubeconfig = await issue_bootstrap_kubeconfig(capi_client, "bootstrap-node-001", "default")
    pool = await sandbox_hosts(count=1, agent_binary_url=AGENT_URL)
    host = pool.host("host-001")
    await upload_kubeconfig(pool, kubeconfig)
    assert (await run(pool, "DEBIAN_FRONTEND=noninteractive apt-get install -y containerd")).exit_status == 0
    assert (await run(pool, install_agent())).exit_status == 0
    assert host.agents is not None
    assert await asyncio.wait_for(host.agents.wait_ready("byoh-hostagent"), 30)
    supervisor = host.agents
    hooks = supervisor.agent("byoh-hostagent")
    assert hooks is not None
    await supervisor.on_bootstrap("join")
    assert host.state.kubeadm == "join"
    assert (await run(pool, "test -f /etc/kubernetes/kubelet.conf")).exit_status == 0
    reset = await run(pool, "kubeadm reset -f")
    assert reset.exit_status == 127  # kubeadm is not installed: the command is not there
    await supervisor.on_reset()
    assert host.state.kubeadm == "reset"
    assert (await run(pool, "ls /etc/kubernetes")).stdout == ""
    pool.set_fault("host-001", Fault.bootstrap_failure("disk full"))
    with pytest.raises(RuntimeError, match="disk full"):
        await supervisor.on_bootstrap("init")
    assert [r["action"] for r in host.state.kubeadm_runs] == ["join", "reset", "init"]
    assert host.state.kubeadm_runs[-1]["ok"] is False


@pytest.mark.skipif(not HAVE_AGENT, reason="sandbox.capi.agent (the BYOH agent simulator) is not available")
async def test_a_bootstrap_on_an_unreset_host_fails_kubeadm_preflight(sandbox_hosts, capi_sim, capi_client):
    from sandbox.capi.fakehosts import issue_bootstrap_kubeconfig

    kubeconfig = await issue_bootstrap_kubeconfig(capi_client, "bootstrap-node-001", "default")
    pool = await sandbox_hosts(count=1, agent_binary_url=AGENT_URL)
    host = pool.host("host-001")
    await upload_kubeconfig(pool, kubeconfig)
    assert (await run(pool, install_agent())).exit_status == 0
    assert await asyncio.wait_for(host.agents.wait_ready("byoh-hostagent"), 30)
    supervisor = host.agents
    await supervisor.on_bootstrap("init")
    # A second cluster's bootstrap on the same, unreset host: kubeadm's preflight refuses, naming each check.
    with pytest.raises(RuntimeError) as failed:
        await supervisor.on_bootstrap("join", frozenset({"FileAvailable--etc-kubernetes-kubelet.conf"}))
    assert "[ERROR FileAvailable--etc-kubernetes-pki-ca.crt]: /etc/kubernetes/pki/ca.crt already exists" in str(
        failed.value
    )
    assert "FileAvailable--etc-kubernetes-kubelet.conf" not in str(failed.value)  # ignored by the bootstrap
    with pytest.raises(RuntimeError, match=r"\[ERROR DirAvailable--var-lib-etcd\]: /var/lib/etcd is not empty"):
        await supervisor.on_bootstrap("init")
    assert [r["ok"] for r in host.state.kubeadm_runs] == [True, False, False]
    # Once reset, the same bootstrap succeeds.
    await supervisor.on_reset()
    await supervisor.on_bootstrap("join", frozenset({"FileAvailable--etc-kubernetes-kubelet.conf"}))
    assert host.state.kubeadm == "join"


@pytest.mark.skipif(not HAVE_AGENT, reason="sandbox.capi.agent (the BYOH agent simulator) is not available")
async def test_a_bootstrap_at_another_version_than_the_hosts_packages_fails(sandbox_hosts, capi_sim, capi_client):
    from sandbox.capi.fakehosts import issue_bootstrap_kubeconfig
    from sandbox.hosts.state import PackageRecord

    kubeconfig = await issue_bootstrap_kubeconfig(capi_client, "bootstrap-node-001", "default")
    pool = await sandbox_hosts(count=1, agent_binary_url=AGENT_URL)
    host = pool.host("host-001")
    await upload_kubeconfig(pool, kubeconfig)
    assert (await run(pool, install_agent())).exit_status == 0
    assert await asyncio.wait_for(host.agents.wait_ready("byoh-hostagent"), 30)
    supervisor = host.agents
    # An old-version host claimed by a new-version Machine: kubeadm refuses, nothing is set up.
    host.state.packages["kubeadm"] = PackageRecord("1.30.2-1.1")
    host.state.packages["kubelet"] = PackageRecord("1.30.2-1.1")
    with pytest.raises(RuntimeError, match=r"this version of kubeadm \(v1\.30\.2\) cannot join a node of Kubernetes"):
        await supervisor.on_bootstrap("join", frozenset(), "v1.31.2")
    host.state.packages["kubeadm"] = PackageRecord("1.31.2-1.1")
    with pytest.raises(RuntimeError, match=r'\[ERROR KubeletVersion\]: the kubelet version "1\.30\.2"'):
        await supervisor.on_bootstrap("join", frozenset(), "v1.31.2")
    host.state.packages["kubelet"] = PackageRecord("1.32.0-1.1")
    with pytest.raises(RuntimeError, match="the kubelet version is higher than the control plane version"):
        await supervisor.on_bootstrap("init", frozenset(), "v1.31.2")
    assert [r["ok"] for r in host.state.kubeadm_runs] == [False, False, False]
    assert (await run(pool, "test -e /etc/kubernetes/kubelet.conf")).exit_status == 1
    # With the Machine's version installed, the same bootstrap runs and reports that kubelet.
    host.state.packages["kubelet"] = PackageRecord("1.31.2-1.1")
    host.state.service("kubelet")
    assert await supervisor.on_bootstrap("join", frozenset(), "v1.31.2", True) == "v1.31.2"
    assert host.state.kubeadm == "join"
    # A control-plane join runs kube-apiserver at kubeadm's version; the timelines record both, and the reset.
    pod = await run(pool, "cat /etc/kubernetes/manifests/kube-apiserver.yaml")
    assert "image: registry.k8s.io/kube-apiserver:v1.31.2" in pod.stdout
    await supervisor.on_reset()
    timelines = host.state.timelines()
    assert [(e["active"], e["version"]) for e in timelines.kubelet] == [(True, "1.31.2-1.1"), (False, None)]
    assert [(e["active"], e["version"]) for e in timelines.apiserver] == [(True, "1.31.2-1.1"), (False, None)]
