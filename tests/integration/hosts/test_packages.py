"""apt/dpkg shims: the pkgs.k8s.io repository rules, holds, and Debian's exit codes and messages."""

from __future__ import annotations

from tests.integration.hosts.helpers import run

REPO_SETUP = (
    "mkdir -p /etc/apt/keyrings && curl -fsSL https://pkgs.k8s.io/core:/stable:/v1.{minor}/deb/Release.key"
    " | gpg --dearmor -o /etc/apt/keyrings/k8s.gpg && echo 'deb [signed-by=/etc/apt/keyrings/k8s.gpg] "
    "https://pkgs.k8s.io/core:/stable:/v1.{minor}/deb/ /' > /etc/apt/sources.list.d/kubernetes.list"
)


async def test_k8s_version_not_found_without_the_repository(sandbox_hosts):
    pool = await sandbox_hosts(count=1)
    result = await run(pool, "apt-get install -y kubelet=1.30.2-1.1")
    assert result.exit_status == 100
    assert "E: Version '1.30.2-1.1' for 'kubelet' was not found" in result.stderr
    assert pool.host("host-001").state.installed("kubelet") is None
    result = await run(pool, "dpkg-query -W -f='${Status} ${Version}\\n' kubelet")
    assert result.exit_status == 1
    assert result.stderr == "dpkg-query: no packages found matching kubelet\n"


async def test_repository_needs_update_key_and_matching_minor(sandbox_hosts):
    pool = await sandbox_hosts(count=1)
    assert (await run(pool, REPO_SETUP.format(minor=31))).exit_status == 0
    # Configured but not yet indexed: apt does not know the versions before apt-get update.
    assert (await run(pool, "apt-get install -y kubeadm=1.31.4-1.1")).exit_status == 100
    assert (await run(pool, "apt-get update")).exit_status == 0
    missing = await run(pool, "apt-get install -y kubeadm=1.30.2-1.1")
    assert missing.exit_status == 100 and "Version '1.30.2-1.1' for 'kubeadm' was not found" in missing.stderr
    assert (await run(pool, "DEBIAN_FRONTEND=noninteractive apt-get install -y kubeadm=1.31.4-1.1")).exit_status == 0
    state = pool.host("host-001").state
    assert state.installed("kubeadm") == "1.31.4-1.1"
    # Dependencies come in at the repository's newest version, as apt would pick them.
    assert state.installed("kubelet") == "1.31.15-1.1"
    assert state.packages["kubelet"].auto is True
    assert (await run(pool, "kubeadm version -o short")).stdout == "v1.31.4\n"


async def test_unsigned_repository_fails_update(sandbox_hosts):
    pool = await sandbox_hosts(count=1)
    line = "deb [signed-by=/etc/apt/keyrings/missing.gpg] https://pkgs.k8s.io/core:/stable:/v1.30/deb/ /"
    result = await run(pool, f"echo '{line}' > /etc/apt/sources.list.d/k.list && apt-get update")
    assert result.exit_status == 100
    assert "NO_PUBKEY" in result.stderr and "is not signed" in result.stderr
    assert pool.host("host-001").state.apt_indexed == []


async def test_held_packages_are_not_changed_without_permission(sandbox_hosts):
    pool = await sandbox_hosts(count=1)
    setup = REPO_SETUP.format(minor=30) + " && apt-get update -qq && apt-get install -y kubelet=1.30.2-1.1"
    assert (await run(pool, setup + " && apt-mark hold kubelet")).exit_status == 0
    refused = await run(pool, "apt-get install -y kubelet=1.30.3-1.1")
    assert refused.exit_status == 100
    assert "E: Held packages were changed and -y was used without --allow-change-held-packages." in refused.stderr
    state = pool.host("host-001").state
    assert state.installed("kubelet") == "1.30.2-1.1"
    allowed = await run(pool, "apt-get install -y --allow-change-held-packages kubelet=1.30.3-1.1")
    assert allowed.exit_status == 0
    assert state.installed("kubelet") == "1.30.3-1.1"
    assert (await run(pool, "apt-mark showhold")).stdout == "kubelet\n"
    again = await run(pool, "apt-mark hold kubelet")
    assert again.stdout == "kubelet was already set on hold.\n" and state.log[-1].changed is False


async def test_install_without_noninteractive_frontend_warns(sandbox_hosts):
    pool = await sandbox_hosts(count=1)
    result = await run(pool, "apt-get install -y socat")
    assert result.exit_status == 0
    assert "debconf: unable to initialize frontend: Dialog" in result.stderr
    # sudo resets the environment, so an exported DEBIAN_FRONTEND does not reach apt-get through it.
    result = await run(pool, "export DEBIAN_FRONTEND=noninteractive; sudo apt-get install -y ebtables")
    assert "debconf" in result.stderr
    result = await run(pool, "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y ethtool")
    assert "debconf" not in result.stderr


async def test_unknown_package_and_remove(sandbox_hosts):
    pool = await sandbox_hosts(count=1)
    unknown = await run(pool, "apt-get install -y nosuchpkg")
    assert unknown.exit_status == 100 and "E: Unable to locate package nosuchpkg" in unknown.stderr
    assert (await run(pool, "DEBIAN_FRONTEND=noninteractive apt-get install -y containerd")).exit_status == 0
    state = pool.host("host-001").state
    assert state.services["containerd"].active == "active"
    assert (await run(pool, "apt-get remove -y containerd")).exit_status == 0
    assert state.packages["containerd"].status == "config-files"
    assert "containerd" not in state.services
    gone = await run(pool, "containerd --version")
    assert gone.exit_status == 127 and gone.stderr == "bash: containerd: command not found\n"
    listed = await run(pool, "dpkg-query -W -f='${Status}' containerd")
    assert listed.stdout == "deinstall ok config-files"
    assert (await run(pool, "apt-get purge -y containerd")).exit_status == 0
    assert "containerd" not in state.packages
