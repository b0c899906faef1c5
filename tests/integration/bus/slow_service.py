"""A tiny service used by the graceful-shutdown test: its handler takes a while and leaves marks.

Run as ``python -m tests.integration.bus.slow_service``; ``SLOW_MARK_DIR`` receives one
``started-<pr>`` and one ``finished-<pr>`` file per handled message, ``SLOW_SECONDS`` is the
handler's duration.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from shared.bus import MessageContext
from shared.payloads import HostprepJob
from shared.runtime import ServiceRuntime, run_service
from shared.settings import ServiceSettings
from shared.subjects import ALL_HOSTPREP_JOBS, HOSTPREP, ConsumerSpec, hostprep_event

SPEC = ConsumerSpec("slow", HOSTPREP, (ALL_HOSTPREP_JOBS,), lambda _s, k: hostprep_event(k), ack_wait=3.0)


async def handler(job: HostprepJob, ctx: MessageContext) -> None:
    marks = Path(os.environ["SLOW_MARK_DIR"])
    pr = ctx.subject.rsplit(".", 1)[-1]
    (marks / f"started-{pr}").write_text(str(ctx.deliveries))
    await asyncio.sleep(float(os.environ.get("SLOW_SECONDS", "2")))  # simulated long work
    (marks / f"finished-{pr}").write_text(str(ctx.deliveries))


async def setup(runtime: ServiceRuntime[ServiceSettings]) -> None:
    runtime.consume(SPEC, handler)


if __name__ == "__main__":
    raise SystemExit(run_service("slow", ServiceSettings, setup))
