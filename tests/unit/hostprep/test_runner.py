"""The host runner against an in-memory host: check before act, retries, permanent failures, forced reruns, deadline."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretBytes

from services.hostprep import recipe
from services.hostprep.bootstrap import IssuedKubeconfig
from services.hostprep.credentials import CredentialStore, HostCredentials, ResolvedHost, TrustSources
from services.hostprep.deps import Deps
from services.hostprep.domain import MARK, parse_preflight
from services.hostprep.runner import HostRunner
from services.hostprep.settings import HostprepSettings
from services.hostprep.ssh import CommandResult
from services.hostprep.steps import VERIFY_MARK, AgentSource, Probe, RecipeParams, Run, Step
from shared.errors import PermanentError, TemporaryError
from shared.kinds import HostprepAction
from shared.models import HostRef
from shared.objects import HOST_ID_LABEL, K8S_VERSION_LABEL

PREFLIGHT = f"\n{MARK}\n".join(
    [
        "ID=ubuntu\nVERSION_ID=22.04\nPRETTY_NAME=Ubuntu",
        "x86_64",
        "5.15.0",
        "cgroup2fs",
        "default via 1.1.1.1 dev e0",
        "node-1",
        "Filesystem 1K-blocks Used Available Use% Mounted\n/dev/sda 1 1 99999999 1% /",
    ]
)
HOST = HostRef(host_id="h1", host_name="node-1", host_ip="10.0.0.1")
AGENT = AgentSource(pushed=True, sha256="ab" * 32)
PARAMS = RecipeParams(host=HOST, namespace="default", k8s_version="v1.30.2", agent=AGENT)
RESOLVED = ResolvedHost(HOST, HostCredentials("h1", None, Path("/keys/h1"), None), TrustSources((), None))


REAL_PREPARE_STEPS = recipe.prepare_steps


def exit_status_steps(params: RecipeParams, facts: Any) -> list[Step]:
    """The real recipe with every probe judged by its exit status (the fake host answers 0 or 1)."""
    return [
        dataclasses.replace(s, check=Probe(s.check.command)) if isinstance(s.check, Probe) else s
        for s in REAL_PREPARE_STEPS(params, facts)
    ]


@pytest.fixture(autouse=True)
def _simple_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recipe, "prepare_steps", exit_status_steps)


class FakeHost:
    """Knows which step each command belongs to; a step's check holds once its action ran."""

    def __init__(self) -> None:
        from services.hostprep.domain import parse_preflight

        self.steps = exit_status_steps(PARAMS, parse_preflight(PREFLIGHT))
        self.done: set[str] = set()
        self.ran: list[tuple[str, str]] = []
        self.uploads: list[str] = []
        self.fail: dict[tuple[str, str], Callable[[], CommandResult]] = {}
        self.connects = 0
        self.connect_error: Exception | None = None
        #: Whether the agent wrote its own identity (then the bootstrap kubeconfig is not needed).
        self.identity = False
        self.issued = 0
        self.batches = 0
        self.preflights_with_checks = 0
        #: Every command the runner sent, with the bytes it wrote to the command's stdin.
        self.stdins: list[tuple[str, bytes | None]] = []
        #: What a step's action changes besides its own check (step name -> effect).
        self.effects: dict[str, Callable[[], None]] = {}

    def batch(self, command: str) -> CommandResult:
        self.batches += 1
        out = []
        lines = command.split("\n")
        for probe, marker in zip(lines[0::2], lines[1::2], strict=True):
            result = self.run(probe)
            if isinstance(result, BaseException):
                raise result
            out.append(result.stdout + marker.removeprefix("echo ").replace("$?", str(result.exit_status)) + "\n")
        return CommandResult(0, "".join(out), "")

    def step_of(self, command: str) -> tuple[str, str]:
        for step in self.steps:
            if isinstance(step.check, Probe) and step.check.command == command:
                return step.name, "check"
            if any(isinstance(op, Run) and op.command == command for op in step.action):
                return step.name, "action"
        return "other", command

    def run(self, command: str) -> CommandResult:
        if command.startswith("cat /etc/os-release") and "@@o2ims-preflight-end" in command:
            # The preflight with the checks read in the same command (services.hostprep.preflight).
            self.preflights_with_checks += 1
            checks = self.batch(command.split("\n", 2)[2])
            return CommandResult(0, f"{PREFLIGHT}\n@@o2ims-preflight-end:0@@\n{checks.stdout}", "")
        if "@@o2ims-probe:" in command:
            return self.batch(command)
        if VERIFY_MARK in command:
            action, _, probe = command.partition(f"\nset +e\necho {VERIFY_MARK}\n")
            done = self.run(action)
            if isinstance(done, BaseException) or not done.ok:
                return done
            checked = self.run(probe)
            return CommandResult(
                checked.exit_status,
                f"{done.stdout}{VERIFY_MARK}\n{checked.stdout}",
                done.stderr + checked.stderr,
            )
        if command.startswith("cat /etc/os-release"):
            return CommandResult(0, PREFLIGHT, "")
        if command.startswith("install -D"):
            return CommandResult(0, "", "")
        name, kind = self.step_of(command)
        self.ran.append((name, kind))
        if (name, kind) in self.fail:
            return self.fail[(name, kind)]()
        if kind == "check":
            return CommandResult(0 if name in self.done else 1, "", "")
        if kind == "action":
            self.done.add(name)
            self.effects.get(name, lambda: None)()
            return CommandResult(0, "", "")
        if command.startswith("test -s /root/.byoh/config"):
            return CommandResult(0 if self.identity else 1, "", "")
        if command.startswith("sha256sum /etc/byoh"):
            return CommandResult(0, "aa  file", "") if "bootstrap-kubeconfig" in self.done else CommandResult(1, "", "")
        return CommandResult(0, "", "")


