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
from services.hostprep.watched import Followed
from shared.errors import PermanentError, TemporaryError
from shared.kube import KubeClient
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
        self._followed = Followed(client, INFRA_VERSION, KIND, name_of, watch_seconds=watch_seconds)
        self._api_url = api_url
        self._ca_data = ca_data
        self._wait_timeout = wait_timeout
        self._max_age = max_age

    async def current(self, namespace: str, host_id: str) -> IssuedKubeconfig | None:
        """The host's issued kubeconfig if its object exists, is filled and younger than ``max_age``."""
        return self._usable(await self._client.get(INFRA_VERSION, KIND, bootstrap_kubeconfig_name(host_id), namespace))

    def _usable(self, obj: Obj | None) -> IssuedKubeconfig | None:
        issued = _issued(obj)
        if issued is None or issued.age >= self._max_age:
            return None
        if obj is not None and (obj.get("spec") or {}).get("apiserver") != self._api_url:
            return None
        return issued

    async def issue(self, namespace: str, host_id: str) -> IssuedKubeconfig:
        """A usable kubeconfig for the host: the current one, or a freshly created object's."""
        name = bootstrap_kubeconfig_name(host_id)
        deadline = time.monotonic() + self._wait_timeout
        obj = await self._client.get(INFRA_VERSION, KIND, name, namespace)
        found = self._usable(obj)
        if found is not None:
            return found
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
        ns = self._followed.namespace(namespace)

        def current() -> Obj | None:
            return next(iter(ns.of(name)), None)

        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await ns.synced.wait()
                while not done(current()):
                    await ns.changed(name).wait()
                return current()
        except TimeoutError:
            pass
        raise TemporaryError(
            f"BootstrapKubeconfig {namespace}/{name} did not come {what} within {self._wait_timeout:g}s "
            "(is the BYOH controller running?)",
            reason="BootstrapKubeconfigTimeout",
        )

    async def close(self) -> None:
        await self._followed.close()


def _uid(obj: Mapping[str, Any] | None) -> str | None:
    return str(meta(obj).get("uid") or "") or None if obj is not None else None
