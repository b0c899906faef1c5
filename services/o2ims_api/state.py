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
import os
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import nats.js.errors
import structlog
from nats.aio.msg import Msg
from nats.js import api as js_api
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.o2ims_api.settings import O2imsApiSettings
from shared.bus import Bus
from shared.errors import InputError
from shared.httpapi.kvview import KvView
from shared.inventory import Inventory, InventoryError, load_inventory
from shared.leases import HostLeases, Lease
from shared.messages import decode
from shared.models import ClusterSpec
from shared.payloads import ByoHostSummary
from shared.subjects import ALL_K8S_BYOHOST_STATUS, BUCKET_HOSTS, BUCKET_O2IMS_API, BUCKET_PR

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
        self._inventory_key: tuple[int, int, int] | None = None
        self._inventory: Inventory | None = None
        self._inventory_lock = asyncio.Lock()
        self._byohost_sub: Any = None
        self.pr_view: KvView[PrView] | None = None
        self.lease_view: KvView[Lease] | None = None
        #: Called after every change this process notices (inventory recomputation trigger).
        self.on_change: Callable[[], None] | None = None

    # ── start-up ─────────────────────────────────────────────────────────────────────────

    async def start(self) -> None:
        self.global_cloud_id = await self._cloud_id()
        self.pr_view = KvView(await self.bus.kv(BUCKET_PR), _pr_view, name=BUCKET_PR)
        self.lease_view = KvView(await self.bus.kv(BUCKET_HOSTS), _lease, name=BUCKET_HOSTS)
        for view in (self.pr_view, self.lease_view):
            view.listen(lambda _key: self._changed())
            await view.start()
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
        for view in (self.pr_view, self.lease_view):
            if view is not None:
                await view.stop()

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
        path: Path = self.settings.inventory_path
        async with self._inventory_lock:
            try:
                st = await asyncio.to_thread(os.stat, path)
            except OSError:
                return None
            key = (st.st_ino, st.st_size, st.st_mtime_ns)
            if key != self._inventory_key:
                self._inventory_key = key
                try:
                    self._inventory = await asyncio.to_thread(
                        load_inventory,
                        path,
                        max_bytes=self.settings.inventory_max_bytes,
                        window=self.settings.k8s_window,
                        vip_pool=self.settings.vip_pool,
                        ssh_key_dir=self.settings.ssh_key_dir,
                    )
                except InventoryError as exc:
                    log.warning("inventory_invalid", problems=len(exc.problems))
                    self._inventory = None
            return self._inventory

    async def pr(self, pr_id: str) -> PrView | None:
        kv = await self.bus.kv(BUCKET_PR)
        try:
            entry = await kv.get(pr_id)
        except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
            return None
        return _pr_view(pr_id, entry.value)

    async def prs(self, *, fresh: bool = True) -> dict[str, PrView]:
        """Every PR record; ``fresh``: including every change made before the call (else: as the view has it)."""
        if await _ready(self.pr_view, fresh):
            assert self.pr_view is not None
            views: list[PrView | None] = list(self.pr_view.values.values())
        else:
            kv = await self.bus.kv(BUCKET_PR)
            try:
                keys = await kv.keys()
            except nats.js.errors.NoKeysError:
                return {}
            views = list(await asyncio.gather(*(self.pr(k) for k in keys)))
        return {v.pr_id: v for v in views if v is not None and v.state != "deleted"}

    async def leases(self, *, fresh: bool = True) -> dict[str, str]:
        return {host_id: lease.owner for host_id, lease in (await self._leases(fresh)).items()}

    async def quarantined(self, *, fresh: bool = True) -> dict[str, Lease]:
        """Hosts held in quarantine (teardown failed), with why and from which PR."""
        return dict(sorted((h, lease) for h, lease in (await self._leases(fresh)).items() if lease.quarantined))

    async def _leases(self, fresh: bool) -> dict[str, Lease]:
        if await _ready(self.lease_view, fresh):
            assert self.lease_view is not None
            return dict(self.lease_view.values)
        store = HostLeases(await self.bus.kv(BUCKET_HOSTS)).store
        out = {}
        for host_id in await store.keys():
            got = await store.get(host_id)
            if got is not None:
                out[host_id] = got[0]
        return out


async def _ready(view: KvView[Any] | None, fresh: bool) -> bool:
    """Whether ``view`` can answer: started, and (for ``fresh``) caught up with its bucket."""
    if view is None or view.loads == 0:
        return False
    return not fresh or await view.fresh(FRESH_TIMEOUT)


def _lease(host_id: str, raw: bytes) -> Lease | None:
    try:
        return Lease.model_validate_json(raw)
    except ValidationError as exc:
        log.warning("lease_unreadable", host_id=host_id, errors=exc.error_count())
        return None


def _pr_view(key: str, raw: bytes | None) -> PrView | None:
    if not raw:
        return None
    try:
        return PrView.model_validate_json(raw)
    except ValidationError as exc:
        log.warning("pr_record_unreadable", pr_id=key, errors=exc.error_count())
        return None