class FakeSession:
    def __init__(self, host: FakeHost) -> None:
        self.host = host
        self.is_root = True

    async def run(
        self, command: str, *, timeout: float, stdin: bytes | None = None, root: bool = True
    ) -> CommandResult:
        self.host.stdins.append((command, stdin))
        result = self.host.run(command)
        if isinstance(result, BaseException):
            raise result
        return result

    async def put_file(
        self, path: str, data: bytes, *, mode: int, timeout: float, sha256: str | None = None
    ) -> CommandResult:
        self.host.uploads.append(path)
        if path == PARAMS.agent_path:
            self.host.done.add("agent-binary")
        return CommandResult(0, "", "")

    async def close(self) -> None:
        return None


class FakeConnector:
    def __init__(self, host: FakeHost) -> None:
        self.host = host

    async def open(self, target: Any) -> FakeSession:
        self.host.connects += 1
        if self.host.connect_error is not None:
            raise self.host.connect_error
        return FakeSession(self.host)


class FakeBootstrap:
    def __init__(self, host: FakeHost) -> None:
        self.host = host

    async def current(self, namespace: str, host_id: str) -> IssuedKubeconfig | None:
        return IssuedKubeconfig("bkc", SecretBytes(b"kubeconfig"), "aa", 1.0) if self.host.issued else None

    async def issue(self, namespace: str, host_id: str) -> IssuedKubeconfig:
        self.host.issued += 1
        self.host.done.add("bootstrap-kubeconfig")
        return IssuedKubeconfig("bkc", SecretBytes(b"kubeconfig"), "aa", 0.0)

    async def exists(self, namespace: str, host_id: str) -> bool:
        return False


class FakeIndex:
    def __init__(self, host: FakeHost) -> None:
        self.host = host

    async def present(self, namespace: str, host_id: str, timeout: float) -> list[dict[str, Any]]:
        labels = {HOST_ID_LABEL: host_id, K8S_VERSION_LABEL: "v1.30.2"}
        return [{"metadata": {"name": "node-1", "labels": labels}}] if "agent-service" in self.host.done else []

    async def wait(self, namespace: str, host_id: str, done: Any, timeout: float) -> list[dict[str, Any]] | None:
        live = await self.present(namespace, host_id, timeout)
        return live if done(live) else None

    async def fetch(self, namespace: str, host_id: str) -> list[dict[str, Any]]:
        return await self.present(namespace, host_id, 0.0)


