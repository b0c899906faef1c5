"""Small checks and error paths the request handlers share (pure: no I/O)."""

from __future__ import annotations

from collections.abc import Callable

from services.focom import request as rq
from services.focom.domain import FprRecord, Plan
from shared.errors import InputError
from shared.inventory import Inventory
from shared.payloads import FocomRequest


def ungated(plan: Plan, gated: bool) -> Plan:
    """Under change control, an approved FPR takes no new create unapproved (a replay is fine)."""
    if gated and not plan.replay:
        raise InputError(
            f"$.name [approval-required]: FOCOM request {plan.record.name!r} was approved as it is; "
            "ask for more clusters under a new name, to be approved",
            path="$.name",
            reason="ApprovalRequired",
        )
    return plan


def must(record: FprRecord | None, req: FocomRequest) -> FprRecord:
    """The FPR record a scale or delete works on (it vanished meanwhile: refused)."""
    if record is None:
        raise InputError(
            f"$.name [fpr-exists]: FOCOM request {req.name!r} disappeared", path="$.name", reason="UnknownFpr"
        )
    return record


def where_create(req: FocomRequest, inventory: Inventory) -> Callable[[str], str]:
    """Where a host of a create request comes from, for error paths."""
    if rq.mode_of(req) == "template":
        return lambda _h: "$.templateParameters.hosts"
    places: dict[str, str] = {}
    for i, cluster in enumerate(inventory.clusters):
        for role in ("cluster_masters", "cluster_workers"):
            for j, ref in enumerate(getattr(cluster, role)):
                places.setdefault(ref.host_id, f"inventory $.clusters[{i}].{role}[{j}].host_id")
    return lambda h: places.get(h, "$")
