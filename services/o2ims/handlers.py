"""Message handlers of o2ims: message in, domain event, engine out.

Every consumer (requests, hostprep events, capi events, cluster status) uses the same thin
handler: turn the envelope into a state-machine event for one PR and let the engine decide,
write and publish. Messages that concern no PR (a cluster without the PR label, a payload type
this service does not act on) are acknowledged and dropped. The timer handler first checks the
deadline: not yet due means ``TemporaryError(delay)``, so the bus redelivers it when it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.o2ims.engine import PrEngine
from services.o2ims.events import event_from
from services.o2ims.rules.deadlines import timer_wait
from shared.bus import Handler, MessageContext
from shared.errors import InputError, TemporaryError
from shared.messages import Envelope
from shared.payloads import PrDeadline, PrRequest
from shared.subjects import last_token

#: A PR id is a KV key and a subject token (in practice a UUID).
_PR_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_=-]{0,127}$")


def _checked(pr_id: str) -> str:
    if not _PR_ID.fullmatch(pr_id):
        raise InputError(f"invalid PR id {pr_id!r}", path="payload.pr_id", reason="InvalidPrId")
    return pr_id


@dataclass(frozen=True)
class Handlers:
    on_message: Handler
    on_timer: Handler


def make_handlers(engine: PrEngine) -> Handlers:
    async def on_message(env: Envelope, ctx: MessageContext) -> None:
        found = event_from(env, last_token(ctx.subject), received_at=ctx.received_at)
        if found is None:
            return
        pr_id, event = found
        if isinstance(env.payload, PrRequest) and last_token(ctx.subject) != pr_id:
            raise InputError(
                f"request on {ctx.subject} names PR {pr_id!r}", path="payload.pr_id", reason="SubjectMismatch"
            )
        await engine.handle(_checked(pr_id), event)

    async def on_timer(env: Envelope, ctx: MessageContext) -> None:
        timer = env.payload
        if not isinstance(timer, PrDeadline):
            return
        pr_id = _checked(timer.pr_id)
        got = await engine.store.get(pr_id)
        wait = timer_wait(got[0] if got else None, timer, engine.clock())
        if wait is not None:
            raise TemporaryError(f"deadline of PR {pr_id} due in {wait:.1f}s", delay=wait, reason="NotYetDue")
        found = event_from(env, received_at=ctx.received_at)
        if found is not None:
            await engine.handle(pr_id, found[1])

    return Handlers(on_message=on_message, on_timer=on_timer)
