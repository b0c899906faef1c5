"""The inventory as focom sees it: the file from settings, re-read whenever it changed, validated off the loop.

Every request asks for the inventory; an unchanged file (same inode, size and mtime) is not parsed
again, a changed one is. A broken file refuses the requests that need it with all its problems, and
touches nothing else: accepted requests live in the ``fpr`` record and never re-read it.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from shared.inventory import (
    DEFAULT_SSH_KEY_DIR,
    Inventory,
    InventoryError,
    InventoryRules,
    Problem,
    Window,
    load_inventory,
)


class InventorySource:
    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int,
        window: Window,
        vip_pool: bool = False,
        ssh_key_dir: Path = DEFAULT_SSH_KEY_DIR,
    ) -> None:
        self.path = path
        self.rules = InventoryRules(max_bytes=max_bytes, window=window, vip_pool=vip_pool, ssh_key_dir=ssh_key_dir)
        self._key: tuple[int, int, int] | None = None
        self._result: Inventory | InventoryError | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> Inventory:
        """The current inventory, or ``InventoryError`` listing every problem of the file."""
        async with self._lock:
            try:
                st = await asyncio.to_thread(os.stat, self.path)
            except OSError as exc:
                raise InventoryError(
                    [Problem("$", "file", f"cannot read {self.path.name}: {exc.strerror or exc}")],
                    source=f"inventory {self.path.name}",
                ) from None
            key = (st.st_ino, st.st_size, st.st_mtime_ns)
            if key != self._key or self._result is None:
                try:
                    self._result = await asyncio.to_thread(lambda: load_inventory(self.path, **self.rules))
                except InventoryError as exc:
                    self._result = exc
                self._key = key
            if isinstance(self._result, InventoryError):
                raise self._result
            return self._result
