"""focom's ``upgrade`` operation: each targeted cluster to the version the inventory or the template now names.

Clusters already at that version are left alone (so a re-submitted request changes nothing once decided:
the stored spec is the upgraded one). The version rules of ``shared.upgrades`` are checked before anything
is leased; a single control plane gets a spare host, picked from the inventory's unassigned hosts that
no request holds and leased with the decision (refused with ``NoSpareHost`` when there is none). Each
cluster then gets a PR update with its new spec; o2ims carries the upgrade out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from services.focom import domain, guards
from services.focom import request as rq
from shared import focom_upgrade as up
from shared.messages import Envelope
from shared.models import ClusterSpec
from shared.payloads import FocomRequest
from shared.upgrades import no_spare, version_refusal

if TYPE_CHECKING:
    from services.focom.handlers import Focom


async def upgrade_clusters(focom: Focom, req: FocomRequest, env: Envelope) -> None:
    """Move the targeted clusters to the version the inventory or template names now (clusters already
    there are left alone); a single control plane gets a spare host, leased with the decision."""
    record = await focom.existing_record(req)
    targets = rq.target_clusters(req, {c: ch.desired for c, ch in record.children.items()})
    inventory = await focom.inventory.get()
    picked: set[str] = set()
    new_specs: list[ClusterSpec] = []
    spares: list[str] = []
    for cluster in targets:
        child = record.children[cluster]
        current = await focom.spec_of(req.name, child)
        version, where = up.upgrade_version(req, cluster, inventory, focom.settings.k8s_window)
        if version == current.k8s_version:
            continue  # there already (or decided already: the stored spec is the upgraded one)
        refusal = version_refusal(current.k8s_version, version)
        if refusal is not None:
            up.refuse_upgrade(req, cluster, refusal, where)
        spare = None
        if len(current.control_plane) == 1:
            spare = await _free_spare(focom, up.upgrade_spare_candidates(current, inventory), picked)
            if spare is None:
                up.refuse_upgrade(req, cluster, no_spare(current), "$.clusterNames")
            picked.add(spare)
            spares.append(spare)
        new_specs.append(up.upgraded_spec(req, current, version, spare, inventory))
    req_digest = domain.request_digest(rq.request_fields(req), new_specs)
    if focom.settings.ssh_preflight and spares and record.digest != req_digest:
        refs = {h.host_id: h for s in new_specs for h in s.control_plane}
        await focom.preflight([refs[h] for h in spares], lambda _h: "$.clusterNames")
    now = datetime.now(UTC)
    plan, revision = await focom.commit.decide(
        req.name,
        lambda rec: domain.plan_scale(guards.must(rec, req), new_specs, req_digest, now, "upgrade"),
        lambda _h: "$.clusterNames",
    )
    await focom.commit.carry_out(plan, revision, {s.name: s for s in new_specs}, env)


async def _free_spare(focom: Focom, candidates: list[str], picked: set[str]) -> str | None:
    """The first candidate no request holds (not even this PR: a host it still holds may be leaving it)."""
    for host_id in candidates:
        if host_id not in picked and await focom.leases.owner_of(host_id) is None:
            return host_id
    return None
