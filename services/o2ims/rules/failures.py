"""What a failure event says: the reason and message of a failed job, for conditions and status. Pure."""

from __future__ import annotations

from services.o2ims.transaction import Tx
from shared.payloads import CapiFailed, HostprepFailed, MessageFailed


def failure_of(tx: Tx) -> tuple[str, str, str | None, str | None]:
    """(reason, message, host, step) of a failed job, from the worker's event or the bus's."""
    p = tx.event.payload
    if isinstance(p, HostprepFailed):
        text = describe_failure(
            p.host_id, p.step, p.exit_code, p.message + (f"; {p.stderr_tail}" if p.stderr_tail else "")
        )
        return p.reason, text, p.host_id, p.step
    if isinstance(p, CapiFailed):
        return p.reason, p.message, None, None
    if isinstance(p, MessageFailed):
        return p.reason, f"the job was rejected by {p.consumer}: {p.error}", None, None
    return "Failed", "failed", None, None


def describe_failure(host_id: str | None, step: str | None, exit_code: int | None, detail: str) -> str:
    """``host h3 failed at step containerd (exit 100): …`` — what a failed host prep says."""
    parts = [f"host {host_id}" if host_id else "host preparation"]
    parts.append(f"failed at step {step}" if step else "failed")
    text = " ".join(parts)
    if exit_code is not None:
        text += f" (exit {exit_code})"
    return f"{text}: {detail}"[:1000] if detail else text
