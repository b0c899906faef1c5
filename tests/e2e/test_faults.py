"""Faults on the whole system: each broken cluster fails with the precise reason, the others finish.

One request for eight two-host clusters on the sandbox: four hosts have SSH faults (unreachable, wrong host
key, every credential refused, ``apt-get install`` failing), the simulated BYOH controller fails one host's
bootstrap, one control plane never initializes (o2ims's provisioning deadline is short here), and the
Kubernetes API emulator is killed and restarted while clusters are provisioning (every watch breaks). Each
failed cluster must be ``failed`` with a reason naming the host and the cause; the two healthy clusters
must be fulfilled; the invariants of ``tests.e2e.invariants`` hold for all of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Stack, StackOptions, eventually
from tests.e2e.invariants import run_problems

pytestmark = pytest.mark.e2e

FAULTS: dict[str, str | dict[str, Any]] = {
    "host-002": "unreachable",
    "host-004": "wrong_host_key",
    "host-006": "auth_failure",
    "host-008": {
        "kind": "command_failure",
        "pattern": "apt-get .*install",
        "exit_code": 100,
        "stderr": "E: Unable to fetch some archives",
    },
}
#: cluster -> words (case-insensitive) its reason and message must contain.
EXPECTED: dict[str, list[str]] = {
    "c001": ["host-002", "connection refused"],
    "c002": ["host-004", "host key"],
    "c003": ["host-006", "authentication failed"],
    "c004": ["host-008", "exit 100", "Unable to fetch some archives"],
    "c005": ["node-010", "CloudInitExecutionFailed"],
    "c006": ["ProvisioningTimedOut", "deadline"],
}
HEALTHY = ("c007", "c008")
#: Hosts of the clusters that get past host preparation (c005..c008).
REGISTERING = [f"host-{i:03d}" for i in range(9, 17)]
OPTIONS = StackOptions(
    clusters=8,
    hosts_per_cluster=2,
    faults=FAULTS,
    capi={
        "fail_bootstrap_hosts": ["node-010"],
        "never_initialize_clusters": ["c006"],
        "host_claim_delay": 3.0,
        "node_ready_delay": 1.0,
    },
    env={
        "o2ims": {"O2_O2IMS_PROVISIONING_DEADLINE": "40"},
        "hostprep": {"O2_HOSTPREP_MAX_STEP_ATTEMPTS": "2", "O2_HOSTPREP_RETRY_MAX_DELAY": "1"},
    },
)


async def test_each_fault_fails_its_cluster_precisely_and_the_others_finish(tmp_path: Path) -> None:
    async with Stack(tmp_path / "stack", OPTIONS) as stack:
        await stack.submit("faults", allClusters=True)

        async def provisioning() -> bool:
            children = ((await stack.fpr("faults")) or {}).get("children") or {}
            return all(children.get(c, {}).get("stage") == "provisioning" for c in HEALTHY) and all(
                "registered ByoHost" in " ".join(stack.host_state(h)["journal"].get("byoh-hostagent", []))
                for h in REGISTERING
            )

        # Mid-watch, once every agent that must register did: the sandbox's systemd does not restart an agent
        # whose registration the restart broke (the unit's Restart=always is not simulated).
        await eventually(provisioning, 90, "the healthy clusters to be provisioning", wake=stack.changed)
        await stack.restart_kubeapi()
        children = ((await stack.fpr("faults")) or {}).get("children") or {}
        assert all(children[c]["state"] == "progressing" for c in HEALTHY), "restarted too late to matter"
        rec = await stack.settled("faults", timeout=100)
        children = rec["children"]
        assert {n for n, c in children.items() if c["state"] == "fulfilled"} == set(HEALTHY), children
        problems = await run_problems(stack, {"faults": EXPECTED})
        assert problems == [], "\n".join(problems)
        for name in stack.services:
            assert stack.child(name).restarts == 0, f"{name} restarted"
            assert await stack.ready(name), f"{name} not ready"
