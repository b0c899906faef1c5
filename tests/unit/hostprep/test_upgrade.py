"""The upgrade recipe as data, the gate's verdict from a host's ByoHosts, and the gate in the runner (no SSH)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from services.hostprep import recipe, upgrade
from services.hostprep.domain import parse_preflight
from services.hostprep.management import GATE, gate_verdict
from services.hostprep.steps import ByoHostRegistered, ByoHostRemoved, Probe, Run, Step
from services.hostprep.teardown import reset_steps
from services.hostprep.upgrade import upgrade_steps
from shared.errors import PermanentError
from shared.objects import HOST_ID_LABEL, K8S_VERSION_LABEL
from tests.unit.hostprep.test_recipe import FACTS, PREPARE, commands, params
from tests.unit.hostprep.test_runner import PARAMS, PREFLIGHT, FakeHost, runner

RESET = ["byohost-removed", "agent-stopped", "byohost-absent", "kubeadm-reset", "node-state", "agent-config"]


def steps() -> dict[str, Step]:
    return {s.name: s for s in upgrade_steps(params(), FACTS)}


def test_upgrade_resets_removes_the_byohost_then_prepares_at_the_target() -> None:
    order = [s.name for s in upgrade_steps(params(), FACTS)]
    assert order == RESET + PREPARE
    by_name = steps()
    # The ByoHost goes first, while the host is untouched (a claim since the gate fails it there), and is
    # checked again once the agent stopped: no Machine can claim the host being reset.
    for name in ("byohost-removed", "byohost-absent"):
        removed = by_name[name]
        assert isinstance(removed.check, ByoHostRemoved) and removed.action == (ByoHostRemoved(),)
        assert removed.uses_ssh, "the host's SSH work continues after it"
    # The reset is teardown's own (same checks and commands).
    for step in reset_steps():
        assert (by_name[step.name].check, by_name[step.name].action) == (step.check, step.action)
    # Whatever a reset step changed, the prepare steps probe afresh (the unit, the agent identity).
    assert {s.name for s in by_name.values() if s.stales_probes} == set(RESET) - {"byohost-removed", "byohost-absent"}
    assert not any(s.stales_probes for s in recipe.prepare_steps(params(), FACTS))
    assert isinstance(by_name["registration"].check, ByoHostRegistered)
    assert by_name["registration"].uses_ssh is False


def test_the_prepare_half_is_at_the_target_version() -> None:
    text = "\n".join(commands(upgrade_steps(params(k8s_version="v1.31.4"), FACTS)))
    assert "kubelet=1.31.4-1.1" in text and "kubeadm=1.31.4-1.1" in text and "kubectl=1.31.4-1.1" in text
    assert "--allow-change-held-packages" in text and "apt-mark hold kubelet kubeadm kubectl" in text
    assert "https://pkgs.k8s.io/core:/stable:/v1.31/deb/" in text
    assert "--label o2ims.oran.org/k8s-version=v1.31.4" in text
    assert "kubeadm reset -f" in text
    packages = steps()["kubernetes-packages"]
    assert isinstance(packages.check, Probe) and isinstance(packages.action[0], Run)


def byohost(version: str | None, *, claimed: bool = False, name: str = "node-7") -> dict[str, Any]:
    labels = {HOST_ID_LABEL: "h7", **({K8S_VERSION_LABEL: version} if version else {})}
    status: dict[str, Any] = {
        "conditions": [
            {"type": "K8sNodeBootstrapSucceeded", "status": "False", "reason": "WaitingForMachineRefToBeAssigned"}
        ]
    }
    if claimed:
        status = {"machineRef": {"kind": "ByoMachine", "name": "c1-md-0-abc", "namespace": "default"}}
    return {"metadata": {"name": name, "labels": labels, "uid": "u-1"}, "status": status}


def releasing(version: str) -> dict[str, Any]:
    obj = byohost(version)
    obj["metadata"]["labels"]["cluster.x-k8s.io/cluster-name"] = "c1"
    return obj


@pytest.mark.parametrize(
    ("live", "verdict", "says"),
    [
        ([byohost("v1.31.4")], "done", "registered at v1.31.4 and free"),
        # Claimed by a new Machine once upgraded: still done, never touched again.
        ([byohost("v1.31.4", claimed=True)], "done", "claimed by c1-md-0-abc"),
        ([byohost("v1.30.2", claimed=True)], "claimed", "a claimed host is a live node"),
        ([byohost(None, claimed=True)], "claimed", "without a version label, claimed by c1-md-0-abc"),
        # Being released: the agent cleared machineRef, not yet the cluster label.
        ([releasing("v1.30.2")], "claimed", "claimed by cluster c1"),
        ([byohost("v1.30.2")], "go", "registered at v1.30.2 and free; upgrade at v1.31.4"),
        ([byohost(None)], "go", "without a version label"),
        ([], "go", "no ByoHost registered"),
    ],
)
def test_the_upgrade_gate_from_the_hosts_byohosts(live: list[dict[str, Any]], verdict: str, says: str) -> None:
    got, why = gate_verdict(live, "v1.31.4", "upgrade")
    assert got == verdict and says in why, why


def test_prepare_and_teardown_never_touch_a_node_they_must_not() -> None:
    node_at_job = [byohost("v1.31.4", claimed=True)]
    node_elsewhere = [byohost("v1.30.2", claimed=True)]
    free = [byohost("v1.30.2")]
    # Re-preparing a node at its own version only checks; at another version it is refused.
    assert gate_verdict(node_at_job, "v1.31.4", "prepare")[0] == "go"
    assert gate_verdict(node_elsewhere, "v1.31.4", "prepare")[0] == "claimed"
    assert gate_verdict(free, "v1.31.4", "prepare")[0] == "go"
    # A node is never reset, whatever its version.
    assert gate_verdict(node_at_job, "v1.31.4", "teardown")[0] == "claimed"
    assert gate_verdict(node_elsewhere, "v1.31.4", "teardown")[0] == "claimed"
    assert gate_verdict(free, "v1.31.4", "teardown")[0] == "go"


class Index:
    """ByoHosts as the watch's cache has them and as the API has them (the same unless told); any delete is
    a failure of the test."""

    def __init__(self, live: list[dict[str, Any]], api: list[dict[str, Any]] | None = None) -> None:
        self.live = live
        self.api = live if api is None else api
        self.fetches = 0

    async def present(self, namespace: str, host_id: str, timeout: float) -> list[dict[str, Any]]:
        return self.live

    async def fetch(self, namespace: str, host_id: str) -> list[dict[str, Any]]:
        self.fetches += 1
        return self.api

    async def delete_unclaimed(self, *args: Any) -> list[str]:
        raise AssertionError("the gate never deletes")


async def test_a_claimed_host_fails_at_the_gate_without_a_single_ssh_command() -> None:
    host, reports = FakeHost(), []
    # The runner's params are at v1.30.2; the host is still a node at v1.29.6.
    index = Index([byohost("v1.29.6", claimed=True)])
    outcome = await runner(host, reports, action="upgrade", index=index).run()
    assert (outcome.ok, outcome.step, outcome.reason) == (False, GATE, "ByoHostClaimed")
    assert "c1-md-0-abc" in (outcome.message or "") and outcome.acted == ()
    assert host.connects == 0 and host.ran == []
    assert reports == [(GATE, "failed")]
    assert index.fetches == 1, "the refusal was confirmed by the API"


async def test_a_claim_seen_only_by_a_lagging_cache_is_checked_against_the_api() -> None:
    """o2ims saw the host released; the watch's cache may not have yet: the API decides."""
    host, reports = FakeHost(), []
    lagging = Index([byohost("v1.29.6", claimed=True)], api=[byohost("v1.29.6")])
    r = runner(host, reports, action="upgrade", index=lagging)
    r._preflight = _stop_after_the_gate  # type: ignore[method-assign]
    outcome = await r.run()
    assert lagging.fetches == 1 and reports[0] == (GATE, "done")
    assert (outcome.step, outcome.reason) == ("preflight", "StopHere"), "past the gate"


