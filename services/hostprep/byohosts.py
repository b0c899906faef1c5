"""Which hosts have a ByoHost: one shared list+watch per namespace, read by every waiting host.

The BYOH agent labels its ByoHost ``o2ims.oran.org/host-id=<id>``; hostprep watches ByoHosts
carrying that label itself (through ``shared.kube.KubeClient``) instead of waiting for
status_watcher's events, so a host completes as soon as its ByoHost exists, whoever else is
running. One watch per namespace serves all hosts of all jobs (a 410 re-lists, errors back off);
waits are bounded by the caller. Deletes are read from the API, never the cache, and guarded: only
unclaimed ByoHosts of the host id, each with uid/resourceVersion preconditions.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import structlog

from services.hostprep.domain import byohost_claimed, byohost_state
from services.hostprep.watched import Followed, Namespace
from shared.errors import PermanentError
from shared.kube import KubeClient
from shared.objects import HOST_ID_LABEL, deleting, labels_of, meta, name_of

log = structlog.get_logger(__name__)

INFRA_VERSION = "infrastructure.cluster.x-k8s.io/v1beta1"
KIND = "ByoHost"
Obj = dict[str, Any]
Predicate = Callable[[list[Obj]], bool]


def _host_id(obj: Obj) -> str | None:
    value = labels_of(obj).get(HOST_ID_LABEL)
    return str(value) if value else None


class ByoHostIndex:
    def __init__(self, client: KubeClient, *, watch_seconds: int = 300) -> None:
        self._client = client
        self._followed = Followed(client, INFRA_VERSION, KIND, _host_id, watch_seconds=watch_seconds)

    def _live(self, ns: Namespace, host_id: str) -> list[Obj]:
        return [o for o in ns.of(host_id) if not deleting(o)]

    async def wait(self, namespace: str, host_id: str, done: Predicate, timeout: float) -> list[Obj] | None:
        """The host's live ByoHosts once ``done`` holds for them, or None after ``timeout`` seconds."""
        ns = self._followed.namespace(namespace)
        try:
            async with asyncio.timeout(timeout):
                await ns.synced.wait()
                while not done(self._live(ns, host_id)):
                    await ns.changed(host_id).wait()
                return self._live(ns, host_id)
        except TimeoutError:
            return None

    async def present(self, namespace: str, host_id: str, timeout: float) -> list[Obj]:
        """The host's live ByoHosts as known now (waits at most ``timeout`` for the first list)."""
        ns = self._followed.namespace(namespace)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await ns.synced.wait()
        if not ns.synced.is_set():
            # The shared watch is not up (API trouble): ask directly.
            return await self.fetch(namespace, host_id)
        return self._live(ns, host_id)

    async def fetch(self, namespace: str, host_id: str) -> list[Obj]:
        """The host's live ByoHosts as the API has them now (not the cache, which may lag behind)."""
        items, _ = await self._client.list(INFRA_VERSION, KIND, namespace, label_selector=f"{HOST_ID_LABEL}={host_id}")
        return [o for o in items if not deleting(o)]

    async def delete_unclaimed(self, namespace: str, host_id: str, select: Callable[[Obj], bool]) -> list[str]:
        """Delete the host id's ByoHosts that ``select`` picks, as the API has them now (not the cache).

        A claimed one (``status.machineRef`` or the cluster label) is a live node: ``ByoHostClaimed``,
        nothing of it touched.
        Each delete carries the uid and resourceVersion just read, so one claimed (or replaced) since
        is refused by the server (409, retried from a fresh read).
        """
        items, _ = await self._client.list(INFRA_VERSION, KIND, namespace, label_selector=f"{HOST_ID_LABEL}={host_id}")
        chosen = [o for o in items if select(o) and not deleting(o)]
        for obj in chosen:
            if byohost_claimed(obj):
                state = byohost_state(obj)
                raise PermanentError(
                    f"{state.describe()}: a claimed ByoHost is a live node and is never deleted",
                    reason="ByoHostClaimed",
                )
        for obj in chosen:
            md = meta(obj)
            preconditions = {"uid": str(md.get("uid") or ""), "resourceVersion": str(md.get("resourceVersion") or "")}
            await self._client.delete(
                INFRA_VERSION,
                KIND,
                name_of(obj),
                namespace,
                preconditions={k: v for k, v in preconditions.items() if v},
            )
            log.info("byohost_deleted", namespace=namespace, host_id=host_id, name=name_of(obj))
        return [name_of(o) for o in chosen]

    async def close(self) -> None:
        await self._followed.close()
