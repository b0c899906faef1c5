"""Fake hosts for tests and demos without SSH sandbox hosts: each gets a BootstrapKubeconfig and a HostAgent.

The path is the real one: a ``BootstrapKubeconfig`` is created, the simulated
controller issues a bootstrap token, the agent authenticates with it and
registers its ``ByoHost`` carrying ``<label_key>=<host id>``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sandbox.capi.agent import BootstrapHook, HostAgent, ResetHook
from sandbox.capi.options import INFRA_VERSION
from sandbox.capi.shapes import Obj
from shared.errors import TemporaryError
from shared.kube import KubeClient, WatchExpired
from shared.objects import HOST_ID_LABEL, dig


async def wait_for_object(
    client: KubeClient,
    api_version: str,
    kind: str,
    name: str,
    namespace: str | None,
    predicate: Callable[[Obj | None], bool],
    *,
    timeout: float = 30.0,
) -> Obj | None:
    """Wait (watching, not polling) until ``predicate`` holds for the object (None = absent); returns it."""
    deadline = time.monotonic() + timeout
    selector = f"metadata.name={name}"
    while True:
        items, rv = await client.list(api_version, kind, namespace, field_selector=selector)
        current: Obj | None = items[0] if items else None
        if predicate(current):
            return current
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{kind} {namespace}/{name} did not reach the expected state in {timeout:.0f}s")
        try:
            async with asyncio.timeout(left):
                async for event in client.watch(
                    api_version,
                    kind,
                    namespace,
                    resource_version=rv,
                    field_selector=selector,
                    timeout_seconds=max(1, int(left) + 1),
                ):
                    if event.type == "BOOKMARK":
                        continue
                    current = None if event.type == "DELETED" else event.object
                    if predicate(current):
                        return current
        except WatchExpired:
            continue
        except TimeoutError:
            raise TimeoutError(
                f"{kind} {namespace}/{name} did not reach the expected state in {timeout:.0f}s"
            ) from None


async def issue_bootstrap_kubeconfig(client: KubeClient, name: str, namespace: str, *, timeout: float = 30.0) -> str:
    """Create a BootstrapKubeconfig for this API server and return the kubeconfig its controller issues."""
    ca = await client.ca_data()
    if not ca:
        raise TemporaryError("the API server CA is unknown", reason="NoCA")
    body: dict[str, Any] = {
        "apiVersion": INFRA_VERSION,
        "kind": "BootstrapKubeconfig",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"apiserver": client.server, "certificate-authority-data": ca},
    }
    await client.apply(body, field_manager="sandbox-fake-hosts")
    found = await wait_for_object(
        client,
        INFRA_VERSION,
        "BootstrapKubeconfig",
        name,
        namespace,
        lambda o: bool(dig(o, "status", "bootstrapKubeconfigData")),
        timeout=timeout,
    )
    return str(dig(found, "status", "bootstrapKubeconfigData"))


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


async def register_fake_hosts(
    client: KubeClient,
    n: int,
    namespace: str = "default",
    label_key: str = HOST_ID_LABEL,
    *,
    workdir: Path,
    host_ids: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
    extra_labels: Mapping[str, str] | None = None,
    on_bootstrap: BootstrapHook | None = None,
    on_reset: ResetHook | None = None,
    timeout: float = 30.0,
) -> list[HostAgent]:
    """Start ``n`` agents (ids ``h1..hn``, names ``host-1..host-n`` by default); each ByoHost exists on return."""
    ids = list(host_ids or [f"h{i}" for i in range(1, n + 1)])
    hostnames = list(names or [f"host-{i}" for i in range(1, n + 1)])
    if len(ids) != n or len(hostnames) != n:
        raise ValueError("host_ids and names must have n entries")

    async def one(index: int) -> HostAgent:
        hostname = hostnames[index]
        kubeconfig = await issue_bootstrap_kubeconfig(client, f"bootstrap-{hostname}", namespace, timeout=timeout)
        home = Path(workdir) / hostname
        path = home / "bootstrap-kubeconfig"
        await asyncio.to_thread(_write_private, path, kubeconfig)
        agent = HostAgent(
            bootstrap_kubeconfig=path,
            hostname=hostname,
            namespace=namespace,
            labels={**(extra_labels or {}), label_key: ids[index]},
            config_path=home / ".byoh" / "config",
            on_bootstrap=on_bootstrap,
            on_reset=on_reset,
            ip=f"10.0.0.{10 + index % 240}",
        )
        await agent.start()
        return agent

    results = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
    agents = [r for r in results if isinstance(r, HostAgent)]
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        await asyncio.gather(*(a.stop() for a in agents))
        raise errors[0]
    return agents
