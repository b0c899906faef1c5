"""The BYOH host agent and the BootstrapKubeconfig controller, driven without a cluster."""

from __future__ import annotations

import base64
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.capi import CapiSimulators, HostAgent
from sandbox.capi.bootstrapdata import cloud_config
from shared.kube import KubeClient
from shared.objects import dig
from tests.integration.capi.support import INFRA, condition, is_true, wait_for

Hosts = Callable[..., Awaitable[list[HostAgent]]]


async def test_bootstrap_kubeconfig_issues_a_working_token(capi_sim: CapiSimulators, capi_client: KubeClient) -> None:
    ca = await capi_client.ca_data()
    await capi_client.apply(
        {
            "apiVersion": INFRA,
            "kind": "BootstrapKubeconfig",
            "metadata": {"name": "bk1", "namespace": "default"},
            "spec": {"apiserver": capi_client.server, "certificate-authority-data": ca},
        },
        field_manager="test",
    )
    bkc = await wait_for(
        capi_client, INFRA, "BootstrapKubeconfig", "bk1", lambda o: bool(dig(o, "status", "bootstrapKubeconfigData"))
    )
    config = yaml.safe_load(dig(bkc, "status", "bootstrapKubeconfigData"))
    assert config["clusters"][0]["cluster"] == {"server": capi_client.server, "certificate-authority-data": ca}
    token = config["users"][0]["user"]["token"]
    token_id, _, token_secret = token.partition(".")
    secret = await capi_client.get("v1", "Secret", f"bootstrap-token-{token_id}", "kube-system")
    assert secret is not None and secret["type"] == "bootstrap.kubernetes.io/token"
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["token-secret"] == token_secret
    assert data["auth-extra-groups"] == "system:bootstrappers:byoh"
    assert data["usage-bootstrap-authentication"] == "true" and "expiration" in data
    async with await KubeClient.from_kubeconfig_dict(config) as bootstrap_client:
        assert (await bootstrap_client.list(INFRA, "ByoHost", "default"))[0] == []


async def test_agent_registration_config_and_restart(
    capi_sim: CapiSimulators, fake_hosts: Hosts, capi_client: KubeClient, tmp_path: Path
) -> None:
    (agent,) = await fake_hosts(1, extra_labels={"site": "a"})
    host = await capi_client.get(INFRA, "ByoHost", "host-1", "default")
    assert host["metadata"]["labels"] == {"site": "a", "o2ims.oran.org/host-id": "h1"}
    assert dig(host, "status", "hostinfo", "osname") == "linux"
    assert dig(host, "status", "network")[0]["isDefault"] is True
    cond = condition(host, "K8sNodeBootstrapSucceeded")
    assert cond["status"] == "False" and cond["severity"] == "Info"
    config = tmp_path / "hosts" / "host-1" / ".byoh" / "config"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    # The agent's own config: same server and CA, its own (non-expiring) credential instead of the bootstrap token.
    own = yaml.safe_load(config.read_text())
    boot = yaml.safe_load((tmp_path / "hosts" / "host-1" / "bootstrap-kubeconfig").read_text())
    assert own["clusters"] == boot["clusters"]
    assert own["users"][0]["user"]["token"] != boot["users"][0]["user"]["token"]
    await agent.stop()

    # Restart: the existing config is used (the bootstrap kubeconfig may be gone) and labels are not changed.
    again = HostAgent(
        bootstrap_kubeconfig=tmp_path / "missing", hostname="host-1", labels={"site": "b"}, config_path=config
    )
    await again.start()
    try:
        host = await capi_client.get(INFRA, "ByoHost", "host-1", "default")
        assert host["metadata"]["labels"] == {"site": "a", "o2ims.oran.org/host-id": "h1"}
    finally:
        await again.stop()

    # The unclaimed ByoHost deleted, the agent restarted: it registers anew, with its current flags.
    await capi_client.delete(INFRA, "ByoHost", "host-1", "default")
    relabelled = HostAgent(
        bootstrap_kubeconfig=tmp_path / "missing", hostname="host-1", labels={"site": "b"}, config_path=config
    )
    await relabelled.start()
    try:
        host = await capi_client.get(INFRA, "ByoHost", "host-1", "default")
        assert host["metadata"]["labels"] == {"site": "b"}
        assert condition(host, "K8sNodeBootstrapSucceeded")["reason"] == "WaitingForMachineRefToBeAssigned"
    finally:
        await relabelled.stop()


