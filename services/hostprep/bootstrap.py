"""BootstrapKubeconfig objects in the management cluster, one per host, through ``shared.kube.KubeClient``.

The BYOH controller fills ``status.bootstrapKubeconfigData`` once per object, with a bootstrap
token that lives 30 minutes; so a host gets a fresh object (deleted and re-created under the
same name, derived from its host id) whenever the old one is older than ``max_age``. The
kubeconfig's server is ``spec.apiserver``: the management API URL as the HOSTS reach it. The
kubeconfig is a secret: it is returned as ``SecretBytes`` and never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import SecretBytes

from services.hostprep.domain import bootstrap_kubeconfig_name
from shared.errors import PermanentError, TemporaryError
from shared.kube import KubeClient, WatchExpired
from shared.objects import HOST_ID_LABEL, deleting, meta

log = structlog.get_logger(__name__)

INFRA_VERSION = "infrastructure.cluster.x-k8s.io/v1beta1"
KIND = "BootstrapKubeconfig"
FIELD_MANAGER = "o2ims-hostprep"


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
    def __init__(self, client: KubeClient, *, api_url: str, ca_data: str, wait_timeout: float, max_age: float) -> None:
        self._client = client
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
            return await self._wait_filled(namespace, name, deadline)
        if obj is not None:
            await self._client.delete(INFRA_VERSION, KIND, name, namespace)
            await self._wait(namespace, name, lambda o: o is None, deadline, "to be deleted")
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
        log.info("bootstrap_kubeconfig_created", host_id=host_id, namespace=namespace, name=name)
        return await self._wait_filled(namespace, name, deadline)

    async def delete(self, namespace: str, host_id: str) -> bool:
        return await self._client.delete(INFRA_VERSION, KIND, bootstrap_kubeconfig_name(host_id), namespace)

    async def exists(self, namespace: str, host_id: str) -> bool:
        return await self._client.get(INFRA_VERSION, KIND, bootstrap_kubeconfig_name(host_id), namespace) is not None

    async def _wait_filled(self, namespace: str, name: str, deadline: float) -> IssuedKubeconfig:
        obj = await self._wait(namespace, name, lambda o: _issued(o) is not None, deadline, "to get its kubeconfig")
        issued = _issued(obj)
        assert issued is not None
        return issued

    async def _wait(self, namespace: str, name: str, done: Any, deadline: float, what: str) -> dict[str, Any] | None:
        """Get, then watch the one object until ``done(obj)`` holds (None = absent), bounded by ``deadline``."""
        selector = f"metadata.name={name}"
        while True:
            items, rv = await self._client.list(INFRA_VERSION, KIND, namespace, field_selector=selector)
            current: dict[str, Any] | None = items[0] if items else None
            if done(current):
                return current
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                async with asyncio.timeout(left):
                    async for event in self._client.watch(
                        INFRA_VERSION,
                        KIND,
                        namespace,
                        resource_version=rv,
                        field_selector=selector,
                        timeout_seconds=max(1, int(left) + 1),
                    ):
                        if event.type == "BOOKMARK":
                            continue
                        current = None if event.type == "DELETED" else event.object
                        if done(current):
                            return current
            except WatchExpired:
                continue
            except TimeoutError:
                break
        raise TemporaryError(
            f"BootstrapKubeconfig {namespace}/{name} did not come {what} within {self._wait_timeout:g}s "
            "(is the BYOH controller running?)",
            reason="BootstrapKubeconfigTimeout",
        )
