"""Clients for the emulator conformance suite: everything goes through the official ``kubernetes`` client."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import config as sync_config
from kubernetes.aio import client, watch
from kubernetes.client import ApiClient as SyncApiClient

from tests.fixtures.kubeapi import aio_api_client

CAPI = "cluster.x-k8s.io"
BYOH = "infrastructure.cluster.x-k8s.io"


@pytest.fixture
async def api(kubeconfig: Path) -> AsyncIterator[client.ApiClient]:
    async with aio_api_client(kubeconfig) as api_client:
        yield api_client


@pytest.fixture
def sync_api(kubeconfig: Path) -> Iterator[SyncApiClient]:
    """The synchronous official client (call it through ``asyncio.to_thread``)."""
    api_client = sync_config.new_client_from_config(config_file=str(kubeconfig))
    try:
        yield api_client
    finally:
        api_client.close()


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def cluster(
    name: str, *, version: str = "v1beta2", labels: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    """A minimal valid CAPI Cluster."""
    body: dict[str, Any] = {
        "apiVersion": f"{CAPI}/{version}",
        "kind": "Cluster",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec or {"paused": False},
    }
    if labels:
        body["metadata"]["labels"] = labels
    return body


def byohost(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A ByoHost to create (updates of ByoHosts are admitted only from BYOH's controller or the host's agent)."""
    return {**byomachine(name, labels), "kind": "ByoHost"}


def byomachine(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A namespaced custom object with a status subresource and no admission webhook (unlike ByoHost)."""
    return {
        "apiVersion": f"{BYOH}/v1beta1",
        "kind": "ByoMachine",
        "metadata": {"name": name, "namespace": "default", "labels": labels or {}},
        "spec": {},
    }


def unique(prefix: str = "obj") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def next_event(
    list_fn: Callable[..., Any], match: Callable[[dict[str, Any]], bool], *, timeout: int = 10, **kwargs: Any
) -> dict[str, Any]:
    """The first watch event (raw dict with ``type`` and ``raw_object``) satisfying ``match``; bounded by the
    server-side ``timeoutSeconds``."""
    async with watch.Watch() as w:
        async for event in w.stream(list_fn, timeout_seconds=timeout, **kwargs):
            if match(event):
                return dict(event)
    raise AssertionError("no matching watch event before the timeout")
