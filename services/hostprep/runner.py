"""Runs one host's recipe: preflight, then each step's check and (only if needed) its action.

Temporary failures (connection refused or lost, timeouts, Kubernetes hiccups) retry the step with
backoff, up to ``max_step_attempts`` and within the job deadline; anything permanent (host key,
credentials, a failing command, a step that does not converge) ends the host at once. Every step
reports its progress; the outcome names the step, the exit code and the last stderr lines. Every
job first asks the management cluster what it may do with the host (the gate, before any SSH): a
live node it must not touch is refused; an upgrade of a host registered at the target already is
done. The steps that talk only to Kubernetes are in ``management.py``.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, assert_never

import structlog

from services.hostprep import domain, preflight, recipe, upgrade
from services.hostprep.bootstrap import IssuedKubeconfig
from services.hostprep.credentials import ResolvedHost
from services.hostprep.deps import Deps, Slot
from services.hostprep.domain import HostFacts, HostOutcome
from services.hostprep.failures import StepFailed, command_failed, upload_failed
from services.hostprep.hostlayout import AGENT_CONFIG, AGENT_UNIT_NAME, BOOTSTRAP_KUBECONFIG
from services.hostprep.management import GATE, ManagementSide
from services.hostprep.ssh import CommandResult, SshSession, privileged
from services.hostprep.steps import (
    BootstrapKubeconfig,
    ByoHostRegistered,
    ByoHostRemoved,
    Check,
    Fail,
    Op,
    Probe,
    RecipeParams,
    Run,
    StaleByoHostRemoved,
    Step,
    UnsafeValue,
    Upload,
    batch_probe,
    install_from_stdin,
    parse_batch,
    split_verify,
    with_verify,
)
from services.hostprep.teardown import teardown_steps
from shared.errors import PermanentError, ServiceError, classify
from shared.kinds import HostprepAction, HostStepStatus
from shared.models import HostRef

log = structlog.get_logger(__name__)

Report = Callable[[str, str, str | None], Awaitable[None]]
PREFLIGHT = "preflight"
CHECKS = "checks"
_IDENTITY, _KUBECONFIG, _BOOTSTRAP_PROBES = preflight.IDENTITY, preflight.KUBECONFIG, preflight.BOOTSTRAP_PROBES
Recipe = Callable[[RecipeParams, HostFacts], list[Step]]
#: The status a host reports when its job's recipe completed (a prepared host is ready to be claimed).
_FINAL_STATUS: dict[HostprepAction, HostStepStatus] = {"prepare": "ready", "teardown": "done", "upgrade": "ready"}


class HostRunner:
    def __init__(
        self,
        deps: Deps,
        params: RecipeParams,
        resolved: ResolvedHost,
        *,
        action: HostprepAction,
        report: Report,
        deadline: float,
    ) -> None:
        if params.host != resolved.ref:
            raise ValueError("the recipe must be built for the resolved host")
        self.deps = deps
        self.params = params
        self.resolved = resolved
        self.host: HostRef = params.host
        self.action = action
        self._report = report
        #: ``time.monotonic()`` by which the host must be finished.
        self.deadline = deadline
        self.current = "queued"
        self.acted: list[str] = []
        self._session: SshSession | None = None
        self._detail: str | None = None
        self._probed: dict[str, CommandResult] = {}
        #: The probes the preflight's command read with it (see ``preflight.py``).
        self._checked: preflight.Probes | None = None
        #: The bootstrap kubeconfig the step's action just issued, for its verifying check.
        self._issued: IssuedKubeconfig | None = None
        #: A step whose action changes what later probes read acted: probe the remaining steps again.
        self._stale = False
        self.mgmt = ManagementSide(deps, params, deadline)

    # -- the whole host ------------------------------------------------------------------------

    async def run(self) -> HostOutcome:
        slot = Slot(self.deps.slots)
        started = time.monotonic()
        try:
            async with asyncio.timeout(max(0.0, self.deadline - time.monotonic())):
                await slot.acquire()
                steps = await self._steps()
                for i, step in enumerate(steps):
                    if not step.uses_ssh:
                        await self._close()
                        slot.release()
                    elif self._stale:
                        self._stale = False
                        await self._retrying(CHECKS, functools.partial(self._probe_all, steps[i:]))
                    await self._retrying(step.name, functools.partial(self._step, step))
        except StepFailed as exc:
            await self._safe_report(exc.step, "failed", f"{exc.reason}: {exc.message}")
            log.warning(
                "host_failed",
                host_id=self.host.host_id,
                step=exc.step,
                reason=exc.reason,
                error=exc.message,
                exit_code=exc.exit_code,
            )
            failed = (exc.step, exc.reason, exc.message, exc.exit_code, exc.stderr_tail)
            return HostOutcome(self.host.host_id, False, *failed, tuple(self.acted))
        except TimeoutError:
            message = f"the job deadline passed while the host was at step {self.current}"
            await self._safe_report(self.current, "failed", f"JobDeadlineExceeded: {message}")
            return HostOutcome(
                self.host.host_id, False, self.current, "JobDeadlineExceeded", message, acted=tuple(self.acted)
            )
        finally:
            await self._close()
            slot.release()
        await self._safe_report(self.action, _FINAL_STATUS[self.action], self._detail)
        log.info(
            "host_finished",
            host_id=self.host.host_id,
            action=self.action,
            acted=self.acted,
            duration_s=round(time.monotonic() - started, 3),
        )
        return HostOutcome(self.host.host_id, True, acted=tuple(self.acted))

    async def _steps(self) -> list[Step]:
        if not await self._retrying(GATE, self._gate):
            return []
        try:
            match self.action:
                case "teardown":
                    steps = teardown_steps(self.params)  # no preflight: a host is torn down whatever it became
                case "prepare" | "upgrade":
                    build = recipe.prepare_steps if self.action == "prepare" else upgrade.upgrade_steps
                    facts = await self._retrying(PREFLIGHT, functools.partial(self._preflight, build))
                    steps = build(self.params, facts)
                case _:
                    assert_never(self.action)
        except UnsafeValue as exc:  # a recipe refused a value the facts or the job gave it
            raise StepFailed(PREFLIGHT, exc.message, reason=exc.reason) from None
        if self._checked != preflight.probes_of(steps):  # not read with the preflight (see preflight.py)
            await self._retrying(CHECKS, functools.partial(self._probe_all, steps))
        return steps

    async def _gate(self) -> bool:
        """Whether the host's recipe runs: a live node it must not touch fails the host here, before any
        command runs on it; an upgrade of a host registered at the target already is done."""
        if self.deps.byohosts is None and self.action != "upgrade":
            return True  # no management cluster: the host stops at its first Kubernetes step
        verdict, why = await self.mgmt.gate_verdict(self.action)
        match verdict:
            case "claimed":
                raise StepFailed(GATE, why, reason="ByoHostClaimed")
            case "done" | "go" if self.action != "upgrade":
                return True  # every step checks for itself
            case "done":
                self._detail = why
                await self._safe_report(GATE, "skipped", why)
                return False
            case "go":
                await self._safe_report(GATE, "done", why)
                return True
            case _:
                assert_never(verdict)

    async def _probe_all(self, steps: list[Step]) -> None:
        """Every step's probe in one round trip; each answer is used once, for the step's first check."""
        self._probed = parse_batch((await self._run(batch_probe(preflight.probes_of(steps)))).stdout)

    async def _probe(self, key: str, command: str) -> CommandResult:
        """The batched answer for ``key`` if still unused, else a fresh run of ``command``."""
        found = self._probed.pop(key, None)
        return found if found is not None else await self._run(command)

    async def _retrying(self, name: str, attempt_fn: Callable[[], Awaitable[Any]]) -> Any:
        s = self.deps.settings
        self.current = name
        attempt = 0
        while True:
            attempt += 1
            try:
                return await attempt_fn()
            except StepFailed:
                raise
            except Exception as exc:
                err = classify(exc)
                if not isinstance(exc, ServiceError):
                    log.error("host_step_error", host_id=self.host.host_id, step=name, exc_info=exc)
                if isinstance(err, PermanentError):
                    raise StepFailed(name, err.message, reason=err.reason) from None
                await self._close()
                delay = domain.backoff(attempt, initial=s.retry_initial_delay, maximum=s.retry_max_delay)
                if attempt >= s.max_step_attempts or time.monotonic() + delay >= self.deadline:
                    raise StepFailed(
                        name, f"{err.message} (gave up after {attempt} attempt(s))", reason=err.reason
                    ) from None
                log.info(
                    "host_step_retry",
                    host_id=self.host.host_id,
                    step=name,
                    reason=err.reason,
                    attempt=attempt,
                    delay_s=delay,
                )
                await self._safe_report(name, "checking", f"retry {attempt + 1} in {delay:g}s after {err.reason}")
                await asyncio.sleep(delay)  # backoff before the next attempt

    # -- SSH -----------------------------------------------------------------------------------

    async def _ssh(self) -> SshSession:
        if self._session is None:
            self._session = await self.deps.connector.open(self.resolved)
        return self._session

    async def _close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def _run(self, command: str, *, stdin: bytes | None = None) -> CommandResult:
        session = await self._ssh()
        return await session.run(command, timeout=self.deps.settings.command_timeout, stdin=stdin)

    # -- steps ---------------------------------------------------------------------------------

    async def _preflight(self, build: Recipe) -> HostFacts:
        """The host's facts, judged; the checks of the recipe they are expected to give are read in the same
        command (as root), kept for the steps if the real recipe turns out to probe the same."""
        session = await self._ssh()
        probe = recipe.preflight_probe(sudo_check=not session.is_root)
        try:
            probes = preflight.probes_of(build(self.params, preflight.expected_facts(self.host.host_name)))
        except UnsafeValue:
            probes = []  # the real recipe will say why; its checks are read after the preflight
        if probes:
            probe = preflight.with_checks(probe, privileged(batch_probe(probes), self.host.ssh_user))
        answered = await session.run(probe, timeout=self.deps.settings.command_timeout, root=False)
        result, checks = preflight.split(answered)
        if checks is not None:
            self._probed, self._checked = parse_batch(checks), probes
        facts = domain.parse_preflight(result.stdout)
        problems = domain.fact_problems(facts, min_free_bytes=int(self.deps.settings.min_free_disk_gib * domain.GIB))
        if not session.is_root and not result.ok:
            problems.append(f"{session.target.username} cannot run sudo without a password (sudo -n true failed)")
        if facts.hostname != self.host.host_name:
            # The host would register (ByoHost, Node) under a name the inventory does not know: another
            # machine answered at this address, or the inventory is wrong. Either way, stop here.
            problems.append(
                f"the host calls itself {facts.hostname[:80]!r}, the inventory names it "
                f"{self.host.host_name!r} (host_name)"
            )
        if problems:
            raise StepFailed(
                PREFLIGHT, "; ".join(problems), reason="PreflightFailed", stderr_tail=domain.tail(result.stderr)
            )
        await self._safe_report(PREFLIGHT, "done", facts.summary())
        return facts

    async def _step(self, step: Step) -> None:
        forced = [name for name in step.rerun_after if name in self.acted]
        if step.check is not None and not forced and await self._check(step, step.check):
            registered = isinstance(step.check, ByoHostRegistered)
            log.debug("host_step_skipped", host_id=self.host.host_id, step=step.name)
            await self._safe_report(step.name, "skipped", self._detail if registered else "already in place")
            return
        log.debug("host_step_acting", host_id=self.host.host_id, step=step.name, forced_by=forced or None)
        await self._safe_report(step.name, "running", step.description or None)
        self._probed.pop(step.name, None)
        last: CommandResult | None = None
        verified: bool | None = None
        for i, op in enumerate(step.action):
            if isinstance(op, Run) and isinstance(step.check, Probe) and step.verify and i == len(step.action) - 1:
                # The last script and the verifying probe share one round trip.
                last = await self._run_op(step, with_verify(op.command, step.check.command))
                probe = split_verify(last)
                verified = probe is not None and step.check.holds(probe)
            else:
                last = await self._op(step, op) or last
        if verified is None and step.verify and step.check is not None:
            verified = await self._check(step, step.check)
        if verified is False:
            raise StepFailed(
                step.name,
                "the check still fails after the action ran",
                reason="NotConverged",
                exit_code=last.exit_status if last else None,
                stderr_tail=last.stderr_tail() if last else None,
            )
        self.acted.append(step.name)
        self._stale = self._stale or step.stales_probes
        await self._safe_report(step.name, "done", self._detail if step.name == "registration" else None)

    async def _check(self, step: Step, check: Check) -> bool:
        p = self.params
        if isinstance(check, Probe):
            return check.holds(await self._probe(step.name, check.command))
        if isinstance(check, BootstrapKubeconfig):
            identity = await self._probe(_IDENTITY, f"test -s {AGENT_CONFIG}")
            uploaded = self._probed.pop(_KUBECONFIG, None)
            if identity.ok:
                return True  # the agent has its own identity; the bootstrap kubeconfig is no longer read
            # Verifying its own action, the step compares with what it just issued; otherwise with the API's.
            issued, self._issued = self._issued, None
            issued = issued or await self.mgmt.bootstrap.current(p.namespace, self.host.host_id)
            if issued is None:
                return False
            found = uploaded or await self._run(f"sha256sum {BOOTSTRAP_KUBECONFIG}")
            return found.ok and found.stdout.split()[:1] == [issued.sha256]
        if isinstance(check, ByoHostRegistered):
            registered = await self.mgmt.registered()
            if registered is not None:
                self._detail = domain.byohost_state(registered).describe()
            return registered is not None
        if isinstance(check, StaleByoHostRemoved):
            return await self.mgmt.stale_gone()
        if isinstance(check, ByoHostRemoved):
            return await self.mgmt.removed()
        assert_never(check)

    async def _op(self, step: Step, op: Op) -> CommandResult | None:
        if isinstance(op, Run):
            return await self._run_op(step, op.command)
        if isinstance(op, Upload):
            data = op.content if op.content is not None else self.deps.agent_binary
            if data is None:
                raise StepFailed(step.name, "no agent binary loaded", reason="NoAgentBinary")
            return await self._upload(step, op.path, data, op.mode, sha256=op.sha256)
        if isinstance(op, Fail):
            raise StepFailed(step.name, op.message, reason=op.reason)
        if isinstance(op, BootstrapKubeconfig):
            self._issued = await self.mgmt.bootstrap.issue(self.params.namespace, self.host.host_id)
            return await self._install_kubeconfig(step, self._issued.data.get_secret_value())
        if isinstance(op, ByoHostRegistered):
            await self._await_registration(step)
            return None
        if isinstance(op, StaleByoHostRemoved | ByoHostRemoved):
            await self.mgmt.remove(stale_only=isinstance(op, StaleByoHostRemoved))
            return None
        assert_never(op)

    async def _run_op(self, step: Step, command: str) -> CommandResult:
        result = await self._run(command)
        if not result.ok and split_verify(result) is None:
            raise command_failed(step.name, result)
        return result

    async def _upload(
        self, step: Step, path: str, data: bytes, mode: int, *, sha256: str | None = None
    ) -> CommandResult:
        session = await self._ssh()
        result = await session.put_file(
            path, data, mode=mode, timeout=self.deps.settings.command_timeout, sha256=sha256
        )
        if not result.ok:
            raise upload_failed(step.name, path, result)
        return result

    async def _install_kubeconfig(self, step: Step, data: bytes) -> CommandResult:
        """Install the bootstrap kubeconfig (0600) from stdin and read back what the step's check reads, in one
        round trip: the answers are kept for the verifying check."""
        installed = install_from_stdin(BOOTSTRAP_KUBECONFIG, 0o600)
        result = await self._run(with_verify(installed, batch_probe(_BOOTSTRAP_PROBES)), stdin=data)
        probed = split_verify(result)
        if probed is None:
            raise upload_failed(step.name, BOOTSTRAP_KUBECONFIG, result)
        self._probed.update(parse_batch(probed.stdout))
        return result

    async def _await_registration(self, step: Step) -> None:
        found, timeout = await self.mgmt.wait_registered()
        if found is not None:
            self._detail = domain.byohost_state(found).describe()
            return
        journal = ""
        try:
            result = await self._run(
                f"systemctl is-active {AGENT_UNIT_NAME}; journalctl -u {AGENT_UNIT_NAME} -n 20 --no-pager"
            )
            journal = domain.tail(result.stdout, 20)
        except ServiceError as exc:
            journal = f"(agent journal unavailable: {exc.reason})"
        finally:
            await self._close()
        raise StepFailed(
            step.name,
            f"no ByoHost labelled with host id {self.host.host_id} and version {self.params.version} appeared "
            f"in namespace {self.params.namespace} within {timeout:g}s of starting the agent",
            reason="RegistrationTimeout",
            stderr_tail=journal,
        )

    async def _safe_report(self, step: str, status: str, detail: str | None) -> None:
        try:
            await self._report(step, status, detail)
        except Exception as exc:
            # Progress is informative; losing one event must not fail the host.
            log.warning(
                "progress_not_published", host_id=self.host.host_id, step=step, status=status, error=type(exc).__name__
            )
