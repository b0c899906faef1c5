"""Optional SSH reachability preflight: every host's SSH port must answer with an SSH banner.

Only a TCP connection and the server's identification line (``SSH-2.0-…``) are read; no login is
attempted and no credential is needed (those stay with hostprep). Bounded concurrency and a timeout
per host; the result is the list of unreachable hosts with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from shared.models import HostRef


async def _banner(host: HostRef, timeout: float) -> str | None:
    """None when the host answers like an SSH server, else why not."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host.host_ip, host.ssh_port)
            # RFC 4253 §4.2: the server may send other lines before the identification string.
            for _ in range(10):
                line = await reader.readline()
                if not line:
                    return "connection closed before an SSH banner"
                if line.startswith(b"SSH-"):
                    return None
            return "no SSH banner"
    except TimeoutError:
        return f"no answer within {timeout:g}s"
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def unreachable(hosts: Iterable[HostRef], *, timeout: float, concurrency: int) -> dict[str, str]:
    """host id → reason for every host whose SSH port does not answer."""
    slots = asyncio.Semaphore(concurrency)
    unique = {h.host_id: h for h in hosts}

    async def one(host: HostRef) -> tuple[str, str | None]:
        async with slots:
            return host.host_id, await _banner(host, timeout)

    results = await asyncio.gather(*(one(h) for h in unique.values()))
    return {
        host_id: f"{unique[host_id].host_ip}:{unique[host_id].ssh_port}: {why}"
        for host_id, why in results
        if why is not None
    }
