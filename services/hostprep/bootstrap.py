"""BootstrapKubeconfig objects in the management cluster, one per host, through ``shared.kube.KubeClient``.

The BYOH controller fills ``status.bootstrapKubeconfigData`` once per object, with a bootstrap
token that lives 30 minutes; so a host gets a fresh object (deleted and re-created under the
same name, derived from its host id) whenever the old one is older than ``max_age``. The
kubeconfig's server is ``spec.apiserver``: the management API URL as the HOSTS reach it. The
kubeconfig is a secret: it is returned as ``SecretBytes`` and never logged.

Hosts waiting for their object (to be filled, or to be gone) read one shared list+watch per namespace
of the objects carrying the host-id label, each woken only by its own object's changes, as
``byohosts.py`` does for ByoHosts: one watch per waiting host held one of the client's connections
for the whole wait, so a few hundred hosts at this step queued every other request behind them until
they timed out. The cache may lag behind the API, so a wait names the uid it must not accept (the
object just deleted) and a stale copy never passes for the new one.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import SecretBytes

from services.hostprep.domain import bootstrap_kubeconfig_name
from shared.errors import PermanentError, TemporaryError, classify
from shared.kube import KubeClient, WatchExpired
from shared.objects import HOST_ID_LABEL, deleting, meta, name_of

log = structlog.get_logger(__name__)

INFRA_VERSION = "infrastructure.cluster.x-k8s.io/v1beta1"
KIND = "BootstrapKubeconfig"
FIELD_MANAGER = "o2ims-hostprep"
Obj = dict[str, Any]
Done = Callable[[Obj | None], bool]


@dataclass(frozen=True)
class IssuedKubeconfig:
    name: str
    data: SecretBytes
    sha256: str
    age: float


def _age(obj: Mapping[str, Any]) -> float:
    stamp = meta(obj).get("creationTimestamp")
    if not stamp:
        return float("inf")
    try:
        created = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return float("inf")
    return max(0.0, (datetime.now(UTC) - created).total_seconds())


def _issued(obj: Mapping[str, Any] | None) -> IssuedKubeconfig | None:
    if obj is None or deleting(obj):
        return None
    data = (obj.get("status") or {}).get("bootstrapKubeconfigData")
    if not data:
        return None
    raw = str(data).encode()
    return IssuedKubeconfig(
        name=str(obj["metadata"]["name"]), data=SecretBytes(raw), sha256=hashlib.sha256(raw).hexdigest(), age=_age(obj)
    )


class BootstrapKubeconfigs:
    def __init__(
        self,
        client: KubeClient,
        *,
        api_url: str,
        ca_data: str,
        wait_timeout: float,
        max_age: float,
        watch_seconds: int = 300,
    ) -> None:
        self._client = client
        self._watch_seconds = watch_seconds
        self._namespaces: dict[str, _Namespace] = {}
        self._api_url = api_url
        self._ca_data = ca_data
        self._wait_timeout = wait_timeout
        self._max_age = max_age

    async def current(self, namespace: str, host_id: str) -> IssuedKubeconfig | None:
        """The host's issued kubeconfig if its object exists, is filled and younger than ``max_age``."""
        obj = await self._client.get(INFRA_VERSION, KIND, bootstrap_kubeconfig_name(host_id), namespace)
        issued = _issued(obj)
        if issued is None or issued.age >= self._max_age:
            return None
        if obj is not None and (obj.get("spec") or {}).get("apiserver") != self._api_url:
            return None
        return issued

    async def issue(self, namespace: str, host_id: str) -> IssuedKubeconfig:
        """A usable kubeconfig for the host: the current one, or a freshly created object's."""
        found = await self.current(namespace, host_id)
        if found is not None:
            return found
        name = bootstrap_kubeconfig_name(host_id)
        deadline = time.monotonic() + self._wait_timeout
        obj = await self._client.get(INFRA_VERSION, KIND, name, namespace)
        if (
            obj is not None
            and _issued(obj) is None
            and not deleting(obj)
            and _age(obj) < self._max_age
            and (obj.get("spec") or {}).get("apiserver") == self._api_url
        ):
            # Created by an earlier attempt and not filled yet: wait for it rather than replace it.
            return await self._wait_filled(namespace, name, deadline, stale=None)
        stale = _uid(obj)
        if obj is not None:
            await self._client.delete(INFRA_VERSION, KIND, name, namespace)
            await self._wait(namespace, name, lambda o: o is None or _uid(o) != stale, deadline, "to be deleted")
        body = {
            "apiVersion": INFRA_VERSION,
            "kind": KIND,
            "metadata": {"name": name, "namespace": namespace, "labels": {HOST_ID_LABEL: host_id}},
            "spec": {"apiserver": self._api_url, "certificate-authority-data": self._ca_data},
        }
        try:
            await self._client.create(body)
        except TemporaryError:
            raise
        except PermanentError as exc:
            if exc.reason != "AlreadyExists":
                raise
            if stale is not None:
                # The cache saw the old object gone before the API did: try again from a fresh read.
                raise TemporaryError(
                    f"BootstrapKubeconfig {namespace}/{name} is still being replaced", reason="BootstrapKubeconfigBusy"
                ) from None
        log.info("bootstrap_kubeconfig_created", host_id=host_id, namespace=namespace, name=name)
        return await self._wait_filled(namespace, name, deadline, stale=stale)

    async def delete(self, namespace: str, host_id: str) -> bool:
        return await self._client.delete(INFRA_VERSION, KIND, bootstrap_kubeconfig_name(host_id), namespace)

    async def exists(self, namespace: str, host_id: str) -> bool:
        return await self._client.get(INFRA_VERSION, KIND, bootstrap_kubeconfig_name(host_id), namespace) is not None

    async def _wait_filled(self, namespace: str, name: str, deadline: float, *, stale: str | None) -> IssuedKubeconfig:
        """The object's kubeconfig once filled; never the replaced object's (uid ``stale``) the cache may still hold."""

        def filled(obj: Obj | None) -> bool:
            return _issued(obj) is not None and _uid(obj) != stale

        obj = await self._wait(namespace, name, filled, deadline, "to get its kubeconfig")
        issued = _issued(obj)
        assert issued is not None
        return issued

    async def _wait(self, namespace: str, name: str, done: Done, deadline: float, what: str) -> Obj | None:
        """The object (None = absent) once ``done`` holds for it in the shared cache, bounded by ``deadline``."""
        ns = self._ns(namespace)
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await ns.synced.wait()
                while not done(ns.objects.get(name)):
                    await ns.changed(name).wait()
                return ns.objects.get(name)
        except TimeoutError:
            pass
        raise TemporaryError(
            f"BootstrapKubeconfig {namespace}/{name} did not come {what} within {self._wait_timeout:g}s "
            "(is the BYOH controller running?)",
            reason="BootstrapKubeconfigTimeout",
        )

    def _ns(self, namespace: str) -> _Namespace:
        ns = self._namespaces.get(namespace)
        if ns is None:
            ns = self._namespaces[namespace] = _Namespace()
            ns.task = asyncio.create_task(self._follow(namespace, ns), name=f"bootstrapkubeconfig-watch:{namespace}")
        return ns

    async def close(self) -> None:
        tasks = [ns.task for ns in self._namespaces.values() if ns.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._namespaces.clear()

    async def _follow(self, namespace: str, ns: _Namespace) -> None:
        failures = 0
        while True:
            try:
                items, rv = await self._client.list(INFRA_VERSION, KIND, namespace, label_selector=HOST_ID_LABEL)
                ns.replace(items)
                ns.synced.set()
                failures = 0
                while True:
                    async for event in self._client.watch(
                        INFRA_VERSION,
                        KIND,
                        namespace,
                        resource_version=rv,
                        label_selector=HOST_ID_LABEL,
                        timeout_seconds=self._watch_seconds,
                    ):
                        rv = str(meta(event.object).get("resourceVersion") or rv)
                        if event.type == "BOOKMARK":
                            continue
                        ns.put(name_of(event.object), None if event.type == "DELETED" else event.object)
            except WatchExpired:
                continue
            except Exception as exc:
                err = classify(exc)
                failures += 1
                log.warning(
                    "bootstrap_kubeconfig_watch_failed", namespace=namespace, reason=err.reason, error=err.message
                )
                # Back off while the API is unhappy; the next round re-lists (waits stay bounded by their deadline).
                await asyncio.sleep(min(0.5 * 2**failures, 30.0))


class _Namespace:
    """The BootstrapKubeconfigs of one namespace by name, and who waits on which name."""

    def __init__(self) -> None:
        self.objects: dict[str, Obj] = {}
        self.synced = asyncio.Event()
        #: One event per waited-on name, set (and dropped) at that object's next change: a thousand waiting
        #: hosts are not all woken by each one's event.
        self._waiting: dict[str, asyncio.Event] = {}
        self.task: asyncio.Task[None] | None = None

    def changed(self, name: str) -> asyncio.Event:
        event = self._waiting.get(name)
        if event is None:
            event = self._waiting[name] = asyncio.Event()
        return event

    def replace(self, items: list[Obj]) -> None:
        self.objects = {name_of(o): o for o in items}
        waiting, self._waiting = self._waiting, {}
        for event in waiting.values():
            event.set()

    def put(self, name: str, obj: Obj | None) -> None:
        if obj is None:
            self.objects.pop(name, None)
        else:
            self.objects[name] = obj
        event = self._waiting.pop(name, None)
        if event is not None:
            event.set()


def _uid(obj: Mapping[str, Any] | None) -> str | None:
    return str(meta(obj).get("uid") or "") or None if obj is not None else None