async def _stop_after_the_gate(_recipe: Any) -> Any:
    raise PermanentError("the test stops here", reason="StopHere")


async def test_a_host_registered_at_the_target_is_done_without_ssh() -> None:
    host, reports = FakeHost(), []
    # The runner's params are at v1.30.2: the host's ByoHost is registered at that version.
    outcome = await runner(host, reports, action="upgrade", index=Index([byohost("v1.30.2")])).run()
    assert outcome.ok and outcome.acted == ()
    assert host.connects == 0 and host.batches == 0
    assert reports == [(GATE, "skipped"), ("upgrade", "ready")]


class Registering:
    """No ByoHost until the agent's unit is (re)started; then one registered at the runner's version."""

    def __init__(self, host: FakeHost) -> None:
        self.live: list[dict[str, Any]] = []
        host.effects["agent-service"] = lambda: self.live.append(byohost("v1.30.2"))

    async def present(self, namespace: str, host_id: str, timeout: float) -> list[dict[str, Any]]:
        return self.live

    async def wait(self, namespace: str, host_id: str, done: Any, timeout: float) -> list[dict[str, Any]] | None:
        return self.live if done(self.live) else None

    async def delete_unclaimed(self, *args: Any) -> list[str]:
        return []


async def test_once_a_reset_step_acted_the_later_steps_are_probed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    real = upgrade.upgrade_steps

    def exit_status(params: Any, facts: Any) -> list[Step]:
        return [
            dataclasses.replace(s, check=Probe(s.check.command)) if isinstance(s.check, Probe) else s
            for s in real(params, facts)
        ]

    monkeypatch.setattr(upgrade, "upgrade_steps", exit_status)
    host, reports = FakeHost(), []
    host.steps = exit_status(PARAMS, parse_preflight(PREFLIGHT))
    # The whole prepare recipe is in place, the unit included, but no ByoHost is registered (an agent that
    # never registered): the first batch of probes says agent-service holds and the agent has its identity.
    host.done = {name for name in PREPARE if name not in ("stale-byohost", "registration")}
    host.identity = True
    host.effects["agent-stopped"] = lambda: host.done.discard("agent-service")

    def forget_identity() -> None:
        host.identity = False
        host.done.discard("bootstrap-kubeconfig")

    host.effects["agent-config"] = forget_identity
    outcome = await runner(host, reports, action="upgrade", index=Registering(host)).run()
    assert outcome.ok, outcome
    # Without fresh probes the identity would pass on the answer taken before the reset: no new bootstrap
    # kubeconfig, and an agent without either could never register.
    assert outcome.acted == (
        "agent-stopped",
        "kubeadm-reset",
        "node-state",
        "agent-config",
        "bootstrap-kubeconfig",
        "agent-service",
    )  # registration: the fake agent registers at once
    # The first batch, one after each reset step that acted, and the one that reads the installed kubeconfig back.
    assert host.batches == 6
    assert reports[-1] == ("upgrade", "ready")
