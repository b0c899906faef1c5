"""Per-FPR group commit of record changes, each followed by the FPR status event.

Child status reports for one FPR arrive concurrently (a batch of 1,000 clusters reports thousands of
transitions). Writing each with its own revision-checked update would make them conflict and retry
endlessly; instead, changes queued for one FPR while a write is in flight are folded into the next
single write. Every caller still waits for the write that contains its change before its message is
acknowledged, so a crash loses nothing. After each write the FPR's status is published with an id
derived from the record revision, so a re-run publishes a duplicate the stream drops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from services.focom.domain import FprRecord
from shared.store import RecordStore

Change = Callable[[FprRecord], FprRecord]
Publish = Callable[[FprRecord, int], Awaitable[None]]


class FprWriter:
    def __init__(self, store: RecordStore[FprRecord], publish: Publish) -> None:
        self.store = store
        self.publish = publish
        self._queues: dict[str, list[tuple[Change, asyncio.Future[FprRecord | None]]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def change(self, name: str, fn: Change) -> FprRecord | None:
        """Apply ``fn`` to the FPR record (absent records stay absent); returns the written record."""
        future: asyncio.Future[FprRecord | None] = asyncio.get_running_loop().create_future()
        # A caller cancelled while waiting must not leave an unretrieved exception behind.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        queue = self._queues.get(name)
        if queue is None:
            self._queues[name] = [(fn, future)]
            task = asyncio.create_task(self._drain(name), name=f"fpr-writer:{name}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            queue.append((fn, future))
        return await asyncio.shield(future)

    async def _drain(self, name: str) -> None:
        while True:
            batch = self._queues.get(name) or []
            if not batch:
                self._queues.pop(name, None)
                return
            self._queues[name] = []
            fns = [fn for fn, _ in batch]

            def fold(record: FprRecord | None, fns: list[Change] = fns) -> FprRecord | None:
                if record is None:
                    return None
                for fn in fns:
                    record = fn(record)
                return record

            try:
                # From the record this writer last wrote, if kept: the revision-checked write proves it current.
                record, revision = await self.store.mutate(name, fold, known=self.store.cached(name))
                if record is not None and revision is not None:
                    await self.publish(record, revision)
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(record)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
