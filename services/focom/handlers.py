"""Message handlers of focom: message in, domain call, outcome out.

Not implemented yet: every message is refused with a permanent error, so the sender sees a
``message.failed`` event instead of a silent loss.
"""

from __future__ import annotations

from shared.bus import MessageContext
from shared.errors import PermanentError
from shared.messages import Envelope


async def not_implemented(env: Envelope, ctx: MessageContext) -> None:
    raise PermanentError(f"focom cannot handle {env.type} yet", reason="NotImplemented")
