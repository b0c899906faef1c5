"""The command line (readiness line, SIGTERM) and optional persistence through ``state_dir``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import yaml
from kubernetes.aio import client

from sandbox.kubeapi import KubeApiServer
from sandbox.kubeapi.paths import repo_root
from tests.fixtures.kubeapi import aio_api_client

from .conftest import BYOH, CAPI, cluster, next_event


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(repo_root())}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox.kubeapi",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _start_cli(crd_dirs: list[Path], tmp_path: Path, *extra: str) -> tuple[asyncio.subprocess.Process, Path]:
    args = ["--port", "0", "--kubeconfig-out", str(tmp_path / "kc.yaml"), *extra]
    for d in crd_dirs:
        args += ["--crds", str(d)]
    proc = await _spawn(*args)
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
    ready = json.loads(line)
    assert ready["ready"] is True and ready["url"].startswith("https://127.0.0.1:")
    return proc, Path(ready["kubeconfig"])


async def _terminate(proc: asyncio.subprocess.Process) -> int:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(proc.wait(), timeout=30)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    return int(proc.returncode or 0)


async def test_cli_serves_until_sigterm(crd_dirs: list[Path], tmp_path: Path) -> None:
    proc, kubeconfig = await _start_cli(crd_dirs, tmp_path)
    try:
        async with aio_api_client(kubeconfig) as api:
            names = {n.metadata.name for n in (await client.CoreV1Api(api).list_namespace()).items}
        assert "default" in names
    finally:
        assert await _terminate(proc) == 0


async def test_cli_runs_the_capi_simulators(crd_dirs: list[Path], tmp_path: Path) -> None:
    proc, kubeconfig = await _start_cli(crd_dirs, tmp_path, "--simulate-capi")
    try:
        async with aio_api_client(kubeconfig) as api:
            custom = client.CustomObjectsApi(api)
            ca = await asyncio.to_thread(_ca_of, kubeconfig)
            body = {
                "apiVersion": f"{BYOH}/v1beta1",
                "kind": "BootstrapKubeconfig",
                "metadata": {"name": "bk", "namespace": "default"},
                "spec": {"apiserver": "https://127.0.0.1:6443", "certificate-authority-data": ca},
            }
            created = await custom.create_namespaced_custom_object(
                BYOH, "v1beta1", "default", "bootstrapkubeconfigs", body
            )
            event = await next_event(
                custom.list_namespaced_custom_object,
                lambda e: bool(e["raw_object"].get("status", {}).get("bootstrapKubeconfigData")),
                timeout=30,
                group=BYOH,
                version="v1beta1",
                namespace="default",
                plural="bootstrapkubeconfigs",
                resource_version=created["metadata"]["resourceVersion"],
            )
        assert event["type"] == "MODIFIED"
    finally:
        assert await _terminate(proc) == 0


def _ca_of(kubeconfig: Path) -> str:
    config = yaml.safe_load(kubeconfig.read_text())
    return str(config["clusters"][0]["cluster"]["certificate-authority-data"])


async def test_state_dir_keeps_objects_across_processes(crd_dirs: list[Path], tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = KubeApiServer(crd_dirs=crd_dirs, state_dir=state)
    await first.start()
    try:
        async with aio_api_client(first.write_kubeconfig(tmp_path / "kc")) as api:
            created = await client.CustomObjectsApi(api).create_namespaced_custom_object(
                CAPI, "v1beta2", "default", "clusters", cluster("kept")
            )
    finally:
        await first.stop()
    second = KubeApiServer(crd_dirs=crd_dirs, state_dir=state)
    await second.start()
    try:
        assert second.admin_token == first.admin_token and second.ca_pem == first.ca_pem
        async with aio_api_client(second.write_kubeconfig(tmp_path / "kc2")) as api:
            got = await client.CustomObjectsApi(api).get_namespaced_custom_object(
                CAPI, "v1beta2", "default", "clusters", "kept"
            )
        assert got["metadata"]["uid"] == created["metadata"]["uid"]
        assert got["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    finally:
        await second.stop()
