"""On a real bus: a payload type no handler of the consumer takes is terminated with one ``message.failed``."""

from __future__ import annotations

from shared.bus import Bus, MessageContext
from shared.dispatch import dispatch
from shared.messages import Envelope
from shared.payloads import CapiJob, HostprepJob, MessageFailed
from shared.subjects import hostprep_event, hostprep_job
from tests.integration.bus.support import failed_events, job, pr_id, spec, wait_settled, wait_until
from tests.unit.shared.test_dispatch import SPEC


async def test_an_unexpected_payload_type_is_refused_once_and_the_consumer_goes_on(bus: Bus) -> None:
    jobs: list[str] = []

    async def on_job(j: HostprepJob, ctx: MessageContext) -> None:
        jobs.append(j.pr_id)

    await bus.consumer(spec("typed"), dispatch(on_job)).start()
    pr = "6d1f1c6e-3f6a-5b8e-9d55-000000000002"
    stray = Envelope.wrap(CapiJob(pr_id=pr, action="apply", spec=SPEC), source="test")
    await bus.publish(hostprep_job(pr), stray)
    await bus.emit(hostprep_job(pr_id("pr-typed")), job(pr_id("pr-typed")))
    await wait_until(lambda: jobs == [pr_id("pr-typed")])
    await wait_settled(bus, "typed")

    failed = await failed_events(bus, hostprep_event(pr))
    assert len(failed) == 1
    payload = failed[0].payload
    assert isinstance(payload, MessageFailed)
    assert payload.reason == "UnexpectedMessage" and payload.deliveries == 1
    assert payload.message_id == str(stray.id) and payload.message_type == "capi.job"
