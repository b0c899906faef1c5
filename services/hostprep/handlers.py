"""The ``hostprep.jobs.<pr>`` handler: run the job's hosts concurrently, report progress, publish the result.

A job's deadline is ``occurred_at + job_timeout`` of the job message, so a redelivery (after a
restart) keeps the original deadline. Hosts run concurrently, bounded across all jobs by the
shared slot semaphore; each host is prepared by one job at a time in this process. Every host
step publishes a ``HostProgress`` and the job ends with one ``HostprepDone`` or
``HostprepFailed`` on ``hostprep.events.<pr>``. Ids are derived from the job message, so a
re-run after a crash re-publishes what JetStream already has (dropped as duplicates) and the
checks make finished steps no-ops. The bus heartbeats the message while the job runs.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from datetime import UTC, datetime

import structlog

from services.hostprep import domain
from services.hostprep.recipe import RecipeParams
from services.hostprep.runner import Deps, HostRunner
from shared.bus import MessageContext
from shared.errors import InputError
from shared.models import HostRef, normalize_version
from shared.payloads import HostprepJob, HostProgress
from shared.subjects import hostprep_event

log = structlog.get_logger(__name__)


class JobHandler:
    """Handles ``HostprepJob`` messages with the shared ``Deps`` of this process."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._host_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    def params(self, job: HostprepJob, host: HostRef) -> RecipeParams:
        s = self.deps.settings
        return RecipeParams(
            host=host,
            namespace=job.namespace,
            k8s_version=normalize_version(job.k8s_version),
            package_revision=s.k8s_package_revision,
            repo_base=s.k8s_repo_base,
            agent=self.deps.agent,
            agent_path=s.agent_install_path,
            apt_lock_timeout=s.apt_lock_timeout,
            purge_packages=job.purge_packages,
        )

    async def on_job(self, job: HostprepJob, ctx: MessageContext) -> None:
        env = ctx.envelope
        try:
            normalize_version(job.k8s_version)
        except ValueError as exc:
            raise InputError(str(exc), path="payload.k8s_version") from None
        elapsed = (datetime.now(UTC) - env.occurred_at).total_seconds()
        deadline = time.monotonic() + max(0.0, self.deps.settings.job_timeout - elapsed)
        hosts = list({h.host_id: h for h in job.hosts}.values())
        subject = hostprep_event(job.pr_id)
        started = time.monotonic()
        log.info("hostprep_job_started", pr_id=job.pr_id, action=job.action, hosts=len(hosts),
                 deadline_s=round(deadline - started, 1), deliveries=ctx.deliveries)

        async def one(host: HostRef) -> domain.HostOutcome:
            async def report(step: str, status: str, detail: str | None) -> None:
                progress = HostProgress(pr_id=job.pr_id, host_id=host.host_id, step=step, status=status,
                                        detail=detail)
                await ctx.publish(subject, progress, key=(host.host_id, step, status, detail))

            runner = HostRunner(self.deps, self.params(job, host), action=job.action, report=report,
                                deadline=deadline)
            async with self._host_locks[host.host_id]:
                return await runner.run()

        outcomes = await asyncio.gather(*(one(h) for h in hosts))
        result = domain.job_result(job, outcomes)
        await ctx.publish(subject, result, key="result")
        failed = [o.host_id for o in outcomes if not o.ok]
        log.info("hostprep_job_finished", pr_id=job.pr_id, action=job.action, result=result.type,
                 hosts=len(hosts), failed=failed, acted=sum(len(o.acted) for o in outcomes),
                 duration_s=round(time.monotonic() - started, 3))
