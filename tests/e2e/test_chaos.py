"""Chaos on the whole system: kill -9 services (and restart NATS) while clusters are being provisioned.

A plan of kills is played against the progress of the run (every few o2ims transitions, the next target is
SIGKILLed and the supervisor restarts it; once in the middle NATS itself restarts on its file store). Then
every invariant of ``tests.e2e.invariants`` must hold: all clusters fulfilled and the request Synced, no host
changed twice, no object created twice, no lease leaked, nothing left unacknowledged.

In ``make test``: 6 clusters with one kill of each service and a NATS restart; 4 clusters with two replicas
of every service. The 30-cluster runs (each service killed three times) need ``O2_E2E_SLOW=1``.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tests.e2e import invariants
from tests.e2e.harness import SERVICES, Stack, StackOptions, eventually
from tests.e2e.invariants import run_problems
from tests.e2e.objects import CLUSTER_LABEL, ObjectRecorder

pytestmark = pytest.mark.e2e
#: The 30-cluster runs: left out of a run unless ``O2_E2E_SLOW=1`` (``make test-slow``), see ``tests/conftest.py``.
slow = pytest.mark.slow
SEED = int(os.environ.get("O2_CHAOS_SEED", "20261129"))
NATS = "nats"


def slow_stages(hosts: int) -> dict[str, dict[str, object]]:
    """Stages that last a moment, so that kills land inside them: each host's first apt-get update takes 1 s."""
    slow = {"kind": "slow_command", "pattern": "apt-get .*update", "delay": 1.0, "times": 1}
    return {f"host-{i + 1:03d}": slow for i in range(hosts)}


def plan(rounds: int, replicas: int, rng: random.Random) -> list[str]:
    """Every service ``rounds`` times in random order (a random replica each time), NATS once in the middle."""
    targets: list[str] = []
    for _ in range(rounds):
        names = list(SERVICES)
        rng.shuffle(names)
        targets += [n if (r := rng.randrange(replicas)) == 0 else f"{n}-{r + 1}" for n in names]
    targets.insert(len(targets) // 2, NATS)
    return targets


async def play(stack: Stack, name: str, targets: list[str], every: int, timeout: float) -> list[str]:
    """Submit ``name`` for every cluster and act on ``targets`` as the run progresses; returns what was done."""
    await stack.submit(name, allClusters=True)
    done: list[str] = []
    for i, target in enumerate(targets):
        mark = (i + 1) * every

        async def due(mark: int = mark) -> str | None:
            rec = await stack.fpr(name)
            if rec and rec.get("phase") in ("Synced", "Failed"):
                return "over"
            return "due" if stack.transitions >= mark else None

        if await eventually(due, timeout, f"{mark} transitions", wake=stack.changed) == "over":
            break
        if target == NATS:
            await stack.restart_nats()
        else:
            await stack.kill(target)
        done.append(target)
    await stack.settled(name, timeout)
    return done


async def chaos(
    tmp_path: Path, *, clusters: int, targets: list[str], replicas: int, every: int, timeout: float
) -> None:
    options = StackOptions(
        clusters=clusters, replicas=replicas, faults=slow_stages(clusters * 3), capi={"node_ready_delay": 1.0}
    )
    async with Stack(tmp_path / "stack", options) as stack:
        done = await play(stack, "chaos", targets, every, timeout)
        problems = await run_problems(stack, {"chaos": {}})
        assert problems == [], f"seed {SEED}, actions {done}:\n" + "\n".join(problems)
        assert done == targets, f"seed {SEED}: the run ended before the plan did: {done} of {targets}"
        for name in stack.services:
            # Every restart is one of ours: no service died on its own (e.g. when NATS went away).
            assert stack.child(name).restarts == done.count(name), f"{name} exited on its own"
            assert await stack.ready(name), f"{name} not ready after the run"


#: The short runs use a fixed order that keeps them short: capi_renderer goes first, before it holds a job
#: (a job held by a killed renderer waits for its 60 s ack_wait), hostprep and focom early (15 s and 30 s).
#: The 30-cluster runs take those costs at random.
SHORT_PLAN = ["capi_renderer", "hostprep", "focom", NATS, "status_watcher", "o2ims"]
SHORT_PLAN_REPLICAS = ["capi_renderer-2", "hostprep-2", "focom-2", NATS, "status_watcher", "o2ims"]


async def test_kill_each_service_and_restart_nats_6_clusters(tmp_path: Path) -> None:
    await chaos(tmp_path, clusters=6, targets=SHORT_PLAN, replicas=1, every=3, timeout=90)


async def test_two_replicas_of_every_service_under_kills_4_clusters(tmp_path: Path) -> None:
    await chaos(tmp_path, clusters=4, targets=SHORT_PLAN_REPLICAS, replicas=2, every=2, timeout=90)


@slow
@pytest.mark.timeout(900)
async def test_chaos_30_clusters(tmp_path: Path) -> None:
    await chaos(tmp_path, clusters=30, targets=plan(3, 1, random.Random(SEED)), replicas=1, every=8, timeout=400)


@slow
@pytest.mark.timeout(900)
async def test_chaos_30_clusters_two_replicas(tmp_path: Path) -> None:
    await chaos(tmp_path, clusters=30, targets=plan(3, 2, random.Random(SEED)), replicas=2, every=8, timeout=400)


class FakeRecords:
    """Just the records the invariant checks read, broken on purpose."""

    def __init__(self, tmp_path: Path) -> None:
        self.recorder = ObjectRecorder.__new__(ObjectRecorder)
        self.recorder.uids = {("Cluster", "default", "c001"): {"uid-1", "uid-2"}}
        self.recorder.labels = {("Machine", "default", f"m{i}"): {CLUSTER_LABEL: "c001"} for i in range(3)}
        self.state = {
            "log": [{"command": "printf x >> /etc/hosts", "changed": True, "source": "ssh"}] * 2,
            "kubeadm_runs": [{"action": "init", "ok": True}, {"action": "reset", "ok": True}],
            "services": {"byoh-hostagent": {"active": "active", "start_count": 2, "restart_count": 0}},
            "packages": {"kubelet": {"version": "1.29.0-1.1"}},
            "holds": [],
        }

    def host_state(self, host_id: str) -> dict[str, object]:
        return self.state

    def host_file(self, host_id: str, path: str) -> str:
        return "127.0.1.1 node-001\n127.0.1.1 node-001\n"

    async def leases(self) -> dict[str, str]:
        return {"host-001": "pr-1", "host-009": "pr-gone"}


async def test_the_invariant_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    host = {"host_id": "host-001", "host_name": "node-001"}
    prs = {
        "pr-1": {
            "state": "fulfilled",
            "spec": {"name": "c001", "k8s_version": "v1.30.2", "control_plane": [host], "workers": []},
        }
    }
    records = FakeRecords(tmp_path)
    hosts = "\n".join(invariants.host_problems(records, prs))
    for what in ("changed twice", "kubeadm runs", "started once", "/etc/hosts names node-001 2 times", "kubelet"):
        assert what in hosts, hosts
    objects = "\n".join(invariants.object_problems(records, prs))
    assert "Cluster default/c001 created 2 times" in objects and "3 Machines ever created for 1 hosts" in objects
    leases = "\n".join(await invariants.lease_problems(records, prs))
    assert "lease of host-009 leaked: owner pr-gone is absent" in leases
    assert invariants.outcome_problems(
        "x", {"phase": "Synced", "children": {"c001": {"state": "fulfilled"}}}, {"c001": ["host-001"]}
    )
