"""A host's progress feed: routine transitions coalesce, urgent events go out at once and in order."""

from __future__ import annotations

import asyncio

import pytest

from services.hostprep.progress import HostFeed

Event = tuple[str, str, str | None]


class Sent:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.arrived = asyncio.Event()
        self.hold: asyncio.Event | None = None
        self.fail = False

    async def __call__(self, step: str, status: str, detail: str | None) -> None:
        if self.hold is not None:
            await self.hold.wait()
        if self.fail:
            raise ConnectionError("bus away")
        self.events.append((step, status, detail))
        self.arrived.set()

    async def wait(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.events) < count:
                self.arrived.clear()
                await self.arrived.wait()


async def test_without_settling_every_transition_goes_out_at_once_in_order() -> None:
    sent = Sent()
    feed = HostFeed(sent, settle=0, outcome_step="prepare")
    for event in [("preflight", "done", "facts"), ("swap", "running", None), ("swap", "done", None)]:
        await feed.report(*event)
    assert sent.events == [("preflight", "done", "facts"), ("swap", "running", None), ("swap", "done", None)]


async def test_quick_transitions_are_replaced_by_the_outcome() -> None:
    sent = Sent()
    feed = HostFeed(sent, settle=3600, outcome_step="prepare")
    await feed.report("preflight", "done", "facts")
    await feed.report("swap", "running", None)
    await feed.report("swap", "done", None)
    assert sent.events == []
    await feed.report("prepare", "ready", "registered")
    await feed.close()
    assert sent.events == [("prepare", "ready", "registered")]


@pytest.mark.parametrize(
    ("step", "status"), [("swap", "failed"), ("base-packages", "checking"), ("claim", "checking"), ("teardown", "done")]
)
async def test_failures_retries_waits_and_the_outcome_are_urgent(step: str, status: str) -> None:
    sent = Sent()
    feed = HostFeed(sent, settle=3600, outcome_step="teardown")
    await feed.report("agent-stopped", "running", None)
    await feed.report(step, status, "why")
    assert sent.events == [(step, status, "why")]


async def test_a_settled_transition_is_published_without_an_urgent_one() -> None:
    sent = Sent()
    feed = HostFeed(sent, settle=0.01, outcome_step="prepare")
    await feed.report("swap", "running", None)
    await feed.report("base-packages", "running", "socat")
    await sent.wait(1)
    await feed.close()
    assert sent.events == [("base-packages", "running", "socat")]


async def test_close_publishes_the_transition_still_waiting() -> None:
    sent = Sent()
    feed = HostFeed(sent, settle=3600, outcome_step="prepare")
    await feed.report("swap", "running", None)
    await feed.report("swap", "done", None)
    await feed.close()
    await feed.close()
    assert sent.events == [("swap", "done", None)]


async def test_an_urgent_event_waits_for_the_one_being_published() -> None:
    sent = Sent()
    sent.hold = asyncio.Event()
    feed = HostFeed(sent, settle=0.01, outcome_step="prepare")
    await feed.report("containerd", "running", None)
    # Once settled, the transition's flush takes the lock and its send is held: the failure queues behind it.
    async with asyncio.timeout(10):
        while not feed._lock.locked():
            await asyncio.sleep(0.01)  # yields until the flush task took the lock (bounded by the timeout)
    urgent = asyncio.create_task(feed.report("containerd", "failed", "exit status 100"))
    await asyncio.sleep(0)  # the urgent report now waits for the lock
    sent.hold.set()
    await urgent
    await feed.close()
    assert sent.events == [("containerd", "running", None), ("containerd", "failed", "exit status 100")]


async def test_a_lost_routine_event_is_logged_an_urgent_one_raises() -> None:
    sent = Sent()
    sent.fail = True
    feed = HostFeed(sent, settle=3600, outcome_step="prepare")
    await feed.report("swap", "running", None)
    await feed.close()  # no error: progress is informative
    with pytest.raises(ConnectionError):
        await feed.report("swap", "failed", "exit status 1")
