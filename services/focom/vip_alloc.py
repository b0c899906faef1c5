"""VIPs from the pool for the HA clusters of a request: taken all together, given back together on refusal."""

from __future__ import annotations

import asyncio

import structlog

from services.focom import request as rq
from shared.errors import InputError
from shared.inventory import Inventory
from shared.models import DEFAULT_POD_CIDR, DEFAULT_SERVICE_CIDR, IpNet, parse_cidr
from shared.payloads import pr_id_for
from shared.vips import Entry, VipLeases, first_free

log = structlog.get_logger(__name__)


def _avoid(w: rq.Wanted) -> list[IpNet]:
    """A cluster's own pod and service networks: never its VIP."""
    return [
        parse_cidr(w.cluster.pod_cidr or DEFAULT_POD_CIDR),
        parse_cidr(w.cluster.service_cidr or DEFAULT_SERVICE_CIDR),
    ]


async def allocate(
    vips: VipLeases | None, fpr: str, wanted: list[rq.Wanted], inventory: Inventory
) -> tuple[dict[str, str], dict[str, str]]:
    """cluster → VIP for every wanted cluster that needs one from the pool, and PR id → VIP of those taken now.

    A PR that already holds a VIP (a replay, or a cluster created before) keeps it.
    """
    need = [w for w in wanted if w.needs_vip]
    if not need:
        return {}, {}
    assert vips is not None  # validation refused HA clusters without a VIP when no pool is configured
    exclude = rq.vip_exclusions(inventory)
    out: dict[str, str] = {}
    taken: dict[str, str] = {}
    try:
        for w in need:
            owner = pr_id_for(fpr, w.cluster.cluster_name)
            vip, new = await vips.allocate(owner, exclude=exclude, avoid=_avoid(w), path=w.vip_path)
            out[w.cluster.cluster_name] = vip
            if new:
                taken[owner] = vip
    except BaseException:
        await asyncio.shield(release(vips, taken))
        raise
    if taken:
        log.info("vips_allocated", fpr=fpr, vips=sorted(taken.values()))
    return out, taken


async def release(vips: VipLeases | None, taken: dict[str, str]) -> None:
    """Give back the VIPs taken by one call (PR id → VIP)."""
    if vips is None:
        return
    for owner, vip in taken.items():
        await vips.release(owner, [vip])


def preview(wanted: list[rq.Wanted], inventory: Inventory, pool: tuple[Entry, ...]) -> dict[str, str]:
    """The VIPs the clusters would get from the pool now (the plan shown for approval; leased on approval)."""
    out: dict[str, str] = {}
    exclude = rq.vip_exclusions(inventory)
    for w in wanted:
        if not w.needs_vip:
            continue
        vip = first_free(pool, exclude=exclude | set(out.values()), avoid=_avoid(w))
        if vip is None:
            raise InputError(
                f"{w.vip_path} [vip-pool-exhausted]: the VIP pool has no free address",
                path=w.vip_path,
                reason="VipPoolExhausted",
            )
        out[w.cluster.cluster_name] = vip
    return out
