"""The first round trip to a host: its facts and, in the same command, the checks of its recipe.

A recipe is built from the preflight's facts, but what its checks read does not depend on them: the
probes name files, packages and units, never the architecture, and the one fact they could use, the
hostname, must equal the inventory's ``host_name`` or the preflight fails. So the runner builds the
recipe once from the facts the host is expected to have, runs the preflight probe (as the login user:
it checks ``sudo -n`` for a non-root one) followed by that recipe's batched checks (as root), and, once
the real facts are known, uses those answers only if the real recipe probes exactly the same commands;
otherwise it probes again. The checks are read-only, so reading them before the facts are judged changes
nothing on a host the preflight then refuses.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.hostprep.domain import HostFacts
from services.hostprep.hostlayout import AGENT_CONFIG, BOOTSTRAP_KUBECONFIG
from services.hostprep.ssh import CommandResult
from services.hostprep.steps import BootstrapKubeconfig, Probe, Step

IDENTITY, KUBECONFIG = "@agent-identity", "@bootstrap-kubeconfig"
#: What the bootstrap-kubeconfig check reads on the host: the agent's own identity, the uploaded file's sha256.
BOOTSTRAP_PROBES = ((IDENTITY, f"test -s {AGENT_CONFIG}"), (KUBECONFIG, f"sha256sum {BOOTSTRAP_KUBECONFIG}"))
#: The line ending the preflight's part of the output, with the preflight's own exit status.
_END = "@@o2ims-preflight-end"

Probes = list[tuple[str, str]]


def probes_of(steps: Sequence[Step]) -> Probes:
    """Every probe the steps' checks read, keyed by step (and the bootstrap kubeconfig's own keys)."""
    probes = [(s.name, s.check.command) for s in steps if isinstance(s.check, Probe)]
    if any(isinstance(s.check, BootstrapKubeconfig) for s in steps):
        probes += BOOTSTRAP_PROBES
    return probes


def expected_facts(host_name: str) -> HostFacts:
    """The facts a host is taken to have before its preflight answered: only its name is known (and required)."""
    return HostFacts(
        os_id="",
        os_version="",
        os_pretty="",
        machine="",
        kernel="",
        cgroup_fs="",
        default_route="",
        hostname=host_name,
        free_bytes=None,
    )


def with_checks(preflight: str, checks: str) -> str:
    """The preflight script, a line with its exit status, then ``checks`` (already privileged as needed)."""
    return f"{preflight}\necho {_END}:$?@@\n{checks}"


def split(result: CommandResult) -> tuple[CommandResult, str | None]:
    """The preflight's own result (its exit status, not the checks') and the checks' output, if they ran."""
    lines = result.stdout.splitlines(keepends=True)
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(f"{_END}:") and stripped.endswith("@@"):
            code = stripped[len(_END) + 1 : -2]
            status = int(code) if code.isdigit() else result.exit_status
            return CommandResult(status, "".join(lines[:i]), result.stderr), "".join(lines[i + 1 :])
    return result, None
