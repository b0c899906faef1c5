"""Connections that the simulated BYOH agents of one process share with the API server.

Every agent has its own clients and sends its own token with every request, but each opened three TLS
connections of its own (its bootstrap client, its watch, its requests), and a TLS handshake costs both
ends more CPU than the requests that follow: in a process of a hundred agents it was a tenth of the
sandbox's CPU. Clients whose connections would be set up alike (the same CA, the server certificate
verified, no client certificate, no proxy) take them from one aiohttp connector per event loop instead.
What an agent asks and as whom is unchanged: the server authenticates each request by its own bearer
token, exactly as before. The connector closes with the last client that uses it.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from shared.kube import KubeClient


@dataclass
class _Pool:
    connector: aiohttp.TCPConnector
    users: int = 0


#: Per event loop (a connector belongs to one), per TLS setting.
_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[bytes, _Pool]] = weakref.WeakKeyDictionary()


class Lease:
    """A client's use of a shared connector; ``release()`` once the client is closed."""

    def __init__(self, pools: dict[bytes, _Pool], key: bytes, pool: _Pool) -> None:
        self._pools, self._key, self._pool = pools, key, pool
        self._released = False

    async def release(self) -> None:
        if self._released:
            return
        self._released = True
        self._pool.users -= 1
        if self._pool.users == 0:
            if self._pools.get(self._key) is self._pool:
                del self._pools[self._key]
            await self._pool.connector.close()


async def _tls_key(cfg: Any) -> bytes | None:
    """What sets up a connection to the server (its address and the CA's bytes); None: not shared."""
    host = str(cfg.host or "")
    strict_off = bool(getattr(cfg, "disable_strict_ssl_verification", False))
    if not host.startswith("https://") or not cfg.verify_ssl or strict_off:
        return None
    if cfg.cert_file or cfg.key_file or cfg.proxy or getattr(cfg, "tls_server_name", None):
        return None
    if cfg.ca_cert_data:
        ca = cfg.ca_cert_data if isinstance(cfg.ca_cert_data, bytes) else str(cfg.ca_cert_data).encode()
    elif cfg.ssl_ca_cert:
        ca = await asyncio.to_thread(Path(cfg.ssl_ca_cert).read_bytes)
    else:
        return None  # the system's CAs: rare for a sandbox agent, and not worth keying
    return hashlib.sha256(host.encode() + b"\0" + ca).digest()


async def share(client: KubeClient) -> Lease | None:
    """Give a client that has not sent a request yet the shared connector of its TLS setting.

    Returns None (the client keeps a connector of its own) when its setting is not one to share.
    """
    api: Any = client._api  # the kubernetes ApiClient inside the project's own adapter
    rest = api.rest_client
    if rest.pool_manager is not None:
        return None  # it already has its session, and with it its connector
    cfg = api.configuration
    key = await _tls_key(cfg)
    if key is None:
        return None
    pools = _POOLS.setdefault(asyncio.get_running_loop(), {})
    pool = pools.get(key)
    if pool is None or pool.connector.closed:
        # No limit: every agent's watch holds a connection for as long as it runs.
        pool = pools[key] = _Pool(aiohttp.TCPConnector(limit=0, ssl=rest.ssl_context))
    pool.users += 1
    # The session the client creates on its first request takes this connector (and does not own it).
    cfg.client_session_kwargs = {**(cfg.client_session_kwargs or {}), "connector": pool.connector}
    return Lease(pools, key, pool)
