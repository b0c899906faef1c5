"""Message handlers of o2ims: a typed function per consumer, the payload in, the engine out.

Each handler's parameter type is what its consumer carries: requests, hostprep's events, the
capi_renderer's events, the bus's reports of jobs it refused, cluster and ByoHost status and
timers. All of them turn the message into a state-machine event for one PR (a ByoHost's is the
PR holding the host's lease) and let the engine decide,
write and publish; a payload type a consumer does not take is refused by ``shared.dispatch``.
Messages that concern no PR (a cluster without the PR label) are acknowledged and dropped. The
timer handler first checks the deadline: not yet due means ``TemporaryError(delay)``, so the
bus redelivers it when it is.
"""

from __future__ import annotations

import re

from services.o2ims.engine import PrEngine
from services.o2ims.events import event_from
from services.o2ims.rules.deadlines import timer_wait
from shared.bus import MessageContext
from shared.dispatch import PayloadHandler
from shared.errors import InputError, TemporaryError
from shared.leases import QUARANTINE
from shared.payloads import (
    ByoHostSummary,
    CapiApplied,
    CapiDeleted,
    CapiFailed,
    ClusterSummary,
    ClusterTransition,
    HostprepDone,
    HostprepFailed,
    HostProgress,
    MessageFailed,
    PrDeadline,
    PrRequest,
)
from shared.subjects import (
    O2IMS_BYOHOST_STATUS_CONSUMER,
    O2IMS_CAPI_EVENTS_CONSUMER,
    O2IMS_CLUSTER_STATUS_CONSUMER,
    O2IMS_EVENTS_CONSUMER,
    O2IMS_REQUESTS_CONSUMER,
    O2IMS_TIMERS_CONSUMER,
    ConsumerSpec,
    last_token,
)

#: A PR id is a KV key and a subject token (in practice a UUID).
_PR_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_=-]{0,127}$")


def _checked(pr_id: str) -> str:
    if not _PR_ID.fullmatch(pr_id):
        raise InputError(f"invalid PR id {pr_id!r}", path="payload.pr_id", reason="InvalidPrId")
    return pr_id


class Handlers:
    """The handlers of o2ims's consumers, sharing one engine."""

    def __init__(self, engine: PrEngine) -> None:
        self.engine = engine

    def consumers(self) -> list[tuple[ConsumerSpec, tuple[PayloadHandler, ...]]]:
        """Each consumer with the handlers serving it (the one wiring, for the service and tests)."""
        return [
            (O2IMS_REQUESTS_CONSUMER, (self.on_request,)),
            (O2IMS_EVENTS_CONSUMER, (self.on_host_event, self.on_job_rejected)),
            (O2IMS_CAPI_EVENTS_CONSUMER, (self.on_capi_event, self.on_job_rejected)),
            (O2IMS_CLUSTER_STATUS_CONSUMER, (self.on_cluster_status,)),
            (O2IMS_BYOHOST_STATUS_CONSUMER, (self.on_byohost_status,)),
            (O2IMS_TIMERS_CONSUMER, (self.on_timer,)),
        ]

    async def on_request(self, request: PrRequest, ctx: MessageContext) -> None:
        if last_token(ctx.subject) != request.pr_id:
            raise InputError(
                f"request on {ctx.subject} names PR {request.pr_id!r}", path="payload.pr_id", reason="SubjectMismatch"
            )
        await self._decide(ctx)

    async def on_host_event(self, event: HostProgress | HostprepDone | HostprepFailed, ctx: MessageContext) -> None:
        await self._decide(ctx)

    async def on_capi_event(self, event: CapiApplied | CapiDeleted | CapiFailed, ctx: MessageContext) -> None:
        await self._decide(ctx)

    async def on_job_rejected(self, failed: MessageFailed, ctx: MessageContext) -> None:
        """The bus terminated a job we sent: the job failed (the PR is the failure subject's token)."""
        await self._decide(ctx)

    async def on_cluster_status(self, status: ClusterSummary | ClusterTransition, ctx: MessageContext) -> None:
        await self._decide(ctx)

    async def on_byohost_status(self, status: ByoHostSummary, ctx: MessageContext) -> None:
        """A host's ByoHost: it concerns the PR holding the host's lease (none: not ours to track)."""
        if not status.host_id:
            return  # not a host we prepared (no host-id label)
        owner = await self.engine.leases.owner_of(status.host_id)
        if owner is None or owner == QUARANTINE:
            return  # free, or out of every PR's hands
        await self._decide(ctx, lease_owner=owner)

    async def on_timer(self, timer: PrDeadline, ctx: MessageContext) -> None:
        pr_id = _checked(timer.pr_id)
        got = await self.engine.store.get(pr_id)
        wait = timer_wait(got[0] if got else None, timer, self.engine.clock())
        if wait is not None:
            raise TemporaryError(f"deadline of PR {pr_id} due in {wait:.1f}s", delay=wait, reason="NotYetDue")
        await self._decide(ctx)

    async def _decide(self, ctx: MessageContext, *, lease_owner: str | None = None) -> None:
        found = event_from(ctx.envelope, last_token(ctx.subject), received_at=ctx.received_at, lease_owner=lease_owner)
        if found is None:
            return
        pr_id, event = found
        await self.engine.handle(_checked(pr_id), event)
