"""How a host's step fails for good: ``StepFailed`` names the step, the reason, the exit code and the
last stderr lines, and the helpers here build it from a failed command or upload. The runner ends
the host at once on it (no retry) and reports it in the host's outcome.
"""

from __future__ import annotations

from services.hostprep.ssh import CommandResult
from shared.errors import PermanentError


class StepFailed(PermanentError):
    def __init__(
        self, step: str, message: str, *, reason: str, exit_code: int | None = None, stderr_tail: str | None = None
    ) -> None:
        super().__init__(message, reason=reason)
        self.step = step
        self.exit_code = exit_code
        self.stderr_tail = stderr_tail or None


def command_failed(step: str, result: CommandResult) -> StepFailed:
    """A recipe command exited non-zero: the message carries its last stderr line."""
    last_line = (result.stderr_tail(1) or "no error output").strip()
    return StepFailed(
        step,
        f"exit status {result.exit_status}: {last_line}",
        reason="CommandFailed",
        exit_code=result.exit_status,
        stderr_tail=result.stderr_tail(),
    )


def upload_failed(step: str, path: str, result: CommandResult) -> StepFailed:
    """Installing an uploaded file (binary or kubeconfig) at ``path`` failed on the host."""
    return StepFailed(
        step,
        f"installing {path} failed with exit status {result.exit_status}",
        reason="UploadFailed",
        exit_code=result.exit_status,
        stderr_tail=result.stderr_tail(),
    )
