"""The one handler shape: typed functions found by their payload annotation, unexpected types refused."""

from __future__ import annotations

from typing import Any

import pytest

from shared.bus import MessageContext
from shared.dispatch import dispatch, payload_types
from shared.errors import PermanentError
from shared.messages import Envelope
from shared.models import ClusterSpec, HostRef
from shared.payloads import CapiApplied, CapiFailed, CapiJob, MessageFailed, Payload

SPEC = ClusterSpec(
    name="c1",
    k8s_version="v1.30.2",
    vip="10.0.0.250",
    control_plane=(HostRef(host_id="h0", host_name="node-0", host_ip="10.0.0.10"),),
)
PR = "6d1f1c6e-3f6a-5b8e-9d55-000000000001"


async def on_job(job: CapiJob, ctx: MessageContext) -> None:
    ctx.published.append(("job", ctx.envelope))


async def on_answer(answer: CapiApplied | CapiFailed, ctx: MessageContext) -> None:
    ctx.published.append((answer.type, ctx.envelope))


def _ctx(payload: Payload) -> tuple[Envelope, MessageContext]:
    env = Envelope.wrap(payload, source="test")
    return env, MessageContext(bus=None, subject="s.t.pr", deliveries=1, consumer="c", envelope=env)  # type: ignore[arg-type]


def test_the_annotation_is_the_contract() -> None:
    assert payload_types(on_job) == (CapiJob,)
    assert payload_types(on_answer) == (CapiApplied, CapiFailed)


async def _envelope_level(env: Envelope, ctx: MessageContext) -> None: ...


async def _any_payload(p: Payload, ctx: MessageContext) -> None: ...


async def _unannotated(p, ctx):  # type: ignore[no-untyped-def]
    ...


async def _one_parameter(job: CapiJob) -> None: ...


@pytest.mark.parametrize("fn", [_envelope_level, _any_payload, _unannotated, _one_parameter])
def test_a_handler_that_names_no_payload_type_is_refused_at_registration(fn: Any) -> None:
    with pytest.raises(TypeError):
        dispatch(fn)


def test_one_type_one_function() -> None:
    async def also_applied(answer: CapiApplied, ctx: MessageContext) -> None: ...

    with pytest.raises(TypeError, match="CapiApplied"):
        dispatch(on_answer, also_applied)
    with pytest.raises(TypeError, match="both handled and ignored"):
        dispatch(on_job, ignore=(CapiJob,))


async def test_messages_go_to_the_function_for_their_type() -> None:
    route = dispatch(on_job, on_answer, ignore=(MessageFailed,))
    env, ctx = _ctx(CapiApplied(pr_id=PR, action="apply", objects=()))
    await route(env, ctx)
    assert ctx.published == [("capi.applied", env)]
    env, ctx = _ctx(CapiJob(pr_id=PR, action="apply", spec=SPEC))
    await route(env, ctx)
    assert ctx.published == [("job", env)]
    env, ctx = _ctx(MessageFailed(consumer="x", subject="a.b.c", reason="R", error="e", deliveries=1))
    await route(env, ctx)  # read but of no use here: acknowledged
    assert ctx.published == []


async def test_an_unexpected_type_is_refused_permanently() -> None:
    route = dispatch(on_job)
    env, ctx = _ctx(CapiApplied(pr_id=PR, action="apply", objects=()))
    with pytest.raises(PermanentError) as info:
        await route(env, ctx)
    assert info.value.reason == "UnexpectedMessage" and "capi.applied" in info.value.message
    assert ctx.published == []
