"""What both SMO-facing APIs read alike: the inventory file and the host leases.

``InventoryFile`` loads the inventory with FOCOM's rules and loads it again only when the file
changed (inode, size or modification time), off the event loop. ``Leases`` holds the ``hosts``
bucket in memory through a KV watch (``KvView``); a reader asking for a fresh answer gets every
change made before its call, and the bucket itself is read key by key only while the view has not
caught up (still resuming after a reconnect).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import structlog

from shared.bus import Bus
from shared.httpapi.kvview import KvView, decoder
from shared.inventory import Inventory, InventoryError, InventoryRules, load_inventory
from shared.leases import HostLeases, Lease
from shared.subjects import BUCKET_HOSTS

log = structlog.get_logger(__name__)


class InventoryFile:
    def __init__(self, path: Path, rules: InventoryRules) -> None:
        self.path = path
        self.rules = rules
        self._key: tuple[int, int, int] | None = None
        self._loaded: Inventory | InventoryError | None = None
        self._lock = asyncio.Lock()

    async def load(self) -> Inventory | InventoryError | None:
        """The inventory (the same object until the file changes), its problems, or None while it is missing."""
        async with self._lock:
            try:
                st = await asyncio.to_thread(os.stat, self.path)
            except OSError:
                return None
            key = (st.st_ino, st.st_size, st.st_mtime_ns)
            if key != self._key:
                self._key = key
                try:
                    self._loaded = await asyncio.to_thread(load_inventory, self.path, **self.rules)
                except InventoryError as exc:
                    log.warning("inventory_invalid", problems=len(exc.problems))
                    self._loaded = exc
            return self._loaded


class Leases:
    """The host leases (``hosts`` bucket), held by a KV watch."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.view: KvView[Lease] | None = None

    async def start(self) -> None:
        self.view = KvView(await self.bus.kv(BUCKET_HOSTS), _lease, name=BUCKET_HOSTS)
        await self.view.start()

    async def stop(self) -> None:
        if self.view is not None:
            await self.view.stop()

    async def all(self, *, fresh: bool = True) -> dict[str, Lease]:
        """Host id → lease; ``fresh``: with every change made before the call (else as the view has it)."""
        if self.view is not None and await self.view.usable(fresh=fresh):
            return dict(self.view.values)
        store = HostLeases(await self.bus.kv(BUCKET_HOSTS)).store
        out = {}
        for host_id in await store.keys():
            got = await store.get(host_id)
            if got is not None:
                out[host_id] = got[0]
        return out

    async def owners(self, *, fresh: bool = True) -> dict[str, str]:
        return {host_id: lease.owner for host_id, lease in (await self.all(fresh=fresh)).items()}

    async def quarantined(self, *, fresh: bool = True) -> dict[str, Lease]:
        """Hosts held in quarantine (teardown failed), with why and from which PR."""
        return dict(sorted((h, lease) for h, lease in (await self.all(fresh=fresh)).items() if lease.quarantined))


_lease = decoder(Lease, "lease_unreadable")
