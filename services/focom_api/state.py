"""What the API reads: FPR records, PR records (endpoints), host leases, and the inventory file.

Nothing here writes another service's record. FPR records are read with a lenient view of the
fields the API shows (``FprView``), so focom may add fields without breaking it. The inventory
file and the host leases are read as the O2IMS API reads them (``shared.httpapi.state``). Requests
(the list) and leases are held in memory by KV watches and caught up with their bucket before each
answer; one request is read from the bucket itself.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import nats.js.errors
import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.focom_api.settings import FocomApiSettings
from shared.bus import Bus
from shared.httpapi.kvview import KvView, decoder
from shared.httpapi.state import InventoryFile, Leases
from shared.inventory import Inventory, InventoryError
from shared.kvkeys import bucket_keys
from shared.subjects import BUCKET_FPR, BUCKET_PR

log = structlog.get_logger(__name__)


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ChildView(_Lenient):
    cluster: str
    pr_id: str
    desired: str = "present"
    command: str = "create"
    since: datetime
    state: str = "pending"
    stage: str | None = None
    reason: str | None = None
    message: str | None = None
    at: datetime | None = None
    hosts: tuple[str, ...] = ()

    @property
    def settled(self) -> bool:
        return self.at is not None and self.at >= self.since


class PlannedView(_Lenient):
    cluster: str
    pr_id: str
    control_plane: tuple[str, ...] = ()
    workers: tuple[str, ...] = ()


class FprView(_Lenient):
    name: str
    generation: int = 0
    operation: str = "create"
    phase: str = "Pending"
    message: str = ""
    children: dict[str, ChildView] = Field(default_factory=dict)
    pending: dict[str, Any] | None = None
    plan: tuple[PlannedView, ...] = ()
    created_at: datetime
    updated_at: datetime


class PrEndpointView(_Lenient):
    """What the API shows of an o2ims PR record: where the cluster answers."""

    state: str = "pending"
    spec: dict[str, Any] | None = None


class State:
    def __init__(self, bus: Bus, settings: FocomApiSettings) -> None:
        self.bus = bus
        self.settings = settings
        self.inventory_file = InventoryFile(settings.inventory_path, settings.inventory_rules())
        self.host_leases = Leases(bus)
        self.fpr_view: KvView[FprView] | None = None

    async def start(self) -> None:
        self.fpr_view = KvView(await self.bus.kv(BUCKET_FPR), _request, name=BUCKET_FPR)
        await self.fpr_view.start()
        await self.host_leases.start()

    async def stop(self) -> None:
        if self.fpr_view is not None:
            await self.fpr_view.stop()
        await self.host_leases.stop()

    async def inventory(self) -> Inventory | InventoryError | None:
        """The inventory file (re-read when it changed): the model, its problems, or None when missing."""
        return await self.inventory_file.load()

    async def fpr(self, name: str) -> FprView | None:
        kv = await self.bus.kv(BUCKET_FPR)
        try:
            entry = await kv.get(name)
        except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
            return None
        return _view(name, entry.value)

    async def fprs(self) -> list[FprView]:
        """Every request, with every change made before the call (from the KV view once it has caught up)."""
        if self.fpr_view is not None and await self.fpr_view.usable(fresh=True):
            return list(self.fpr_view.values.values())
        kv = await self.bus.kv(BUCKET_FPR)
        keys = await bucket_keys(kv)
        # ``<fpr>.<cluster>`` keys hold cluster specs, not requests.
        views = await asyncio.gather(*(self.fpr(k) for k in keys if "." not in k))
        return [v for v in views if v is not None]

    async def endpoint(self, pr_id: str) -> str | None:
        kv = await self.bus.kv(BUCKET_PR)
        try:
            entry = await kv.get(pr_id)
        except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
            return None
        try:
            pr = PrEndpointView.model_validate_json(entry.value or b"{}")
        except ValidationError:
            return None
        spec = pr.spec or {}
        first = next((h for h in spec.get("control_plane") or [] if isinstance(h, dict)), {})
        host = spec.get("vip") or first.get("host_ip")
        return f"https://{host}:6443" if isinstance(host, str) and pr.state == "fulfilled" else None

    async def leases(self) -> dict[str, str]:
        """Host id → the PR holding it, with every change made before the call."""
        return await self.host_leases.owners()


#: An FPR record as the API shows it (None when absent or unreadable, which is logged).
_view = decoder(FprView, "fpr_record_unreadable")


def _request(key: str, raw: bytes | None) -> FprView | None:
    # ``<fpr>.<cluster>`` and ``<fpr>._cr`` keys hold focom's other records, not requests.
    return None if "." in key else _view(key, raw)
