"""A typed record store over a JetStream KV bucket with revision-checked writes.

Records are pydantic models stored as JSON. Every write names the revision it read, so two
writers can never silently overwrite each other: ``mutate`` re-reads and re-applies its pure
change function on conflict until it wins (or gives up with a ``TemporaryError``).

A store of frozen records can keep the last ``cache`` records it read or wrote, by key with their
revision and bytes: a read that finds the same revision and bytes in KV returns the kept record
instead of decoding and validating it again (a service mostly reads back what it wrote itself).
``get`` still reads KV every time, so it never returns a stale record. A writer that is usually the
record's only one can also start a ``mutate`` from the kept record (``known=store.cached(key)``):
the revision-checked write then proves it current, or fails and the change is applied to a fresh read.
"""

from __future__ import annotations

import asyncio
import random
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

import nats.js.errors
from nats.js.kv import KeyValue
from pydantic import BaseModel, ValidationError

from shared.errors import PermanentError, TemporaryError
from shared.kvkeys import bucket_keys

M = TypeVar("M", bound=BaseModel)

#: Conflicts are expected under contention; this many retries is plenty for a handful of writers.
MAX_ATTEMPTS = 64


#: JetStream's error code for a write whose expected last sequence does not match.
_WRONG_LAST_SEQUENCE = 10071


class RecordConflict(TemporaryError):
    """Someone else wrote the record since we read it."""


class RecordExists(PermanentError):
    """``create`` of a key that already holds a record."""


class _Deleted:
    """Returned by a mutate function to delete the record."""


DELETE = _Deleted()


class RecordStore(Generic[M]):
    def __init__(self, kv: KeyValue, model: type[M], *, cache: int = 0) -> None:
        if cache and not model.model_config.get("frozen"):
            raise ValueError(f"{model.__name__} is not frozen: a cached record could be changed by its reader")
        self.kv = kv
        self.model = model
        self._cache_size = cache
        #: key -> (revision, bytes, record), least recently used first.
        self._cache: OrderedDict[str, tuple[int, bytes, M]] = OrderedDict()

    def _decode(self, key: str, raw: bytes | None, revision: int = 0) -> M:
        kept = self._cache.get(key)
        if kept is not None and kept[0] == revision and kept[1] == raw:
            self._cache.move_to_end(key)
            return kept[2]
        try:
            record = self.model.model_validate_json(raw or b"")
        except ValidationError as exc:
            # A record we cannot read must not be overwritten blindly; surface it loudly.
            raise PermanentError(
                f"record {key!r} in bucket {self.kv._name!r} is unreadable: {exc.error_count()} error(s)",
                reason="CorruptRecord",
            ) from None
        self._keep(key, revision, raw or b"", record)
        return record

    def cached(self, key: str) -> tuple[M, int] | None:
        """The record and revision this store last read or wrote for ``key``, if kept; maybe no longer current.

        For ``mutate(known=…)``: a write from it is revision-checked, so a stale one costs a retry, never a loss.
        """
        kept = self._cache.get(key)
        return (kept[2], kept[0]) if kept is not None else None

    def decode(self, key: str, raw: bytes, revision: int) -> M:
        """The record ``raw`` holds (read at ``revision``, e.g. from a watch); the kept one if it is the same.

        Raises ``PermanentError`` (``CorruptRecord``) when it is not a valid record.
        """
        return self._decode(key, raw, revision)

    def _keep(self, key: str, revision: int, raw: bytes, record: M) -> None:
        if not self._cache_size:
            return
        self._cache[key] = (revision, raw, record)
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    async def get(self, key: str) -> tuple[M, int] | None:
        """The record and its revision, or None when absent or deleted."""
        try:
            entry = await self.kv.get(key)
        except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
            self._cache.pop(key, None)
            return None
        if entry.value is None or entry.operation in ("DEL", "PURGE"):
            self._cache.pop(key, None)
            return None
        revision = int(entry.revision or 0)
        return self._decode(key, entry.value, revision), revision

    async def create(self, key: str, record: M) -> int:
        raw = record.model_dump_json().encode()
        try:
            revision = await self.kv.create(key, raw)
        except nats.js.errors.KeyWrongLastSequenceError:
            raise RecordExists(f"record {key!r} already exists", reason="AlreadyExists") from None
        self._keep(key, revision, raw, record)
        return revision

    async def update(self, key: str, record: M, revision: int) -> int:
        raw = record.model_dump_json().encode()
        try:
            written = await self.kv.update(key, raw, last=revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            raise RecordConflict(f"record {key!r} changed since revision {revision}", delay=0.0) from None
        self._keep(key, written, raw, record)
        return written

    async def delete(self, key: str, revision: int | None = None) -> None:
        self._cache.pop(key, None)
        try:
            await self.kv.delete(key, last=revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            raise RecordConflict(f"record {key!r} changed since revision {revision}", delay=0.0) from None
        except nats.js.errors.BadRequestError as exc:
            # A revision-checked delete answers a stale revision with a plain 400 "wrong last sequence"
            # (JetStream error 10071), not the KV-specific error update() gets.
            if exc.err_code != _WRONG_LAST_SEQUENCE:
                raise
            raise RecordConflict(f"record {key!r} changed since revision {revision}", delay=0.0) from None

    async def mutate(
        self,
        key: str,
        change: Callable[[M | None], M | _Deleted | None],
        *,
        known: tuple[M, int] | None = None,
    ) -> tuple[M | None, int | None]:
        """Read, apply ``change`` (pure), write back with the read revision; retry on conflict.

        ``change`` returns the new record, ``None`` to leave things as they are, or ``DELETE``.
        Returns the resulting record and revision (``(None, None)`` when absent or deleted).
        ``known`` is a record and revision the caller has just written or read: the first attempt
        starts from it instead of reading KV. Its write is still revision-checked, so if the record
        changed meanwhile, the write fails and the change is applied again to what KV holds. Only
        a write proves ``known`` current: when ``change`` writes nothing, KV is read and it decides again.
        """
        for attempt in range(MAX_ATTEMPTS):
            assumed = attempt == 0 and known is not None
            current = known if assumed else await self.get(key)
            record, revision = current if current else (None, None)
            new = change(record)
            try:
                if new is None or (not isinstance(new, _Deleted) and new == record):
                    if assumed:
                        continue
                    return record, revision
                if isinstance(new, _Deleted):
                    if revision is not None:
                        await self.delete(key, revision)
                    return None, None
                if revision is None:
                    return new, await self.create(key, new)
                return new, await self.update(key, new, revision)
            except (RecordConflict, RecordExists):
                # Jittered pause so contending writers stop colliding in lockstep.
                await asyncio.sleep(random.uniform(0, 0.002 * min(attempt + 1, 20)))  # noqa: S311
        raise RecordConflict(f"record {key!r}: gave up after {MAX_ATTEMPTS} conflicting writes", delay=0.5)

    async def keys(self) -> list[str]:
        return await bucket_keys(self.kv)
