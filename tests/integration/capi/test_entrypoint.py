"""run_simulators, the entry point behind ``python -m sandbox.kubeapi --simulate-capi``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sandbox.capi import SimOptions, run_simulators
from shared.kube import KubeClient
from shared.objects import dig
from tests.integration.capi.support import INFRA, wait_for


async def test_run_simulators_serves_until_stopped(kubeconfig: Path, capi_client: KubeClient) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(run_simulators(kubeconfig, stop=stop, namespaces=["default"]))
    try:
        await capi_client.apply(
            {
                "apiVersion": INFRA,
                "kind": "BootstrapKubeconfig",
                "metadata": {"name": "bk", "namespace": "default"},
                "spec": {"apiserver": capi_client.server, "certificate-authority-data": await capi_client.ca_data()},
            },
            field_manager="test",
        )
        await wait_for(
            capi_client, INFRA, "BootstrapKubeconfig", "bk", lambda o: bool(dig(o, "status", "bootstrapKubeconfigData"))
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
    assert task.exception() is None


def test_options_are_validated() -> None:
    assert SimOptions(fail_bootstrap_hosts=["a", "a"]).fail_bootstrap_hosts == frozenset({"a"})
    assert SimOptions(core_version="v1beta2").core() == "cluster.x-k8s.io/v1beta2"
    with pytest.raises(ValueError, match="core_version"):
        SimOptions(core_version="v1alpha4")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="typo"):
        SimOptions(typo=1)  # type: ignore[call-arg]
