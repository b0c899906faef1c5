"""A typed record store over a JetStream KV bucket with revision-checked writes.

Records are pydantic models stored as JSON. Every write names the revision it read, so two
writers can never silently overwrite each other: ``mutate`` re-reads and re-applies its pure
change function on conflict until it wins (or gives up with a ``TemporaryError``).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Generic, TypeVar

import nats.js.errors
from nats.js.kv import KeyValue
from pydantic import BaseModel, ValidationError

from shared.errors import PermanentError, TemporaryError

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
    def __init__(self, kv: KeyValue, model: type[M]) -> None:
        self.kv = kv
        self.model = model

    def _decode(self, key: str, raw: bytes | None) -> M:
        try:
            return self.model.model_validate_json(raw or b"")
        except ValidationError as exc:
            # A record we cannot read must not be overwritten blindly; surface it loudly.
            raise PermanentError(
                f"record {key!r} in bucket {self.kv._name!r} is unreadable: {exc.error_count()} error(s)",
                reason="CorruptRecord",
            ) from None

    async def get(self, key: str) -> tuple[M, int] | None:
        """The record and its revision, or None when absent or deleted."""
        try:
            entry = await self.kv.get(key)
        except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
            return None
        if entry.value is None or entry.operation in ("DEL", "PURGE"):
            return None
        return self._decode(key, entry.value), int(entry.revision or 0)

    async def create(self, key: str, record: M) -> int:
        try:
            return await self.kv.create(key, record.model_dump_json().encode())
        except nats.js.errors.KeyWrongLastSequenceError:
            raise RecordExists(f"record {key!r} already exists", reason="AlreadyExists") from None

    async def update(self, key: str, record: M, revision: int) -> int:
        try:
            return await self.kv.update(key, record.model_dump_json().encode(), last=revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            raise RecordConflict(f"record {key!r} changed since revision {revision}", delay=0.0) from None

    async def delete(self, key: str, revision: int | None = None) -> None:
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

    async def mutate(self, key: str, change: Callable[[M | None], M | _Deleted | None]) -> tuple[M | None, int | None]:
        """Read, apply ``change`` (pure), write back with the read revision; retry on conflict.

        ``change`` returns the new record, ``None`` to leave things as they are, or ``DELETE``.
        Returns the resulting record and revision (``(None, None)`` when absent or deleted).
        """
        for attempt in range(MAX_ATTEMPTS):
            current = await self.get(key)
            record, revision = current if current else (None, None)
            new = change(record)
            try:
                if new is None:
                    return record, revision
                if isinstance(new, _Deleted):
                    if revision is not None:
                        await self.delete(key, revision)
                    return None, None
                if new == record:
                    return record, revision
                if revision is None:
                    return new, await self.create(key, new)
                return new, await self.update(key, new, revision)
            except (RecordConflict, RecordExists):
                # Jittered pause so contending writers stop colliding in lockstep.
                await asyncio.sleep(random.uniform(0, 0.002 * min(attempt + 1, 20)))  # noqa: S311
        raise RecordConflict(f"record {key!r}: gave up after {MAX_ATTEMPTS} conflicting writes", delay=0.5)

    async def keys(self) -> list[str]:
        try:
            return list(await self.kv.keys())
        except nats.js.errors.NoKeysError:
            return []
