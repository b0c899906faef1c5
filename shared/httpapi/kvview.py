"""A live copy of a KV bucket in memory, kept current by a JetStream KV watch instead of re-reading it.

``KvView`` loads the bucket once (a watch from the latest value of every key), then applies every
change the same watch delivers, puts, deletes and purges, in the bucket's order. The watch is an
ordered consumer: after a reconnect, a restarted server or a missed message, nats-py recreates it
from the revision after the last one received, so what was already applied is not read again. A full
resync (a new watch, its result compared key by key with what was held) happens only at start, when
the watch ends or fails, and when revisions go backwards (the bucket was recreated). Every key whose
value changed, the differences of a resync included, is passed to the listeners: a listener that
recomputes from the view never misses a change, whatever happened to the connection meanwhile.

``fresh()`` waits until the view holds everything the bucket held when it was called (one
stream-info request instead of reading every key), for readers that must see their own writes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

import nats.errors
import structlog
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue
from pydantic import BaseModel, ValidationError

log = structlog.get_logger(__name__)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
#: Turns a stored value into the view's value; None for a value it cannot read (then the key counts as absent).
Decode = Callable[[str, bytes], T | None]
Listener = Callable[[str], None]

#: How long one entry of the initial load may take to arrive before the load is retried.
LOAD_TIMEOUT = 10.0
#: Pause before retrying a failed resync (doubling up to the maximum).
RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 10.0


class KvView(Generic[T]):
    """Key → decoded value of one bucket (or of the keys matching ``keys``), following every change."""

    def __init__(
        self, kv: KeyValue, decode: Decode[T], *, keys: str = ">", name: str = "", check_interval: float = 30.0
    ) -> None:
        self.kv = kv
        self.decode = decode
        self.keys = keys
        self.name = name or keys
        #: How often the bucket's identity and progress are checked (one stream-info request).
        self.check_interval = check_interval
        self.values: dict[str, T] = {}
        #: The bucket revision (stream sequence) of the last change applied.
        self.revision = 0
        #: Full loads so far (1 after start; more only after a watch ended or revisions went backwards).
        self.loads = 0
        self._listeners: list[Listener] = []
        self._advanced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._watcher: KeyValue.KeyWatcher | None = None
        self._created: object = None
        #: The last ``fresh()`` timed out (the watch is resuming): callers are answered at once until it caught up.
        self._stale = False
        self._target: int | None = None

    # ── reading ──────────────────────────────────────────────────────────────────────────

    def get(self, key: str) -> T | None:
        return self.values.get(key)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.values))

    def __len__(self) -> int:
        return len(self.values)

    def listen(self, listener: Listener) -> None:
        """Call ``listener(key)`` after every change of a key's value (synchronously: keep it cheap)."""
        self._listeners.append(listener)

    async def fresh(self, timeout: float = 5.0) -> bool:
        """Wait until every change made to the bucket before this call is in the view (False: timed out)."""
        status = await self.kv.status()
        state = status.stream_info.state
        if not state.messages:
            return True
        target = int(state.last_seq)
        if self.revision < target and self._stale:
            return False  # it was already behind at the last call: do not make every caller wait again
        try:
            async with asyncio.timeout(timeout):
                while self.revision < target:
                    self._advanced.clear()
                    await self._advanced.wait()
        except TimeoutError:
            log.warning("kv_view_behind", view=self.name, revision=self.revision, bucket_revision=target)
            self._stale = True
            return False
        self._stale = False
        return True

    async def usable(self, *, fresh: bool, timeout: float = 2.0) -> bool:
        """Whether the view can answer now: loaded, and (``fresh``) caught up with the bucket within ``timeout``."""
        return self.loads > 0 and (not fresh or await self.fresh(timeout))

    # ── running ──────────────────────────────────────────────────────────────────────────

    async def start(self) -> None:
        """Load the bucket, then follow it in the background until ``stop``."""
        watcher = await self._load()
        self._task = asyncio.create_task(self._follow(watcher), name=f"kv-view:{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._close_watcher()

    async def _close_watcher(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            with contextlib.suppress(Exception):
                await watcher.stop()  # type: ignore[no-untyped-call]

    async def _load(self) -> KeyValue.KeyWatcher:
        """A new watch; its initial values replace the view's, and every difference is announced."""
        await self._close_watcher()
        self._created, self._target = (await self.kv.status()).stream_info.created, None
        watcher = self._watcher = await self.kv.watch(self.keys)
        values: dict[str, T] = {}
        revision = 0
        # The watch announces the end of the initial values with None.
        while isinstance(entry := await _next(watcher, LOAD_TIMEOUT), KeyValue.Entry):
            revision = max(revision, int(entry.revision or 0))
            value = None if _removal(entry) else self.decode(entry.key, entry.value or b"")
            if value is not None:
                values[entry.key] = value
        old, self.values = self.values, values
        self.revision = revision
        self.loads += 1
        self._advanced.set()
        for key in sorted(old.keys() | values.keys()):
            if old.get(key) != values.get(key):
                self._announce(key)
        return watcher

    async def _follow(self, watcher: KeyValue.KeyWatcher) -> None:
        delay = RETRY_DELAY
        while True:
            try:
                await self._until_gap(watcher)
            except asyncio.CancelledError:
                raise
            except (nats.errors.Error, TimeoutError) as exc:
                log.warning("kv_view_watch_failed", view=self.name, error=f"{type(exc).__name__}: {exc}")
            except Exception as exc:
                log.error("kv_view_watch_failed", view=self.name, exc_info=exc)
            while True:
                try:
                    watcher = await self._load()
                    log.info("kv_view_resynced", view=self.name, keys=len(self.values), revision=self.revision)
                    delay = RETRY_DELAY
                    break
                except (nats.errors.Error, TimeoutError) as exc:
                    log.warning("kv_view_resync_failed", view=self.name, error=type(exc).__name__, retry_in=delay)
                except Exception as exc:
                    # Not the connection: a fault worth its traceback; the view must still not freeze.
                    log.error("kv_view_resync_failed", view=self.name, retry_in=delay, exc_info=exc)
                await asyncio.sleep(delay)  # backoff before loading again
                delay = min(delay * 2, MAX_RETRY_DELAY)

    async def _until_gap(self, watcher: KeyValue.KeyWatcher) -> None:
        """Apply the watch's changes; return when only a full resync can make the view whole again."""
        loop = asyncio.get_running_loop()
        next_check = loop.time() + self.check_interval
        while True:
            try:
                entry = await _next(watcher, max(0.01, next_check - loop.time()))
            except nats.errors.TimeoutError:
                entry = None
            if entry is KeyValue.KeyWatcher.STOP_ITER:
                log.warning("kv_view_watch_ended", view=self.name)
                return
            if isinstance(entry, KeyValue.Entry):
                revision = int(entry.revision or 0)
                if revision <= self.revision:
                    log.warning("kv_view_revision_went_back", view=self.name, revision=revision, had=self.revision)
                    return
                self._apply(entry.key, revision, entry)
            if loop.time() >= next_check:
                next_check = loop.time() + self.check_interval
                if await self._gap():
                    return

    async def _gap(self) -> bool:
        """One stream-info request: was the bucket recreated, or has the watch stopped bringing its changes?"""
        info = (await self.kv.status()).stream_info
        last = int(info.state.last_seq)
        behind, self._target = self._target, last
        if info.created != self._created or last < self.revision:
            log.warning("kv_view_bucket_replaced", view=self.name, revision=self.revision, bucket_revision=last)
            return True
        if self.keys == ">" and behind is not None and self.revision < behind:
            # Still short of what the bucket held one check ago: the watch is stuck, not just busy.
            log.warning("kv_view_watch_stalled", view=self.name, revision=self.revision, bucket_revision=behind)
            return True
        return False

    def _apply(self, key: str, revision: int, entry: KeyValue.Entry) -> None:
        self.revision = revision
        value = None if _removal(entry) else self.decode(key, entry.value or b"")
        before = self.values.get(key)
        if value is None:
            self.values.pop(key, None)
        else:
            self.values[key] = value
        self._advanced.set()
        if before != value:
            self._announce(key)

    def _announce(self, key: str) -> None:
        for listener in self._listeners:
            listener(key)


def decoder(model: type[M], event: str = "record_unreadable") -> Callable[[str, bytes | None], M | None]:
    """A ``Decode`` of a pydantic model: an empty or unreadable value is absent (logged as ``event``)."""

    def decode(key: str, raw: bytes | None) -> M | None:
        if not raw:
            return None
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            log.warning(event, key=key, model=model.__name__, errors=exc.error_count())
            return None

    return decode


async def _next(watcher: KeyValue.KeyWatcher, timeout: float) -> object:
    """The watch's next item: an entry, None (end of the initial values), or its stop marker."""
    return await watcher.updates(timeout=timeout)  # type: ignore[no-untyped-call]


def _removal(entry: KeyValue.Entry) -> bool:
    return entry.operation in (KV_DEL, KV_PURGE) or entry.value is None
