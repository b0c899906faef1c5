"""The ``hostprep.jobs.<pr>`` handler: resolve the job's hosts, run them, report progress, publish the result.

A job names hosts by id only; each host's address, login and keys come from hostprep's own
inventory, and an id it does not know fails that host. A job's deadline is ``job_timeout`` after
the bus received the job message (its stream timestamp, the same on a redelivery after a restart),
never after the ``occurred_at`` its sender wrote. Hosts run concurrently, bounded across all jobs by
the shared slot semaphore. One replica at a time works on a host: a host is claimed in the claims bucket
before its recipe runs (``claims.py``; within a process a lock per host orders the jobs first), so a job
the bus hands to a second replica while the first still runs it waits instead of acting twice; a host whose
claim could not be kept stops and the job goes back to the bus (``HostClaimLost``), except on the job's last
delivery, where that host fails instead: a job always ends with an outcome. Every host
step publishes a ``HostProgress`` and the job ends with one ``HostprepDone`` or ``HostprepFailed``
on ``hostprep.events.<pr>``. Ids are derived from the job message, so a re-run after a crash
re-publishes what JetStream already has (dropped as duplicates) and the checks make finished
steps no-ops. The bus heartbeats the message while the job runs.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from datetime import datetime

import structlog

from services.hostprep import domain
from services.hostprep.claims import HostClaimLost, HostClaims
from services.hostprep.credentials import ResolvedHost
from services.hostprep.deps import Deps
from services.hostprep.progress import HostFeed
from services.hostprep.runner import HostRunner, Report
from services.hostprep.steps import RecipeParams
from shared.bus import MessageContext
from shared.errors import PermanentError, classify
from shared.fields import printable
from shared.messages import utcnow
from shared.payloads import HostprepJob, HostProgress
from shared.subjects import HOSTPREP_JOBS_CONSUMER, hostprep_event

log = structlog.get_logger(__name__)

#: The step a host fails at when hostprep's inventory cannot resolve it.
INVENTORY_STEP = "inventory"
#: The step a host waits at while another replica holds its claim.
CLAIM_STEP = "claim"
#: The step a host fails at when an error outside its recipe stopped it on the job's last delivery.
JOB_STEP = "job"


def remaining(job_timeout: float, received_at: datetime, now: datetime) -> float:
    """Seconds left of a job received at ``received_at``: never more than ``job_timeout``, never negative."""
    elapsed = min(max(0.0, (now - received_at).total_seconds()), job_timeout)
    return job_timeout - elapsed


class JobHandler:
    """Handles ``HostprepJob`` messages with the shared ``Deps`` of this process."""

    def __init__(
        self, deps: Deps, claims: HostClaims, *, max_deliver: int = HOSTPREP_JOBS_CONSUMER.max_deliver
    ) -> None:
        self.deps = deps
        self.claims = claims
        #: The jobs consumer's deliveries of one message (<= 0: unbounded); the last one never hands a job back.
        self.max_deliver = max_deliver
        self._host_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    def params(self, job: HostprepJob, host: ResolvedHost) -> RecipeParams:
        s = self.deps.settings
        return RecipeParams(
            host=host.ref,
            namespace=job.namespace,
            k8s_version=job.k8s_version,
            package_revision=s.k8s_package_revision,
            repo_base=s.k8s_repo_base,
            agent=self.deps.agent,
            agent_path=s.agent_install_path,
            apt_lock_timeout=s.apt_lock_timeout,
            purge_packages=job.purge_packages,
        )

    async def on_job(self, job: HostprepJob, ctx: MessageContext) -> None:
        deadline = time.monotonic() + remaining(self.deps.settings.job_timeout, ctx.received_at, utcnow())
        host_ids = list(dict.fromkeys(job.hosts))
        subject = hostprep_event(job.pr_id)
        started = time.monotonic()
        log.info(
            "hostprep_job_started",
            pr_id=job.pr_id,
            action=job.action,
            hosts=len(host_ids),
            deadline_s=round(deadline - started, 1),
            deliveries=ctx.deliveries,
        )

        async def one(host_id: str) -> domain.HostOutcome:
            async def send(step: str, status: str, detail: str | None) -> None:
                # Details quote hosts' answers (facts, errors): foreign text is made printable.
                progress = HostProgress(
                    pr_id=job.pr_id,
                    host_id=host_id,
                    step=step,
                    status=status,
                    detail=printable(detail) if detail is not None else None,
                )
                await ctx.publish(subject, progress, key=(host_id, step, status, detail))

            feed = HostFeed(send, settle=self.deps.settings.progress_settle, outcome_step=job.action)
            try:
                outcome = await prepare(host_id, feed.report)
            except asyncio.CancelledError:
                feed.abandon()
                raise
            except Exception:
                await feed.close()  # what the host reported goes out before the job is handed back
                raise
            await feed.close()
            return outcome

        async def prepare(host_id: str, report: Report) -> domain.HostOutcome:
            try:
                resolved = await self.deps.store.resolve(host_id)
                params = self.params(job, resolved)
            except PermanentError as exc:
                log.warning("host_not_resolved", host_id=host_id, reason=exc.reason, error=exc.message)
                await report(INVENTORY_STEP, "failed", f"{exc.reason}: {exc.message}")
                return domain.HostOutcome(host_id, False, INVENTORY_STEP, exc.reason, exc.message)
            runner = HostRunner(self.deps, params, resolved, action=job.action, report=report, deadline=deadline)

            async def claim_report(status: str, detail: str) -> None:
                try:
                    await report(CLAIM_STEP, status, detail)
                except Exception as exc:  # progress is informative: losing it must not fail the host
                    log.warning("progress_not_published", host_id=host_id, step=CLAIM_STEP, error=type(exc).__name__)

            async def waiting(holder: str) -> None:
                await claim_report("checking", f"waiting for another hostprep replica: {holder}")

            async with self._host_locks[host_id]:
                claim = await self.claims.acquire(
                    host_id, pr_id=job.pr_id, action=job.action, deadline=deadline, on_wait=waiting
                )
                if claim is None:
                    message = "the job deadline passed while another hostprep replica held the host"
                    await claim_report("failed", f"JobDeadlineExceeded: {message}")
                    return domain.HostOutcome(host_id, False, CLAIM_STEP, "JobDeadlineExceeded", message)
                try:
                    return await claim.guard(runner.run())
                finally:
                    await claim.release()

        gathered = await asyncio.gather(*(one(h) for h in host_ids), return_exceptions=True)
        outcomes = self._settle(job, host_ids, gathered, last=0 < self.max_deliver <= ctx.deliveries)
        result = domain.job_result(job, outcomes)
        await ctx.publish(subject, result, key="result")
        failed = [o.host_id for o in outcomes if not o.ok]
        log.info(
            "hostprep_job_finished",
            pr_id=job.pr_id,
            action=job.action,
            result=result.type,
            hosts=len(host_ids),
            failed=failed,
            acted=sum(len(o.acted) for o in outcomes),
            duration_s=round(time.monotonic() - started, 3),
        )

    @staticmethod
    def _settle(
        job: HostprepJob, host_ids: list[str], gathered: list[domain.HostOutcome | BaseException], *, last: bool
    ) -> list[domain.HostOutcome]:
        """Each host's outcome; raises (the bus hands the job back) while a host stopped half-way and
        the job will be delivered again."""
        for other in gathered:
            if isinstance(other, BaseException) and not isinstance(other, Exception):
                raise other  # cancelled: the bus hands the job back
        errors = {h: o for h, o in zip(host_ids, gathered, strict=True) if isinstance(o, Exception)}
        if errors and not last:
            lost = [e for e in errors.values() if isinstance(e, HostClaimLost)]
            if len(lost) < len(errors):
                raise next(e for e in errors.values() if not isinstance(e, HostClaimLost))
            # No result for a job some of whose hosts stopped half-way: it comes back from the bus and resumes.
            log.warning("hostprep_job_handed_back", pr_id=job.pr_id, hosts=[e.host_id for e in lost])
            raise lost[0]
        for host_id, exc in errors.items():
            # The bus will not deliver the job again: the host fails, so the job still ends with an outcome.
            err = classify(exc)
            step = CLAIM_STEP if isinstance(exc, HostClaimLost) else JOB_STEP
            log.warning("host_failed_on_last_delivery", pr_id=job.pr_id, host_id=host_id, reason=err.reason)
            gathered[host_ids.index(host_id)] = domain.HostOutcome(host_id, False, step, err.reason, err.message)
        return [o for o in gathered if isinstance(o, domain.HostOutcome)]
