"""``o2ctl submit --wait`` and ``status --watch``: follow one FOCOM request until it settles.

Reads the request's own events from JetStream (FPR status, each cluster's PR transitions, host
steps), filtered by correlation id = the FPR name, and shows one progress bar per cluster with
its state, stage and the host step under way. Returns the final FPR status.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from nats.js import api as js_api
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from o2ctl.output import printable
from shared.bus import Bus
from shared.errors import InputError
from shared.messages import decode
from shared.payloads import FprStatus, HostProgress, MessageFailed, PrStatus
from shared.subjects import ALL_HOSTPREP_EVENTS, ALL_O2IMS_STATUS, focom_status

#: Under change control a new create stops at PendingApproval: following it further waits for a person.
TERMINAL = {
    "create": {"Synced", "Failed", "PendingApproval"},
    "scale": {"Synced", "Failed"},
    "delete": {"Deleted", "Failed"},
}
#: Progress weights of a cluster's way to fulfilled, for the bar.
STEPS = {
    "pending": 0,
    "hostprep": 1,
    "apply": 2,
    "provisioning": 3,
    "scaling": 3,
    "upgrade-control-plane": 2,
    "upgrade-workers": 3,
    "fulfilled": 4,
    "deleting": 2,
    "teardown": 3,
    "capi-delete": 2,
    "deleted": 4,
    "failed": 4,
}


@dataclass
class ClusterView:
    state: str = "pending"
    stage: str | None = None
    message: str = ""
    host_steps: dict[str, str] = field(default_factory=dict)

    @property
    def progress(self) -> int:
        settled = self.state in ("fulfilled", "failed", "deleted")
        return STEPS.get(self.state if settled else self.stage or self.state, 0)


@dataclass
class Follow:
    name: str
    clusters: dict[str, ClusterView] = field(default_factory=dict)
    by_pr: dict[str, str] = field(default_factory=dict)
    fpr: FprStatus | None = None
    failure: MessageFailed | None = None

    def table(self) -> Group:
        progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[detail]}"))
        for cluster, view in sorted(self.clusters.items()):
            where = f"{view.state}/{view.stage}" if view.stage and view.state == "progressing" else view.state
            step = ", ".join(f"{h}:{s}" for h, s in sorted(view.host_steps.items())[:4])
            # A live terminal view: the message is shortened to fit the bar; plain output prints it whole.
            progress.add_task(
                _safe(f"{cluster:<16} {where:<24}"),
                total=4,
                completed=view.progress,
                detail=_safe(step or view.message[:60]),
            )
        phase = self.fpr.phase if self.fpr else "Pending"
        header = Table.grid()
        header.add_row(
            f"[bold]{_safe(self.name)}[/bold]  phase: [bold]{_safe(phase)}[/bold]  "
            f"{_safe(self.fpr.message) if self.fpr else ''}"
        )
        return Group(header, progress)


async def follow(
    bus: Bus,
    name: str,
    operation: str,
    *,
    timeout: float,
    console: Console | None,
    start: Any = None,
    plain: bool = False,
    cause: Any = None,
) -> Follow:
    """Follow until the FPR reaches a terminal phase for ``operation`` (or a refusal), or time out.

    With a console, a live view; with ``plain`` (no terminal), one line per cluster change.
    """
    state = Follow(name)
    printed: dict[str, str] = {}
    js = bus.js
    policy = {"deliver_policy": js_api.DeliverPolicy.BY_START_TIME, "opt_start_time": start} if start else {}
    # The request's current status first (a replayed request may change nothing and publish nothing).
    last = js_api.ConsumerConfig(deliver_policy=js_api.DeliverPolicy.LAST_PER_SUBJECT)
    subs = [
        await js.subscribe(focom_status(name), ordered_consumer=True, config=last),
        await js.subscribe(ALL_O2IMS_STATUS, ordered_consumer=True, config=js_api.ConsumerConfig(**policy)),
        await js.subscribe(ALL_HOSTPREP_EVENTS, ordered_consumer=True, config=js_api.ConsumerConfig(**policy)),
    ]
    queue: asyncio.Queue[bytes] = asyncio.Queue()

    async def pump(sub: Any) -> None:
        async for msg in sub.messages:
            await queue.put(msg.data)

    pumps = [asyncio.create_task(pump(s)) for s in subs]
    live = Live(state.table(), console=console, refresh_per_second=8, transient=False) if console else None
    try:
        if live:
            live.start()
        async with asyncio.timeout(timeout):
            while True:
                data = await queue.get()
                finished = False
                with contextlib.suppress(InputError):
                    finished = _apply(state, data, name, cause) and _done(state, operation)
                if live:
                    live.update(state.table())
                elif plain:
                    _print_changes(state, printed)
                if finished:
                    break
    finally:
        if live:
            live.update(state.table())
            live.stop()
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        for sub in subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
    return state


def _safe(text: str) -> str:
    """Shown by rich: one line, and no markup of its own."""
    return escape(printable(text))


def _print_changes(state: Follow, last: dict[str, str]) -> None:
    for cluster, view in sorted(state.clusters.items()):
        where = f"{view.state}/{view.stage}" if view.stage and view.state == "progressing" else view.state
        if last.get(cluster) != where:
            last[cluster] = where
            print(printable(f"  {cluster:<16} {where:<26} {view.message}").rstrip(), flush=True)
    phase = state.fpr.phase if state.fpr else "Pending"
    if last.get("") != phase:
        last[""] = phase
        print(printable(f"{state.name}: {phase}"), flush=True)


def _apply(state: Follow, data: bytes, name: str, cause: Any = None) -> bool:
    env = decode(data)
    if env.correlation_id != name:
        return False
    if isinstance(env.payload, MessageFailed) and cause is not None and env.causation_id != cause:
        return False  # the refusal of an earlier submission, not of ours
    p = env.payload
    if isinstance(p, FprStatus):
        state.fpr = p
        for child in p.children:
            view = state.clusters.setdefault(child.cluster, ClusterView())
            state.by_pr[child.pr_id] = child.cluster
            view.state, view.stage = child.state, child.stage
            view.message = child.message or child.reason or ""
    elif isinstance(p, PrStatus):
        view = state.clusters.setdefault(p.cluster, ClusterView())
        state.by_pr[p.pr_id] = p.cluster
        view.state, view.stage, view.message = p.state, p.stage, p.message or p.reason or ""
        if p.state != "progressing" or p.stage != "hostprep":
            view.host_steps.clear()
    elif isinstance(p, HostProgress):
        cluster = state.by_pr.get(p.pr_id)
        if cluster:
            view = state.clusters.setdefault(cluster, ClusterView())
            if p.status == "ready":
                view.host_steps.pop(p.host_id, None)
            else:
                view.host_steps[p.host_id] = f"{p.step}({p.status})"
    elif isinstance(p, MessageFailed):
        state.failure = p
    return True


def _done(state: Follow, operation: str) -> bool:
    if state.failure is not None:
        return True
    fpr = state.fpr
    if fpr is None or fpr.operation not in (None, operation):
        return False  # a status of an earlier operation (e.g. the create before this scale)
    return fpr.phase in TERMINAL.get(operation, {"Synced", "Failed"})
