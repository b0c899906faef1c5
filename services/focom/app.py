"""Composition root of focom: settings, stores, handlers, bus consumers and the optional Kubernetes face."""

from __future__ import annotations

import asyncio

from services.focom.domain import FprRecord
from services.focom.handlers import Focom
from services.focom.inventory_source import InventorySource
from services.focom.settings import FocomSettings
from services.focom.specs import SpecRecord
from shared.catalog import load_catalog
from shared.leases import HostLeases
from shared.runtime import ServiceRuntime, run_service
from shared.store import RecordStore
from shared.subjects import (
    BUCKET_FPR,
    BUCKET_HOSTS,
    BUCKET_VIPS,
    FOCOM_CHILD_STATUS_CONSUMER,
    FOCOM_CR_STATUS_CONSUMER,
    FOCOM_REQUESTS_CONSUMER,
)
from shared.vips import VipLeases

#: FPR records kept decoded (by revision); one request's record is written once per batch of child reports.
FPR_CACHE = 16


async def build(runtime: ServiceRuntime[FocomSettings]) -> Focom:
    s = runtime.settings
    catalog = await asyncio.to_thread(load_catalog, s.templates_dir)
    fpr = await runtime.bus.kv(BUCKET_FPR)
    inventory = InventorySource(s.inventory_path, **s.inventory_rules())
    vips = VipLeases(await runtime.bus.kv(BUCKET_VIPS), s.vip_pool_entries) if s.vip_pool else None
    return Focom(
        s,
        runtime.bus,
        # FPR records are rewritten on every child report; keeping a few decoded saves decoding them each time.
        RecordStore(fpr, FprRecord, cache=FPR_CACHE),
        RecordStore(fpr, SpecRecord),
        HostLeases(await runtime.bus.kv(BUCKET_HOSTS)),
        inventory,
        catalog,
        vips=vips,
    )


async def setup(runtime: ServiceRuntime[FocomSettings]) -> None:
    focom = await build(runtime)
    runtime.consume(FOCOM_REQUESTS_CONSUMER, focom.on_request, focom.on_decision)
    runtime.consume(FOCOM_CHILD_STATUS_CONSUMER, focom.on_child_status, focom.on_child_refusal)
    runtime.on_close(focom.writer.close)
    if runtime.settings.kube_enabled:
        # Imported here so that a focom without the Kubernetes face never loads the client library.
        from services.focom.kube_face import KubeFace

        face = await KubeFace.create(runtime.settings, runtime.bus, focom)
        runtime.on_close(face.close)
        runtime.consume(FOCOM_CR_STATUS_CONSUMER, face.on_status, face.on_refusal)
        runtime.background(face.run(runtime.stop), "focom-cr-watch")


def main() -> int:
    return run_service("focom", FocomSettings, setup)
