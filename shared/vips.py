"""The VIP pool: control-plane addresses handed out to clusters whose inventory entry names none.

The pool is configured as CIDRs and ``first-last`` ranges (``O2_FOCOM_VIP_POOL``). A VIP is leased
like a host (``shared.leases``): one key per address in the ``vips`` bucket, created (never
overwritten) with the owning PR as its value, so two requests can never hold one address. A PR
asking again gets the VIP it already holds (replays change nothing); o2ims releases it when the
cluster is deleted. Addresses are handed out in pool order, skipping a CIDR's network and
broadcast addresses, every address the caller excludes (the hosts', the VIPs the inventory names)
and any address inside the cluster's own pod or service network.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from nats.js.kv import KeyValue

from shared.errors import InputError
from shared.leases import Lease
from shared.models import IpAddr, IpNet, normalize_ip, parse_cidr, parse_ip
from shared.store import RecordConflict, RecordExists, RecordStore

#: Most addresses one allocation looks at before calling the pool exhausted (bounds the CPU a huge,
#: almost fully excluded pool could cost; any realistic pool is scanned whole).
MAX_SCAN = 1 << 20
#: Most pool entries (CIDRs or ranges) one setting may list.
MAX_ENTRIES = 256

Entry = tuple[IpAddr, IpAddr, IpNet | None]


def parse_pool(items: Iterable[str]) -> tuple[Entry, ...]:
    """``["10.0.0.0/28", "10.0.1.10-10.0.1.20", "10.0.2.5"]`` → (first, last, network or None) per entry.

    Strict like every address here: ASCII only, no zone ids, one IP version per range, first ≤ last.
    A CIDR hands out neither its network nor its broadcast address (except /31, /32 and IPv6's /127,
    /128, whose every address is usable).
    """
    out: list[Entry] = []
    for raw in items:
        item = raw.strip(" ")
        if not item:
            continue
        if len(out) >= MAX_ENTRIES:
            raise ValueError(f"at most {MAX_ENTRIES} VIP pool entries")
        if "/" in item:
            net = parse_cidr(item)
            usable = list(_edges(net))
            out.append((usable[0], usable[1], net))
            continue
        first_text, sep, last_text = item.partition("-")
        first = parse_ip(first_text.strip(" "))
        last = parse_ip(last_text.strip(" ")) if sep else first
        if first.version != last.version:
            raise ValueError(f"VIP range {item!r} mixes IPv4 and IPv6")
        if int(last) < int(first):
            raise ValueError(f"VIP range {item!r} ends before it starts")
        out.append((first, last, None))
    return tuple(out)


def _edges(net: IpNet) -> tuple[IpAddr, IpAddr]:
    if net.num_addresses <= 2:
        return net.network_address, net.broadcast_address
    # The network address (and, for IPv4, the broadcast address) is never a usable endpoint.
    last = net.broadcast_address - 1 if net.version == 4 else net.broadcast_address
    return net.network_address + 1, last


def pool_text(entries: tuple[Entry, ...]) -> list[str]:
    """The canonical text of a parsed pool (for logs and error messages)."""
    return [str(net) if net is not None else (f"{a}-{b}" if a != b else str(a)) for a, b, net in entries]


def candidates(entries: tuple[Entry, ...]) -> Iterator[IpAddr]:
    """Every address of the pool, in order, each once."""
    seen: set[IpAddr] = set()
    for first, last, _net in entries:
        addr = first
        while True:
            if addr not in seen:
                seen.add(addr)
                yield addr
            if addr == last:
                break
            addr = addr + 1


def first_free(entries: tuple[Entry, ...], *, exclude: Iterable[str] = (), avoid: Iterable[IpNet] = ()) -> str | None:
    """The first pool address outside ``exclude`` and ``avoid`` (what an allocation on an empty bucket
    would give; ``o2ctl plan`` previews with it), or None."""
    skip = {parse_ip(x) for x in exclude}
    nets = tuple(avoid)
    for scanned, addr in enumerate(candidates(entries)):
        if scanned >= MAX_SCAN:
            break
        if addr not in skip and not any(addr.version == n.version and addr in n for n in nets):
            return str(addr)
    return None


def key_of(vip: str) -> str:
    """The KV key of an address (``:`` is not a key character; canonical text keeps keys unique)."""
    return vip.replace(":", "_")


def vip_of(key: str) -> str:
    return key.replace("_", ":")


class VipPoolExhausted(InputError):
    """No free address is left in the pool for this cluster."""


class VipLeases:
    """Atomic VIP allocation from a pool over the ``vips`` KV bucket."""

    def __init__(self, kv: KeyValue, pool: tuple[Entry, ...]) -> None:
        self.store = RecordStore(kv, Lease)
        self.pool = pool

    async def all(self) -> dict[str, str]:
        """VIP → owner of every lease."""
        keys = await self.store.keys()
        slots = asyncio.Semaphore(64)

        async def one(key: str) -> tuple[str, str | None]:
            async with slots:
                got = await self.store.get(key)
                return vip_of(key), got[0].owner if got else None

        return {vip: owner for vip, owner in await asyncio.gather(*(one(k) for k in keys)) if owner is not None}

    async def held_by(self, owner: str) -> list[str]:
        return sorted(vip for vip, holder in (await self.all()).items() if holder == owner)

    async def allocate(
        self, owner: str, *, exclude: Iterable[str] = (), avoid: Iterable[IpNet] = (), path: str = "$"
    ) -> tuple[str, bool]:
        """The VIP ``owner`` holds, or a newly taken free one; returns ``(vip, taken_now)``.

        ``exclude``: addresses never handed out (canonical text: hosts' addresses, VIPs named in the
        inventory); ``avoid``: networks the address must lie outside (the cluster's pod and service
        CIDRs). Raises ``VipPoolExhausted`` (naming ``path``) when every address is taken.
        """
        held = await self.all()
        mine = sorted(vip for vip, holder in held.items() if holder == owner)
        if mine:
            return mine[0], False
        skip = {parse_ip(x) for x in exclude} | {parse_ip(v) for v in held}
        nets = tuple(avoid)
        for scanned, addr in enumerate(candidates(self.pool)):
            if scanned >= MAX_SCAN:
                break
            if addr in skip or any(addr.version == n.version and addr in n for n in nets):
                continue
            vip = str(addr)
            try:
                await self.store.create(key_of(vip), Lease(owner=owner, acquired_at=datetime.now(UTC)))
            except RecordExists:
                # Taken by a concurrent allocation since we listed the bucket: the next one, then.
                got = await self.store.get(key_of(vip))
                if got is not None and got[0].owner == owner:
                    return vip, False
                continue
            return vip, True
        raise VipPoolExhausted(
            f"{path} [vip-pool-exhausted]: no free address left in the VIP pool ({', '.join(pool_text(self.pool))})",
            path=path,
            reason="VipPoolExhausted",
        )

    async def release(self, owner: str, vips: Iterable[str] | None = None, *, keep: str | None = None) -> list[str]:
        """Release the given VIPs (default: every one, but ``keep``) that ``owner`` holds; returns those released.

        Given VIPs are looked up directly (no scan of the bucket); another owner's lease is never touched.
        """
        if vips is None:
            candidates = sorted(v for v, holder in (await self.all()).items() if holder == owner and v != keep)
        else:
            candidates = sorted({normalize_ip(v) for v in vips} - {keep})
        released = []
        for vip in candidates:
            got = await self.store.get(key_of(vip))
            if got is None or got[0].owner != owner:
                continue
            # Revision-checked: never remove a lease someone else took after us.
            with contextlib.suppress(RecordConflict):
                await self.store.delete(key_of(vip), got[1])
                released.append(vip)
        return released