def runner(
    host: FakeHost,
    reports: list[tuple[str, str]],
    *,
    deadline: float = 30.0,
    action: HostprepAction = "prepare",
    index: Any = None,
    **settings: Any,
) -> HostRunner:
    s = HostprepSettings(retry_initial_delay=0.01, retry_max_delay=0.02, max_step_attempts=3, **settings)
    deps = Deps(
        settings=s,
        connector=FakeConnector(host),
        slots=asyncio.Semaphore(1),  # type: ignore[arg-type]
        store=CredentialStore(s),
        bootstrap=FakeBootstrap(host),
        byohosts=index or FakeIndex(host),
        agent=AGENT,
        agent_binary=b"agent",
    )

    async def report(step: str, status: str, detail: str | None) -> None:
        reports.append((step, status))

    return HostRunner(deps, PARAMS, RESOLVED, action=action, report=report, deadline=time.monotonic() + deadline)


async def test_a_fresh_host_runs_every_action_then_a_second_run_only_checks() -> None:
    host, reports = FakeHost(), []
    outcome = await runner(host, reports).run()
    assert outcome.ok, outcome
    # No stale ByoHost to remove; the ByoHost was there at once.
    assert outcome.acted == tuple(s.name for s in host.steps[:-1] if s.name != "stale-byohost")
    assert ("prepare", "ready") in reports
    again: list[tuple[str, str]] = []
    host.ran.clear()
    batches = host.batches
    second = await runner(host, again).run()
    assert second.ok and second.acted == ()
    assert host.batches == batches + 1 and not [r for r in host.ran if r[1] == "action"], "one batched probe"
    assert host.preflights_with_checks == 2, "the checks were read with the preflight, in the same command"
    assert host.connects == 2 and {status for step, status in again if step not in ("preflight", "prepare")} == {
        "skipped"
    }


async def test_checks_read_with_the_preflight_are_read_again_when_the_real_recipe_probes_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def arch_dependent(params: RecipeParams, facts: Any) -> list[Step]:
        # A check that reads something named after the host's architecture, known only from the preflight.
        extra = Step("arch-file", Probe(f"test -e /etc/{facts.arch or 'unknown'}"), (Run("touch arch"),))
        return [extra, *exit_status_steps(params, facts)]

    monkeypatch.setattr(recipe, "prepare_steps", arch_dependent)
    host, reports = FakeHost(), []
    host.steps = arch_dependent(PARAMS, parse_preflight(PREFLIGHT))
    outcome = await runner(host, reports).run()
    assert outcome.ok, outcome
    # Checked with the preflight, again with the real recipe, and the kubeconfig read back once installed.
    assert host.preflights_with_checks == 1 and host.batches == 3
    assert ("arch-file", "check") in host.ran, "the real recipe's check (test -e /etc/amd64) was read"


async def test_a_temporary_failure_is_retried_with_backoff() -> None:
    host, reports = FakeHost(), []
    calls = iter([TemporaryError("lost", reason="ConnectionLost"), CommandResult(0, "", "")])

    def flaky() -> Any:
        value = next(calls)
        if isinstance(value, CommandResult):
            host.done.add("containerd")
        return value

    host.fail[("containerd", "action")] = flaky
    outcome = await runner(host, reports).run()
    assert outcome.ok and ("containerd", "checking") in reports
    assert host.connects >= 2, "the session was re-opened for the retry"


async def test_temporary_failures_give_up_after_the_attempts() -> None:
    host, reports = FakeHost(), []
    host.fail[("sysctl", "action")] = lambda: TemporaryError("timed out", reason="CommandTimeout")  # type: ignore[assignment,return-value]
    outcome = await runner(host, reports).run()
    assert not outcome.ok and outcome.step == "sysctl" and outcome.reason == "CommandTimeout"
    assert "gave up after 3 attempt(s)" in (outcome.message or "")
    assert host.ran.count(("sysctl", "action")) == 3
    # the first check came from the batch, each retry checks again before acting
    assert host.ran.count(("sysctl", "check")) == 3


