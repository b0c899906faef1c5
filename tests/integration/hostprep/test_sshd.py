"""The recipe over a real OpenSSH sshd (non-root login, sudo, host key from known_hosts).

The sshd fixture of the sandbox host tests forces every session into ``python -m sandbox.hosts.exec``,
so the shell steps run exactly as on a real host; the upload steps cannot (the forced command also
catches the SFTP subsystem, and the agent simulator does not run there). Without a management
cluster the host therefore stops, by design, at ``bootstrap-kubeconfig``: everything before it must
be done, and a second run must only check.
"""

from __future__ import annotations

import asyncio
import json
import time

import asyncssh
import pytest

from sandbox.hosts.state import HostState
from services.hostprep import hostlayout
from services.hostprep.credentials import CredentialStore
from services.hostprep.deps import Deps
from services.hostprep.runner import HostRunner
from services.hostprep.settings import HostprepSettings
from services.hostprep.ssh import SshConnector
from services.hostprep.steps import AgentSource, RecipeParams
from tests.integration.hosts.test_sshd import LOGIN, Sshd, sshd  # noqa: F401 - the fixture

pytestmark = pytest.mark.sshd


async def _runner(settings: HostprepSettings, port: int, reports: list[tuple[str, str]]) -> HostRunner:
    inventory = settings.ssh_key_file.parent / "input.json"  # type: ignore[union-attr]
    inventory.write_text(
        json.dumps(
            {
                "k8s_version": "v1.30.2",
                "hosts": [
                    {
                        "host_id": "host-001",
                        "host_name": "node-001",
                        "host_ip": "127.0.0.1",
                        "ssh_port": port,
                        "host_user": LOGIN,
                    }
                ],
            }
        )
    )
    settings = settings.model_copy(update={"inventory_file": inventory})
    store = CredentialStore(settings)
    deps = Deps(
        settings=settings,
        connector=SshConnector(connect_timeout=10),
        slots=asyncio.Semaphore(1),
        store=store,
        agent=AgentSource(pushed=True, sha256="ab" * 32),
        agent_binary=b"unused",
    )
    resolved = await store.resolve("host-001")

    async def report(step: str, status: str, detail: str | None) -> None:
        reports.append((step, status))

    params = RecipeParams(host=resolved.ref, namespace="default", k8s_version="v1.30.2")
    return HostRunner(deps, params, resolved, action="prepare", report=report, deadline=time.monotonic() + 100)


async def test_recipe_over_real_sshd_with_sudo(sshd: Sshd) -> None:  # noqa: F811
    settings = HostprepSettings(
        ssh_key_file=sshd.client_key, known_hosts_file=sshd.known_hosts, command_timeout=30, max_step_attempts=1
    )
    reports: list[tuple[str, str]] = []
    outcome = await (await _runner(settings, sshd.port, reports)).run()
    assert not outcome.ok and outcome.step == "bootstrap-kubeconfig" and outcome.reason == "NoManagementCluster"
    assert outcome.acted == (
        "swap",
        "kernel-modules",
        "sysctl",
        "base-packages",
        "containerd",
        "kubernetes-repo",
        "kubernetes-packages",
        "etc-hosts",
    )
    state = HostState.load(sshd.host_dir / "state.json")
    assert {r.source for r in state.log} == {"exec"}
    assert all(r.command.startswith("sudo -n bash -c ") for r in state.log[1:])
    assert state.swap_active == [] and {"overlay", "br_netfilter"} <= state.modules_loaded
    assert all(state.sysctls[k] == v for k, v in hostlayout.SYSCTLS)
    assert all(state.installed(p) == "1.30.2-1.1" and state.held(p) for p in hostlayout.K8S_PACKAGES)
    assert state.services["containerd"].active == "active" and state.derived["containerd_systemd_cgroup"] is True
    assert state.derived["hosts_has_hostname"] is True

    mark = len(state.log)
    again: list[tuple[str, str]] = []
    second = await (await _runner(settings, sshd.port, again)).run()
    assert second.acted == () and second.step == "bootstrap-kubeconfig"
    later = HostState.load(sshd.host_dir / "state.json")
    assert later.changed_since(mark) == [] and len(later.log) > mark
    assert {status for step, status in again if step not in ("preflight", "bootstrap-kubeconfig")} == {"skipped"}


async def test_a_changed_host_key_on_real_sshd_is_refused(sshd: Sshd, tmp_path) -> None:  # noqa: F811
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {other}\n")
    settings = HostprepSettings(ssh_key_file=sshd.client_key, known_hosts_file=known, max_step_attempts=1)
    outcome = await (await _runner(settings, sshd.port, [])).run()
    assert not outcome.ok and outcome.step == "preflight" and outcome.reason == "HostKeyMismatch"