async def _claim_by_hand(client: KubeClient, host: str, role: str) -> None:
    """Do what the ByoMachine controller does, without a cluster."""
    value = cloud_config(role, {}, cluster="c9", version="v1.30.2", endpoint="10.0.0.9:6443")  # type: ignore[arg-type]
    await client.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{host}-data", "namespace": "default"},
            "type": "cluster.x-k8s.io/secret",
            "data": {"value": base64.b64encode(value.encode()).decode()},
        }
    )
    await client.patch(
        INFRA,
        "ByoHost",
        host,
        "default",
        {
            "metadata": {"labels": {"cluster.x-k8s.io/cluster-name": "c9"}},
            "spec": {"bootstrapSecret": {"kind": "Secret", "namespace": "default", "name": f"{host}-data"}},
        },
    )
    await client.patch(
        INFRA,
        "ByoHost",
        host,
        "default",
        {
            "status": {
                "machineRef": {"apiVersion": INFRA, "kind": "ByoMachine", "name": f"{host}-bm", "namespace": "default"}
            }
        },
        subresource="status",
    )


async def _release_by_hand(client: KubeClient, host: str) -> dict[str, Any]:
    """Do what the ByoMachine controller does when the ByoMachine goes; wait until the agent freed the host."""
    await client.patch(
        INFRA,
        "ByoHost",
        host,
        "default",
        {"metadata": {"annotations": {"byoh.infrastructure.cluster.x-k8s.io/unregistering": ""}}},
    )
    found = await wait_for(
        client,
        INFRA,
        "ByoHost",
        host,
        lambda o: (
            not dig(o, "metadata", "annotations")
            and not (dig(o, "metadata", "labels") or {}).get("cluster.x-k8s.io/cluster-name")
        ),
    )
    return dict(found or {})


async def test_agent_bootstraps_on_claim_and_releases_without_reset(
    capi_sim: CapiSimulators, fake_hosts: Hosts, capi_client: KubeClient, byoh_client: KubeClient
) -> None:
    calls: list[str] = []

    async def on_bootstrap(role: str, ignored: frozenset[str], version: str | None, control_plane: bool) -> str | None:
        calls.append(role)
        return "v1.30.2"

    async def on_reset() -> None:
        calls.append("reset")

    (agent,) = await fake_hosts(1, on_bootstrap=on_bootstrap, on_reset=on_reset)
    await _claim_by_hand(byoh_client, "host-1", "init")
    host = await wait_for(capi_client, INFRA, "ByoHost", "host-1", lambda o: is_true(o, "K8sNodeBootstrapSucceeded"))
    assert calls == ["init"]
    assert dig(host, "metadata", "annotations", "sandbox.focom-o2ims.io/kubelet-version") == "v1.30.2"

    host = await _release_by_hand(byoh_client, "host-1")
    assert not dig(host, "status", "machineRef") and not dig(host, "spec", "bootstrapSecret")
    assert condition(host, "K8sNodeBootstrapSucceeded")["reason"] == "WaitingForMachineRefToBeAssigned"
    # --skip-installation: upstream's cleanup (kubeadm reset) is gated on its own installer having run.
    assert calls == ["init"] and agent.history == ["init", "release"]


async def test_an_agent_that_installed_kubernetes_resets_on_release(
    capi_sim: CapiSimulators, capi_client: KubeClient, tmp_path: Path, byoh_client: KubeClient
) -> None:
    from sandbox.capi.fakehosts import issue_bootstrap_kubeconfig

    calls: list[str] = []

    async def on_reset() -> None:
        calls.append("reset")

    path = tmp_path / "bk"
    path.write_text(await issue_bootstrap_kubeconfig(capi_client, "bootstrap-host-9", "default"))
    agent = HostAgent(
        bootstrap_kubeconfig=path,
        hostname="host-9",
        config_path=tmp_path / "config",
        on_reset=on_reset,
        skip_installation=False,
    )
    await agent.start()
    try:
        await _claim_by_hand(byoh_client, "host-9", "join")
        await wait_for(capi_client, INFRA, "ByoHost", "host-9", lambda o: is_true(o, "K8sNodeBootstrapSucceeded"))
        await _release_by_hand(byoh_client, "host-9")
        assert calls == ["reset"] and agent.history == ["join", "reset", "release"]
    finally:
        await agent.stop()


