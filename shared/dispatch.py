"""Typed handlers: each message goes to the function written for its payload type.

Every consumer of every service has the same handler shape (as in FastStream)::

    async def on_job(job: HostprepJob, ctx: MessageContext) -> None: ...

The annotation of the first parameter is the contract: the payload type the function takes (or
a union of several). ``dispatch`` builds a consumer's message handler from such functions, and
``ServiceRuntime.consume`` is the only way a service registers one. A payload type that no
function of the consumer takes is refused here, in one place, the same way for every service:
``PermanentError`` (reason ``UnexpectedMessage``), so the bus terminates the message and
publishes one ``message.failed``. A consumer that reads a type it has no use for (a stream
shared with other readers) says so with ``ignore``; those are acknowledged and dropped.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from shared.bus import MessageContext
from shared.errors import PermanentError
from shared.messages import Envelope
from shared.payloads import Payload

#: ``async def on_x(payload: X, ctx: MessageContext) -> None`` (``X`` may be a union of payload types).
PayloadHandler = Callable[[Any, MessageContext], Awaitable[None]]


def payload_types(fn: PayloadHandler) -> tuple[type[Payload], ...]:
    """The payload types ``fn`` takes, read from the annotation of its first parameter."""
    params = list(inspect.signature(fn).parameters.values())
    if len(params) != 2:
        raise TypeError(f"{_name(fn)} must take (payload, ctx), not {len(params)} parameters")
    hints = typing.get_type_hints(fn)
    annotation = hints.get(params[0].name)
    if annotation is None:
        raise TypeError(f"{_name(fn)}: annotate {params[0].name!r} with the payload type it takes")
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    members = typing.get_args(annotation) if union else (annotation,)
    for member in members:
        if not (isinstance(member, type) and issubclass(member, Payload) and member is not Payload):
            raise TypeError(f"{_name(fn)}: {member!r} is not a payload type")
    return tuple(members)


class Dispatch:
    """One consumer's message handler: payload type → typed handler, unexpected types refused."""

    def __init__(self, routes: Mapping[type[Payload], PayloadHandler], ignored: frozenset[type[Payload]]) -> None:
        self.routes = dict(routes)
        self.ignored = ignored

    async def __call__(self, env: Envelope, ctx: MessageContext) -> None:
        handler = self.routes.get(type(env.payload))
        if handler is not None:
            await handler(env.payload, ctx)
        elif type(env.payload) not in self.ignored:
            raise PermanentError(f"{ctx.consumer} does not handle {env.type} messages", reason="UnexpectedMessage")


def dispatch(*handlers: PayloadHandler, ignore: Iterable[type[Payload]] = ()) -> Dispatch:
    """The message handler of a consumer served by ``handlers`` (one payload type, one function)."""
    routes: dict[type[Payload], PayloadHandler] = {}
    for fn in handlers:
        for cls in payload_types(fn):
            if cls in routes:
                raise TypeError(f"{cls.__name__} is taken by both {_name(routes[cls])} and {_name(fn)}")
            routes[cls] = fn
    ignored = frozenset(ignore)
    if both := ignored & routes.keys():
        raise TypeError(f"{sorted(c.__name__ for c in both)} are both handled and ignored")
    if not routes:
        raise TypeError("a consumer needs at least one handler")
    return Dispatch(routes, ignored)


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", repr(fn))
