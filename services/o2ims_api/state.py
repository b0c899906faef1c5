"""What the API reads: PR records, host leases, the inventory file, ByoHost summaries, its own KV.

Nothing here writes another service's record. PR records are read with a lenient view of the
fields the API shows (``PrView``), so o2ims may add fields without breaking it. The ``pr`` and
``hosts`` buckets are held in memory by KV watches (``KvView``): the change detector reads them
there, and is told of every change; a request handler first makes sure the view has caught up
with the bucket (one stream-info request), and reads the bucket itself if it has not (a view
still resuming after a reconnect). ByoHost summaries are folded from the ``K8S`` stream (the
last one per host, then every new one) into memory; a restart rebuilds them from the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import nats.js.errors
import structlog
from nats.aio.msg import Msg
from nats.js import api as js_api
from pydantic import BaseModel, ConfigDict, Field

from services.o2ims_api.settings import O2imsApiSettings
from shared.bus import Bus
from shared.errors import InputError
from shared.httpapi.kvview import KvView, decoder
from shared.httpapi.state import InventoryFile, Leases
from shared.inventory import Inventory
from shared.kvkeys import bucket_keys
from shared.leases import Lease
from shared.messages import decode
from shared.models import ClusterSpec
from shared.payloads import ByoHostSummary
from shared.subjects import ALL_K8S_BYOHOST_STATUS, BUCKET_O2IMS_API, BUCKET_PR

log = structlog.get_logger(__name__)

#: How long a request handler waits for a view to catch up before reading the bucket itself.
FRESH_TIMEOUT = 2.0


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class PrHostView(_Lenient):
    role: str = "worker"
    status: str = "pending"
    step: str | None = None
    detail: str | None = None
    released: bool = False


class PrView(_Lenient):
    """The fields of an o2ims PR record that the API shows."""

    pr_id: str
    fpr: str
    template_name: str = "byoh-workload-cluster"
    template_version: str = "v1.0.0"
    spec: ClusterSpec | None = None
    state: str
    stage: str | None = None
    reason: str | None = None
    message: str | None = None
    node_cluster_id: str | None = None
    hosts: dict[str, PrHostView] = Field(default_factory=dict)
    fulfilled_once: bool = False
    #: CAPI objects may exist: the spec's frozen fields can no longer change.
    capi_requested: bool = False
    generation: int = 1
    created_at: datetime
    updated_at: datetime

    @property
    def cluster(self) -> str:
        return self.spec.name if self.spec else ""

    @property
    def is_cluster(self) -> bool:
        """A deployment manager: the cluster came up and is not being removed."""
        return self.state not in ("deleting", "deleted") and (self.state == "fulfilled" or self.fulfilled_once)


class State:
    """Read access to the system's state, shared by every request handler."""

    def __init__(self, bus: Bus, settings: O2imsApiSettings) -> None:
        self.bus = bus
        self.settings = settings
        self.byohosts: dict[str, ByoHostSummary] = {}
        self.global_cloud_id = ""
        self.inventory_file = InventoryFile(settings.inventory_path, settings.inventory_rules())
        self.host_leases = Leases(bus)
        self._byohost_sub: Any = None
        self.pr_view: KvView[PrView] | None = None
        #: Called after every change this process notices (inventory recomputation trigger).
        self.on_change: Callable[[], None] | None = None

    # ── start-up ─────────────────────────────────────────────────────────────────────────

    async def start(self) -> None:
        self.global_cloud_id = await self._cloud_id()
        self.pr_view = KvView(await self.bus.kv(BUCKET_PR), _pr_view, name=BUCKET_PR)
        await self.pr_view.start()
        await self.host_leases.start()
        for view in (self.pr_view, self.host_leases.view):
            assert view is not None
            view.listen(lambda _key: self._changed())
        self._byohost_sub = await self.bus.js.subscribe(
            ALL_K8S_BYOHOST_STATUS,
            cb=self._on_byohost,
            ordered_consumer=True,
            config=js_api.ConsumerConfig(deliver_policy=js_api.DeliverPolicy.LAST_PER_SUBJECT),
        )

    async def stop(self) -> None:
        if self._byohost_sub is not None:
            with contextlib.suppress(Exception):
                await self._byohost_sub.unsubscribe()
        if self.pr_view is not None:
            await self.pr_view.stop()
        await self.host_leases.stop()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    async def _cloud_id(self) -> str:
        """The configured global cloud id, else the one kept in KV, else a new one (kept for next time)."""
        if self.settings.global_cloud_id is not None:
            return str(self.settings.global_cloud_id)
        kv = await self.bus.kv(BUCKET_O2IMS_API)
        with contextlib.suppress(nats.js.errors.KeyWrongLastSequenceError):
            await kv.create("global-cloud-id", str(uuid.uuid4()).encode())
        entry = await kv.get("global-cloud-id")
        return (entry.value or b"").decode()

    async def _on_byohost(self, msg: Msg) -> None:
        try:
            env = decode(msg.data)
        except InputError as exc:
            log.warning("byohost_summary_ignored", reason=exc.reason)
            return
        p = env.payload
        if not isinstance(p, ByoHostSummary):
            return
        key = p.host_id or p.name
        if p.exists:
            self.byohosts[key] = p
        else:
            self.byohosts.pop(key, None)
        self._changed()

    # ── reads ────────────────────────────────────────────────────────────────────────────

    async def inventory(self) -> Inventory | None:
        """The inventory file (re-read when it changed); None while it is missing or invalid."""
        got = await self.inventory_file.load()
        return got if isinstance(got, Inventory) else None

    async def pr(self, pr_id: str) -> PrView | None:
        kv = await self.bus.kv(BUCKET_PR)
        try:
            entry = await kv.get(pr_id)
        except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
            return None
        return _pr_view(pr_id, entry.value)

    async def prs(self, *, fresh: bool = True) -> dict[str, PrView]:
        """Every PR record; ``fresh``: including every change made before the call (else: as the view has it)."""
        if self.pr_view is not None and await self.pr_view.usable(fresh=fresh, timeout=FRESH_TIMEOUT):
            views: list[PrView | None] = list(self.pr_view.values.values())
        else:
            kv = await self.bus.kv(BUCKET_PR)
            keys = await bucket_keys(kv)
            views = list(await asyncio.gather(*(self.pr(k) for k in keys)))
        return {v.pr_id: v for v in views if v is not None and v.state != "deleted"}

    async def leases(self, *, fresh: bool = True) -> dict[str, str]:
        return await self.host_leases.owners(fresh=fresh)

    async def quarantined(self, *, fresh: bool = True) -> dict[str, Lease]:
        """Hosts held in quarantine (teardown failed), with why and from which PR."""
        return await self.host_leases.quarantined(fresh=fresh)


#: A PR record as the API shows it (None when absent or unreadable, which is logged).
_pr_view = decoder(PrView, "pr_record_unreadable")
