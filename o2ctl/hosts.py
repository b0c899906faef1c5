"""``o2ctl host``: the host leases, and clearing the quarantine of a host whose teardown failed.

A host whose teardown failed or timed out is quarantined (``shared.leases``): leased to no one, so no
request can take it, until an operator has looked at the host (and reset it by hand if need be) and
clears it with ``o2ctl host clear-quarantine HOST``.
"""

from __future__ import annotations

import sys

from o2ctl import client
from o2ctl.output import emit, machine, printable, table
from shared.leases import HostLeases
from shared.subjects import BUCKET_HOSTS

EXIT_OK, EXIT_FAILED = 0, 1


async def list_hosts(t: client.Target, output: str) -> int:
    """Every leased host: its owner (a PR, or quarantine with the reason)."""
    bus = await client.open_bus(t)
    try:
        leases = HostLeases(await bus.kv(BUCKET_HOSTS))
        owners = await leases.all()
        marked = await leases.quarantined()
    finally:
        await bus.close()
    rows = []
    for host_id, owner in sorted(owners.items()):
        lease = marked.get(host_id)
        rows.append(
            {
                "host": host_id,
                "owner": owner,
                "quarantined": lease is not None,
                "reason": lease.reason if lease else None,
                "previous_owner": lease.previous_owner if lease else None,
                "since": lease.acquired_at.isoformat() if lease else None,
            }
        )
    if machine(output):
        emit(rows, output)
        return EXIT_OK
    table(
        "host leases",
        ["host", "owner", "since", "reason"],
        [[r["host"], r["owner"], r["since"] or "", r["reason"] or ""] for r in rows],
        footer=f"{len(marked)} quarantined: `o2ctl host clear-quarantine HOST` once a host is clean"
        if marked
        else None,
    )
    return EXIT_OK


async def clear_quarantine(t: client.Target, host_id: str) -> int:
    bus = await client.open_bus(t)
    try:
        cleared = await HostLeases(await bus.kv(BUCKET_HOSTS)).clear_quarantine(host_id)
    finally:
        await bus.close()
    if not cleared:
        print(f"o2ctl host: {printable(host_id)} is not quarantined", file=sys.stderr)
        return EXIT_FAILED
    print(f"{printable(host_id)}: quarantine cleared; the host can be leased again")
    return EXIT_OK
