"""The keys of a KV bucket, read so that no key already written is missed.

nats-py's ``KeyValue.keys()`` stops at its watcher's "initial values delivered" marker, and that marker
can come before every value already in the bucket has arrived (nats.py issue 842): a spurious empty or
partial list, seen here as leases that vanished right after they were taken. So the bucket's last
sequence is read first, and the replay of the last value of every key is followed until an entry at or
past that sequence has arrived; every entry up to it is then in hand. Deletes and purges are read too
(the last entry may be one) and left out of the keys.
"""

from __future__ import annotations

import asyncio

from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from shared.errors import TemporaryError

#: Seconds a listing may take before it is given up as temporary (the bucket is read by one ordered consumer).
KEYS_TIMEOUT = 10.0


async def bucket_keys(kv: KeyValue, *, timeout: float = KEYS_TIMEOUT) -> list[str]:
    """Every live key of ``kv``: all written before the call, in stream order (later writes may be there too)."""
    bucket = "?"
    try:
        async with asyncio.timeout(timeout):
            status = await kv.status()
            bucket, last = status.bucket, status.stream_info.state.last_seq
            if not last or not status.stream_info.state.messages:
                return []
            live: dict[str, None] = {}
            watcher = await kv.watchall(meta_only=True)
            try:
                while True:
                    entry = await watcher.updates(timeout=timeout)  # type: ignore[no-untyped-call]
                    if entry is None:
                        # The library's marker, which may come early: done only if what the bucket held up to
                        # ``last`` has expired meanwhile (a bucket with a TTL), so that no entry can reach it.
                        if (await kv.status()).stream_info.state.first_seq > last:
                            return list(live)
                        continue
                    if entry.operation in (KV_DEL, KV_PURGE):
                        live.pop(entry.key, None)
                    else:
                        live[entry.key] = None
                    if (entry.revision or 0) >= last:
                        return list(live)
            finally:
                await watcher.stop()  # type: ignore[no-untyped-call]
    except TimeoutError:
        raise TemporaryError(
            f"the keys of KV bucket {bucket!r} were not all read within {timeout:g}s", reason="KvKeysTimeout"
        ) from None