async def test_a_permanent_connect_error_is_not_retried() -> None:
    host, reports = FakeHost(), []
    host.connect_error = PermanentError("refused key", reason="AuthFailed")
    outcome = await runner(host, reports).run()
    assert (outcome.ok, outcome.step, outcome.reason, host.connects) == (False, "preflight", "AuthFailed", 1)
    assert ("preflight", "failed") in reports


async def test_a_failing_command_reports_exit_code_and_stderr() -> None:
    host, reports = FakeHost(), []
    host.fail[("base-packages", "action")] = lambda: CommandResult(100, "", "Reading...\nE: Unable to fetch\n")
    outcome = await runner(host, reports).run()
    assert (outcome.step, outcome.reason, outcome.exit_code) == ("base-packages", "CommandFailed", 100)
    assert outcome.stderr_tail == "Reading...\nE: Unable to fetch" and "E: Unable to fetch" in (outcome.message or "")
    assert ("base-packages", "checking") not in reports, "a failing command is not retried"


async def test_an_action_that_does_not_converge_fails_the_step() -> None:
    host, reports = FakeHost(), []
    host.fail[("swap", "action")] = lambda: CommandResult(0, "", "swapoff: ignored\n")
    outcome = await runner(host, reports).run()
    assert (outcome.step, outcome.reason) == ("swap", "NotConverged") and outcome.stderr_tail == "swapoff: ignored"


async def test_a_new_bootstrap_kubeconfig_restarts_the_agent() -> None:
    host, reports = FakeHost(), []
    assert (await runner(host, reports).run()).ok
    # The agent never registered (no identity yet) and the kubeconfig on the host is stale.
    host.done.discard("bootstrap-kubeconfig")
    host.done.add("agent-service")
    host.ran.clear()
    forced = await runner(host, []).run()
    assert forced.ok and forced.acted == ("bootstrap-kubeconfig", "agent-service")
    assert ("agent-service", "action") in host.ran


async def test_the_bootstrap_kubeconfig_travels_on_stdin_never_on_a_command_line() -> None:
    secret = b"users: [{user: {token: s3cr3t-bootstrap-token}}]"

    class Issuing(FakeBootstrap):
        async def issue(self, namespace: str, host_id: str) -> IssuedKubeconfig:
            issued = await super().issue(namespace, host_id)
            return dataclasses.replace(issued, data=SecretBytes(secret))

    host, reports = FakeHost(), []
    r = runner(host, reports)
    r.deps.bootstrap = Issuing(host)  # type: ignore[assignment]
    assert (await r.run()).ok
    fed = [(command, data) for command, data in host.stdins if data is not None]
    assert [data for _command, data in fed] == [secret], "the issued kubeconfig, written once"
    assert "cat > /etc/byoh/.o2ims-upload/bootstrap-kubeconfig.conf" in fed[0][0] and "chmod 0600" in fed[0][0]
    assert "mkdir -p -m 0700 /etc/byoh/.o2ims-upload" in fed[0][0]
    assert not [command for command, _data in host.stdins if "s3cr3t" in command]


async def test_the_job_deadline_ends_a_hung_host_at_its_step() -> None:
    host, reports = FakeHost(), []

    async def hang(command: str, **_: Any) -> CommandResult:
        if "systemctl restart containerd" in command:
            await asyncio.sleep(3600)
        return host.run(command)

    session = FakeSession(host)
    session.run = hang  # type: ignore[method-assign]
    r = runner(host, reports, deadline=0.5)
    r.deps.connector.open = lambda target: _ready(session)  # type: ignore[method-assign]
    outcome = await r.run()
    assert (outcome.ok, outcome.step, outcome.reason) == (False, "containerd", "JobDeadlineExceeded")


async def _ready(session: FakeSession) -> FakeSession:
    return session
