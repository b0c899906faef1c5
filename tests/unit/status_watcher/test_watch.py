"""The list+watch loop against a scripted client: resume from the last resourceVersion, re-list on 410, backoff."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

from services.status_watcher.settings import StatusWatcherSettings
from services.status_watcher.watch import Backoff, ResourceWatch, WatchTarget
from shared.errors import TemporaryError
from shared.kube import WatchEvent, WatchExpired


def m(name: str, rv: int) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default", "resourceVersion": str(rv)}}


class ScriptedClient:
    """``list`` answers from ``lists``; each ``watch`` call plays the next script, then raises what it holds."""

    def __init__(self, lists: list[tuple[list[dict[str, Any]], str]], watches: list[tuple[list[WatchEvent], Any]]):
        self.lists = lists
        self.watches = watches
        self.calls: list[tuple[str, str]] = []
        self.done = asyncio.Event()

    async def list(self, api_version: str, kind: str, namespace: str | None = None, **_: Any) -> Any:
        self.calls.append(("list", ""))
        return self.lists.pop(0)

    async def watch(
        self, api_version: str, kind: str, namespace: str | None = None, *, resource_version: str, **_: Any
    ) -> AsyncIterator[WatchEvent]:
        self.calls.append(("watch", resource_version))
        if not self.watches:
            self.done.set()
            await asyncio.Event().wait()
        events, end = self.watches.pop(0)
        for event in events:
            yield event
        if end is not None:
            raise end


class Sink:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def on_event(self, kind: str, event_type: str, obj: Mapping[str, Any]) -> None:
        self.seen.append((event_type, obj["metadata"]["name"]))

    def on_list(self, kind: str, namespace: str | None, items: list[dict[str, Any]]) -> None:
        self.seen.append(("LIST", ",".join(i["metadata"]["name"] for i in items)))


async def drive(client: ScriptedClient, sink: Sink) -> list[float]:
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)

    watch = ResourceWatch(
        client,
        WatchTarget("v1", "Machine"),
        sink,
        backoff=Backoff(jitter=False),  # type: ignore[arg-type]
        sleep=sleep,
    )
    task = asyncio.create_task(watch.run())
    await asyncio.wait_for(client.done.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert watch.listed.is_set()
    return delays


async def test_a_broken_stream_resumes_from_the_last_seen_version_and_a_410_relists() -> None:
    client = ScriptedClient(
        lists=[([m("a", 5)], "10"), ([m("a", 5), m("b", 30)], "31")],
        watches=[
            ([WatchEvent("ADDED", m("b", 11)), WatchEvent("BOOKMARK", m("", 15))], None),  # server timeout
            ([WatchEvent("MODIFIED", m("b", 16))], TemporaryError("connection reset")),  # broken mid-stream
            ([], TemporaryError("connection refused")),
            ([], WatchExpired("too old", delay=0)),
        ],
    )
    sink = Sink()
    delays = await drive(client, sink)
    assert client.calls == [
        ("list", ""),
        ("watch", "10"),
        ("watch", "15"),
        ("watch", "16"),
        ("watch", "16"),
        ("list", ""),
        ("watch", "31"),
    ]
    assert sink.seen == [("LIST", "a"), ("ADDED", "b"), ("MODIFIED", "b"), ("LIST", "a,b")]
    # One policy: growing delays for consecutive errors, none for an expiry.
    assert delays == [0.2 * 2**0, 0.2 * 2**1]


def test_backoff_grows_caps_and_resets() -> None:
    b = Backoff(initial=1.0, maximum=5.0, jitter=False)
    assert [b.next_delay() for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    b.reset()
    assert b.next_delay() == 1.0
    jittered = Backoff(initial=1.0, maximum=5.0)
    assert all(0.5 <= jittered.next_delay() <= 1.0 * 2**i for i in range(5))


def test_namespaces_setting_is_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("O2_STATUS_WATCHER_NAMESPACES", "a, b,,c")
    assert StatusWatcherSettings().namespaces == ("a", "b", "c")
    monkeypatch.setenv("O2_STATUS_WATCHER_NAMESPACES", "")
    assert StatusWatcherSettings().namespaces == ()
