"""The optional workload probe: through ``<cluster>-kubeconfig``, are all of the cluster's nodes Ready?

Reads the Secret only when a probe runs (the watch cache never keeps its content),
builds a short-lived client from it, lists Nodes, and answers with a
:class:`ProbeResult` whose detail names what is missing. The kubeconfig never
reaches a log line, an exception message, or the bus.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Mapping
from typing import Any

import structlog
import yaml

from services.status_watcher.domain import ProbeResult
from shared.errors import classify
from shared.kube import KubeClient
from shared.objects import condition_true, dig

log = structlog.get_logger(__name__)


def _kubeconfig(secret: Mapping[str, Any]) -> dict[str, Any] | None:
    raw = dig(secret, "data", "value")
    if not isinstance(raw, str):
        return None
    try:
        data = yaml.safe_load(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def judge(nodes: list[dict[str, Any]], expected: frozenset[str]) -> ProbeResult:
    """Pure: every node Ready, and every node CAPI expects is among them."""
    names = {str(dig(n, "metadata", "name")) for n in nodes}
    not_ready = sorted(str(dig(n, "metadata", "name")) for n in nodes if not condition_true(n, "Ready"))
    missing = sorted(expected - names)
    if missing:
        return ProbeResult(False, f"nodes missing: {', '.join(missing[:5])}")
    if not_ready:
        return ProbeResult(False, f"nodes not Ready: {', '.join(not_ready[:5])}")
    if not nodes:
        return ProbeResult(False, "no nodes")
    return ProbeResult(True, f"{len(nodes)} nodes Ready")


class WorkloadProbe:
    def __init__(self, client: KubeClient, *, timeout: float = 10.0) -> None:
        self.client = client
        self.timeout = timeout

    async def __call__(self, namespace: str, cluster: str, expected: frozenset[str]) -> ProbeResult:
        try:
            async with asyncio.timeout(self.timeout):
                return await self._probe(namespace, cluster, expected)
        except TimeoutError:
            return ProbeResult(False, f"workload API did not answer within {self.timeout:g}s")
        except Exception as exc:
            err = classify(exc)
            log.info("workload_probe_failed", namespace=namespace, cluster=cluster, reason=err.reason)
            return ProbeResult(False, f"workload API unreachable ({err.reason})")

    async def _probe(self, namespace: str, cluster: str, expected: frozenset[str]) -> ProbeResult:
        secret = await self.client.get("v1", "Secret", f"{cluster}-kubeconfig", namespace)
        if secret is None:
            return ProbeResult(False, "kubeconfig Secret missing")
        config = _kubeconfig(secret)
        if config is None:
            return ProbeResult(False, "kubeconfig Secret has no readable 'value'")
        workload = await KubeClient.from_kubeconfig_dict(config, timeout=self.timeout)
        try:
            nodes, _ = await workload.list("v1", "Node")
        finally:
            await workload.close()
        return judge(nodes, expected)
