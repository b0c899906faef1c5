"""focom's message handlers: FOCOM requests in, PR commands out; o2ims status in, FPR status out.

A request is validated whole (shape, inventory, templates, the FPR's clusters) before anything
happens; then, in a loop that re-reads on conflict: plan (pure) → take every host lease of the batch
(all or nothing) → write the FPR record with a revision check. Only after the write are the cluster
specs stored and the PR commands published, with ids derived from (FPR, PR, generation, command), so
a redelivered or re-submitted request re-publishes duplicates the stream drops and changes nothing.
A refused request raises ``InputError`` naming the JSON path and rule: no PR, no lease, no record.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import assert_never

import structlog

from services.focom import domain, guards, vip_alloc
from services.focom import request as rq
from services.focom.commit import MAX_ATTEMPTS, Committer
from services.focom.domain import FprRecord, Plan
from services.focom.inventory_source import InventorySource
from services.focom.preflight import unreachable
from services.focom.rollup import FprWriter
from services.focom.settings import FocomSettings
from services.focom.specs import SpecRecord, spec_key
from services.focom.upgrade import upgrade_clusters
from shared.bus import Bus, MessageContext
from shared.catalog import Catalog
from shared.errors import InputError, TemporaryError
from shared.inventory import Inventory
from shared.leases import HostLeases
from shared.messages import Envelope, derive_id
from shared.models import DNS1123_LABEL, ClusterSpec, HostRef
from shared.payloads import (
    FocomDecision,
    FocomRequest,
    FprStatus,
    MessageFailed,
    PlannedCluster,
    PrRequest,
    PrStatus,
    pr_id_for,
)
from shared.safe_json import Problem
from shared.store import RecordConflict, RecordExists, RecordStore
from shared.subjects import focom_status, last_token
from shared.vips import VipLeases

log = structlog.get_logger(__name__)

_NAME = re.compile(DNS1123_LABEL)
_PR_REQUEST = str(PrRequest.model_fields["type"].default)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Focom:
    """The handlers and what they share; built once in ``app.setup``."""

    def __init__(
        self,
        settings: FocomSettings,
        bus: Bus,
        records: RecordStore[FprRecord],
        specs: RecordStore[SpecRecord],
        leases: HostLeases,
        inventory: InventorySource,
        catalog: Catalog,
        *,
        vips: VipLeases | None = None,
    ) -> None:
        self.settings = settings
        #: The VIP pool (None when ``O2_FOCOM_VIP_POOL`` is empty: HA clusters must name their VIP).
        self.vips = vips
        self.bus = bus
        self.records = records
        self.specs = specs
        self.leases = leases
        self.inventory = inventory
        self.catalog = catalog
        self.writer = FprWriter(records, self.publish_status)
        self.commit = Committer(bus, records, specs, leases, self.publish_status)

    # ── status ──────────────────────────────────────────────────────────────────────────

    async def publish_status(self, record: FprRecord, revision: int, cause: Envelope | None = None) -> None:
        env = Envelope.wrap(
            domain.status_of(record),
            source=self.bus.source,
            correlation_id=record.name,
            cause=cause,
            id=derive_id("focom.status", record.name, revision),
        )
        await self.bus.publish(focom_status(record.name), env)

    async def current_status(self, name: str) -> FprStatus | None:
        got = await self.records.get(name)
        return domain.status_of(got[0]) if got else None

    async def on_child_status(self, status: PrStatus, ctx: MessageContext) -> None:
        """Fold an o2ims report into the FPR record."""
        now = utcnow()
        await self._fold(status.fpr, lambda r: domain.apply_status(r, status, now))

    async def on_child_refusal(self, failed: MessageFailed, ctx: MessageContext) -> None:
        """Fold o2ims's refusal of our command into the FPR record (other failures are not ours)."""
        if failed.message_type != _PR_REQUEST:
            return
        now, pr_id = utcnow(), last_token(ctx.subject)
        await self._fold(
            ctx.envelope.correlation_id, lambda r: domain.apply_refusal(r, pr_id, failed.reason, failed.error, now)
        )

    async def _fold(self, name: str, change: Callable[[FprRecord], FprRecord]) -> None:
        if len(name) > 63 or not _NAME.fullmatch(name):
            log.warning("child_status_ignored", reason="not an FPR name", fpr=name[:80])
            return
        await self.writer.change(name, change)

    # ── requests ────────────────────────────────────────────────────────────────────────

    async def on_request(self, req: FocomRequest, ctx: MessageContext) -> None:
        env = ctx.envelope
        rq.check_shape(req, max_clusters=self.settings.max_clusters_per_request)
        match req.operation:
            case "create":
                await self._create(req, env)
            case "scale":
                await self._scale(req, env)
            case "delete":
                await self._delete(req, env)
            case "upgrade":
                await self._upgrade(req, env)
            case _:
                assert_never(req.operation)

    async def _create(self, req: FocomRequest, env: Envelope, *, approved: bool = False) -> None:
        inventory = await self.inventory.get()
        s = self.settings
        wanted = rq.create_targets(
            req,
            inventory,
            self.catalog,
            window=s.k8s_window,
            vip_pool=self.vips is not None,
            max_clusters=s.max_clusters_per_request,
        )
        gated = s.require_approval and not approved
        if gated:
            existing = await self.records.get(req.name)
            if existing is None or existing[0].awaiting_approval:
                await self._hold(req, wanted, inventory, env)
                return
        vips, taken = await vip_alloc.allocate(self.vips, req.name, wanted, inventory)
        try:
            specs = rq.create_specs(req, wanted, default_cni=s.default_cni, vips=vips)
            req_digest = domain.request_digest(rq.request_fields(req), specs)
            existing = await self.records.get(req.name)
            where = guards.where_create(req, inventory)
            if s.ssh_preflight and not (existing and existing[0].digest == req_digest):
                await self.preflight([h for spec in specs for h in spec.all_hosts], where)
            now = utcnow()

            def planner(rec: FprRecord | None) -> Plan:
                return guards.ungated(domain.plan_create(domain.approved(rec), req.name, specs, req_digest, now), gated)

            plan, revision = await self.commit.decide(req.name, planner, where)
        except BaseException:
            # Nothing was accepted: the VIPs this call took go back to the pool.
            await asyncio.shield(vip_alloc.release(self.vips, taken))
            raise
        await self.commit.carry_out(plan, revision, {s.name: s for s in specs}, env)

    async def _hold(self, req: FocomRequest, wanted: list[rq.Wanted], inventory: Inventory, env: Envelope) -> None:
        """Change control: record the request and its plan in ``PendingApproval``; lease and prepare nothing.

        The request is validated whole (VIPs as a preview from the pool), and hosts another request holds
        now refuse it at once; approval checks everything again.
        """
        s = self.settings
        preview = vip_alloc.preview(wanted, inventory, s.vip_pool_entries) if self.vips is not None else {}
        specs = rq.create_specs(req, wanted, default_cni=s.default_cni, vips=preview)
        where = guards.where_create(req, inventory)
        for spec in specs:
            own = pr_id_for(req.name, spec.name)
            for host in spec.all_hosts:
                holder = await self.leases.owner_of(host.host_id)
                if holder not in (None, own):
                    path = where(host.host_id)
                    raise InputError(
                        f"{path} [host-leased]: host {host.host_id!r} is held by PR {holder} (another "
                        "request); nothing was recorded",
                        path=path,
                        reason="HostLeased",
                    )
        plan = tuple(
            PlannedCluster(
                cluster=sp.name,
                pr_id=pr_id_for(req.name, sp.name),
                control_plane=tuple(h.host_id for h in sp.control_plane),
                workers=tuple(h.host_id for h in sp.workers),
            )
            for sp in specs
        )
        fields = rq.request_fields(req)
        for _ in range(MAX_ATTEMPTS):
            got = await self.records.get(req.name)
            if got is not None and not got[0].awaiting_approval:
                raise TemporaryError(f"FPR {req.name!r} was approved meanwhile", delay=0.5)
            if got is not None and got[0].pending == fields and got[0].phase == "PendingApproval":
                await self.publish_status(got[0], got[1], cause=env)  # a replay: the same request waits already
                return
            record = domain.hold(got[0] if got else None, req.name, fields, plan, utcnow())
            try:
                revision = (
                    await self.records.create(req.name, record)
                    if got is None
                    else await self.records.update(req.name, record, got[1])
                )
            except (RecordConflict, RecordExists):
                continue
            await self.publish_status(record, revision, cause=env)
            log.info("fpr_awaiting_approval", fpr=req.name, clusters=len(plan))
            return
        raise TemporaryError(f"FPR {req.name!r} kept changing while being written", delay=0.5)

    async def on_decision(self, decision: FocomDecision, ctx: MessageContext) -> None:
        """An approver's answer to a request in ``PendingApproval`` (idempotent: a replay changes nothing)."""
        got = await self.records.get(decision.name)
        match decision.decision:
            case "approve":
                if got is None:
                    raise InputError(
                        f"$.name [pending-approval]: no FOCOM request {decision.name!r} waits for approval",
                        path="$.name",
                        reason="NotPendingApproval",
                    )
                record = got[0]
                if not record.awaiting_approval:
                    log.info("fpr_approval_replayed", fpr=decision.name, phase=record.phase)
                    return
                assert record.pending is not None
                req = FocomRequest.model_validate(record.pending)
                try:
                    await self._create(req, ctx.envelope, approved=True)
                except InputError as exc:
                    # Hosts taken meanwhile (or an inventory that changed): the request stays, Failed, with why.
                    why = str(exc)
                    await self.writer.change(decision.name, lambda r: domain.approval_failed(r, why, utcnow()))
                    log.info("fpr_approval_failed", fpr=decision.name, reason=exc.reason)
                    return
                log.info("fpr_approved", fpr=decision.name, by=decision.by)
            case "reject":
                await self._reject(decision, got, ctx.envelope)
            case _:
                assert_never(decision.decision)

    async def _reject(self, decision: FocomDecision, got: tuple[FprRecord, int] | None, env: Envelope) -> None:
        if got is not None and not got[0].awaiting_approval:
            raise InputError(
                f"$.name [pending-approval]: FOCOM request {decision.name!r} was approved already "
                f"(phase {got[0].phase}); delete it instead",
                path="$.name",
                reason="NotPendingApproval",
            )
        if got is not None:
            try:
                await self.records.delete(decision.name, got[1])
            except RecordConflict:
                raise TemporaryError(f"FPR {decision.name!r} changed while being rejected", delay=0.5) from None
        by = f" by {decision.by}" if decision.by else ""
        status = FprStatus(
            name=decision.name,
            phase="Deleted",
            message=f"rejected{by}; nothing was leased",
            updated_at=utcnow(),
            operation="create",
        )
        out = Envelope.wrap(
            status,
            source=self.bus.source,
            correlation_id=decision.name,
            cause=env,
            id=derive_id("focom.status.rejected", env.id),
        )
        await self.bus.publish(focom_status(decision.name), out)
        log.info("fpr_rejected", fpr=decision.name, by=decision.by)

    async def _scale(self, req: FocomRequest, env: Envelope) -> None:
        record = await self.existing_record(req)
        targets = rq.target_clusters(req, {c: ch.desired for c, ch in record.children.items()})
        inventory = await self.inventory.get()
        picked: set[str] = set()
        new_specs = []
        for cluster in targets:
            child = record.children[cluster]
            current = await self.spec_of(req.name, child)
            explicit = rq.wanted_workers(req, cluster, inventory)
            if explicit is not None:
                new = rq.resolve_workers(req, current, explicit[0], explicit[1], inventory)
            else:
                assert req.targetWorkerCount is not None
                need = req.targetWorkerCount - len(current.workers)
                free = await self._free_hosts(rq.free_candidates(current, inventory), child.pr_id, need, picked)
                new = rq.resize(req, current, req.targetWorkerCount, free, inventory)
            picked.update(h.host_id for h in new.workers)
            new_specs.append(new)
        req_digest = domain.request_digest(rq.request_fields(req), new_specs)
        if self.settings.ssh_preflight and record.digest != req_digest:
            before = {h for c in record.children.values() for h in c.hosts}
            await self.preflight(
                [h for s in new_specs for h in s.workers if h.host_id not in before], lambda _h: "$.workers"
            )
        now = utcnow()
        plan, revision = await self.commit.decide(
            req.name,
            lambda rec: domain.plan_scale(guards.must(rec, req), new_specs, req_digest, now),
            lambda _h: "$.targetWorkerCount" if req.targetWorkerCount is not None else "$.workers",
        )
        await self.commit.carry_out(plan, revision, {s.name: s for s in new_specs}, env)

    async def _upgrade(self, req: FocomRequest, env: Envelope) -> None:
        await upgrade_clusters(self, req, env)

    async def _delete(self, req: FocomRequest, env: Envelope) -> None:
        got = await self.records.get(req.name)
        if got is None:
            # Nothing was ever accepted under this name: deleting it is done already.
            status = FprStatus(
                name=req.name, phase="Deleted", message="nothing to delete", updated_at=utcnow(), operation="delete"
            )
            out = Envelope.wrap(
                status,
                source=self.bus.source,
                correlation_id=req.name,
                cause=env,
                id=derive_id("focom.status.absent", env.id),
            )
            await self.bus.publish(focom_status(req.name), out)
            return
        targets = rq.target_clusters(req, {c: ch.desired for c, ch in got[0].children.items()})
        req_digest = domain.request_digest(rq.request_fields(req), [])
        now = utcnow()
        plan, revision = await self.commit.decide(
            req.name, lambda rec: domain.plan_delete(guards.must(rec, req), targets, req_digest, now), lambda _h: "$"
        )
        await self.commit.carry_out(plan, revision, {}, env)

    # ── steps ───────────────────────────────────────────────────────────────────────────

    async def existing_record(self, req: FocomRequest) -> FprRecord:
        got = await self.records.get(req.name)
        if got is None:
            raise InputError(
                f"$.name [fpr-exists]: no FOCOM request {req.name!r} to {req.operation}; create it first",
                path="$.name",
                reason="UnknownFpr",
            )
        return got[0]

    async def spec_of(self, name: str, child: domain.Child) -> ClusterSpec:
        got = await self.specs.get(spec_key(name, child.cluster))
        if got is None or domain.spec_digest(got[0].spec) != child.spec_digest:
            # The spec is stored right after the record write; a crash in between is healed on redelivery.
            raise TemporaryError(f"spec of cluster {child.cluster!r} is not recorded yet", delay=1.0)
        return got[0].spec

    async def _free_hosts(self, candidates: list[str], pr_id: str, need: int, picked: set[str]) -> list[str]:
        free: list[str] = []
        for host_id in candidates:
            if len(free) >= need:
                break
            if host_id not in picked and await self.leases.owner_of(host_id) in (None, pr_id):
                free.append(host_id)
        return free

    async def preflight(self, hosts: list[HostRef], where: Callable[[str], str]) -> None:
        s = self.settings
        bad = await unreachable(hosts, timeout=s.ssh_preflight_timeout, concurrency=s.ssh_preflight_concurrency)
        if bad:
            problems = [
                Problem(where(h), "ssh-reachable", f"host {h!r} is unreachable ({why})")
                for h, why in sorted(bad.items())
            ]
            raise rq.RequestError(problems)