async def test_failing_bootstrap_hook_marks_the_host(
    capi_sim: CapiSimulators, fake_hosts: Hosts, capi_client: KubeClient, byoh_client: KubeClient
) -> None:
    async def on_bootstrap(role: str, ignored: frozenset[str], version: str | None, control_plane: bool) -> str | None:
        raise RuntimeError(f"kubeadm {role} exited with status 1")

    await fake_hosts(1, on_bootstrap=on_bootstrap)
    await _claim_by_hand(byoh_client, "host-1", "join")
    host = await wait_for(
        capi_client,
        INFRA,
        "ByoHost",
        "host-1",
        lambda o: (condition(o, "K8sNodeBootstrapSucceeded") or {}).get("reason") == "CloudInitExecutionFailed",
    )
    cond = condition(host, "K8sNodeBootstrapSucceeded")
    assert cond["severity"] == "Error" and "kubeadm join exited" in cond["message"]


async def test_the_agents_of_a_process_share_connections_and_each_acts_as_itself(
    capi_sim: CapiSimulators, fake_hosts: Hosts, capi_client: KubeClient, byoh_client: KubeClient, tmp_path: Path
) -> None:
    agents = await fake_hosts(3)
    sessions = [agent.client._api.rest_client.pool_manager for agent in agents]
    assert len({id(session.connector) for session in sessions}) == 1
    assert all(not session.connector_owner for session in sessions)
    tokens = {
        yaml.safe_load((tmp_path / "hosts" / agent.hostname / ".byoh" / "config").read_text())["users"][0]["user"][
            "token"
        ]
        for agent in agents
    }
    assert len(tokens) == 3  # one credential per host, sent by its own client
    for agent in agents:  # each registered (the ByoHost webhook lets only a host's own agent write its status)
        host = await capi_client.get(INFRA, "ByoHost", agent.hostname, "default")
        assert condition(host, "K8sNodeBootstrapSucceeded")["reason"] == "WaitingForMachineRefToBeAssigned"
    await _claim_by_hand(byoh_client, "host-2", "join")
    await wait_for(capi_client, INFRA, "ByoHost", "host-2", lambda o: is_true(o, "K8sNodeBootstrapSucceeded"))
    assert [agent.history for agent in agents] == [[], ["join"], []]

    shared = sessions[0].connector
    await agents[0].stop()
    assert not shared.closed  # still used by the others
    for agent in agents[1:]:
        await agent.stop()
    assert shared.closed


@pytest.mark.parametrize("role", ["init", "join"])
def test_cloud_config_role_round_trip(role: str) -> None:
    from sandbox.capi.bootstrapdata import role_of

    data = cloud_config(
        role,
        {"preKubeadmCommands": ["echo pre"], "files": [{"path": "/x", "content": "y"}]},  # type: ignore[arg-type]
        cluster="c",
        version="v1.30.2",
        endpoint="1.2.3.4:6443",
    )
    assert data.startswith("## template: jinja\n#cloud-config\n")
    assert role_of(data) == role
    doc = yaml.safe_load(data)
    assert doc["runcmd"][0] == "echo pre"
    assert doc["write_files"][0]["path"] == "/x"


@pytest.mark.parametrize("role", ["init", "join"])
def test_the_agent_reads_the_ignored_preflight_errors(role: str) -> None:
    from sandbox.capi.bootstrapdata import ignored_preflight_errors

    registration = {"ignorePreflightErrors": ["DirAvailable--etc-kubernetes-manifests", "Swap"]}
    spec = {
        "initConfiguration": {"nodeRegistration": registration},
        "joinConfiguration": {"nodeRegistration": registration},
    }
    data = cloud_config(role, spec, cluster="c", version="v1.30.2", endpoint="1.2.3.4:6443")  # type: ignore[arg-type]
    assert ignored_preflight_errors(data) == {"DirAvailable--etc-kubernetes-manifests", "Swap"}
    assert ignored_preflight_errors(cloud_config(role, {}, cluster="c", version=None, endpoint="e")) == frozenset()  # type: ignore[arg-type]
