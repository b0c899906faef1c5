"""An adapter that hits a fault nobody anticipated: the fault shows itself and its retries are bounded.

The Kubernetes adapter classifies a failure it does not recognise as ``UnexpectedError``,
chained to the original (``raise classify(exc) from exc``). The bus logs every such fault at
error level with the original traceback, counts it in ``o2_unexpected_faults_total``, retries
the message ``unexpected_retries`` times and then terminates it with one ``message.failed``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from shared.bus import Bus, MessageContext
from shared.errors import TemporaryError, UnexpectedError
from shared.kube import KubeClient
from shared.messages import Envelope
from shared.payloads import MessageFailed
from shared.subjects import hostprep_event, hostprep_job
from tests.integration.bus.support import failed_events, job, pr_id, spec, wait_settled, wait_until

_KUBECONFIG: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True}}],
    "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
    "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
    "current-context": "c",
}


def _deep_inside_the_client(*_args: Any, **_kwargs: Any) -> Any:
    """Stands for a bug below the adapter: a fault no classifier knows."""
    raise LookupError("the response had no 'kind' where the client expected one")


async def _buggy_call_api(*args: Any, **kwargs: Any) -> Any:
    return _deep_inside_the_client(*args, **kwargs)


@pytest.fixture
async def client(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[KubeClient]:
    async with await KubeClient.from_kubeconfig_dict(_KUBECONFIG) as c:
        monkeypatch.setattr(c._api, "call_api", _buggy_call_api)
        yield c


async def test_the_adapter_chains_the_original_fault(client: KubeClient) -> None:
    with pytest.raises(UnexpectedError) as info:
        await client.server_version()
    assert info.value.reason == "Unexpected"
    assert isinstance(info.value.__cause__, LookupError)


async def test_an_unexpected_adapter_fault_is_logged_counted_bounded_and_reported(bus: Bus, client: KubeClient) -> None:
    calls: list[int] = []

    async def handler(env: Envelope, ctx: MessageContext) -> None:
        calls.append(ctx.deliveries)
        await client.server_version()

    buggy = spec("buggy", retry_delay=0.01, unexpected_retries=2, max_deliver=10)
    with capture_logs() as logs:
        await bus.consumer(buggy, handler).start()
        sent = await bus.emit(hostprep_job(pr_id("pr-bug")), job(pr_id("pr-bug")))
        await wait_until(lambda: len(calls) >= 3)
        await wait_settled(bus, "buggy")

    # Bounded: the first delivery and two retries, then terminated (max_deliver would allow 10).
    assert calls == [1, 2, 3]
    failed = await failed_events(bus, hostprep_event(pr_id("pr-bug")))
    assert len(failed) == 1
    payload = failed[0].payload
    assert isinstance(payload, MessageFailed)
    assert payload.reason == "Unexpected" and payload.deliveries == 3 and payload.message_id == str(sent.id)
    assert "LookupError" in payload.error

    # Every fault is logged at error level, with the original traceback chained below the adapter's.
    handled = [e for e in logs if e["event"] == "message_handled" and e.get("consumer") == "buggy"]
    assert [e["log_level"] for e in handled] == ["error"] * 3
    assert [e["outcome"] for e in handled] == ["nak", "nak", "term"]
    rendered = structlog.processors.format_exc_info(None, "error", dict(handled[0]))["exception"]
    assert "_deep_inside_the_client" in rendered
    assert "LookupError: the response had no 'kind'" in rendered
    assert "The above exception was the direct cause of the following exception" in rendered
    assert "UnexpectedError" in rendered
    assert all(e["exception"] == "LookupError" and e["reason"] == "Unexpected" for e in handled)

    # Counted where an alert can see it.
    count = bus.metrics.registry.get_sample_value(
        "o2_unexpected_faults_total", {"consumer": "buggy", "exception": "LookupError"}
    )
    assert count == 3.0 == _unexpected_faults(bus, "buggy")
    assert b"o2_unexpected_faults_total" in bus.metrics.render()


async def test_a_planned_retry_stays_routine(bus: Bus) -> None:
    """A ``TemporaryError`` raised on purpose is neither counted as unexpected nor logged as an error.

    The retries are logged at info; the success at debug (one line per message would be most of a
    service's log, and its CPU: the transitions a message causes are what the services log at info).
    """
    calls: list[int] = []
    done = asyncio.Event()

    async def handler(env: Envelope, ctx: MessageContext) -> None:
        calls.append(ctx.deliveries)
        if ctx.deliveries < 3:
            raise TemporaryError("not yet", delay=0.01, reason="NotYetDue")
        done.set()

    with capture_logs() as logs:
        await bus.consumer(spec("planned", unexpected_retries=0), handler).start()
        await bus.emit(hostprep_job(pr_id("pr-plan")), job(pr_id("pr-plan")))
        await asyncio.wait_for(done.wait(), 30)
        await wait_settled(bus, "planned")
    assert calls == [1, 2, 3]
    handled = [e for e in logs if e["event"] == "message_handled" and e.get("consumer") == "planned"]
    assert [(e["outcome"], e["log_level"]) for e in handled] == [("nak", "info"), ("nak", "info"), ("ack", "debug")]
    assert _unexpected_faults(bus, "planned") == 0


def _unexpected_faults(bus: Bus, consumer: str) -> float:
    return sum(
        sample.value
        for metric in bus.metrics.registry.collect()
        if metric.name == "o2_unexpected_faults"
        for sample in metric.samples
        if sample.name == "o2_unexpected_faults_total" and sample.labels.get("consumer") == consumer
    )
