"""The command line (readiness line, SIGTERM) and optional persistence through ``state_dir``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.aio import client, watch
from kubernetes.aio.client import ApiException

from sandbox.kubeapi import KubeApiServer
from sandbox.kubeapi import __main__ as kubeapi_main
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


async def test_every_acknowledged_write_survives_a_sigterm(crd_dirs: list[Path], tmp_path: Path) -> None:
    # Writers keep creating while the emulator is told to stop: each create either was answered (and must be
    # in the state the next process starts from, under the same resourceVersion) or failed; none is lost.
    state = tmp_path / "state"
    proc, kubeconfig = await _start_cli(crd_dirs, tmp_path, "--state-dir", str(state))
    acked: dict[str, str] = {}
    enough = asyncio.Event()

    async def writer(custom: client.CustomObjectsApi, prefix: str) -> None:
        for n in range(100_000):
            name = f"{prefix}-{n}"
            try:
                created = await custom.create_namespaced_custom_object(
                    CAPI, "v1beta2", "default", "clusters", cluster(name)
                )
            except Exception:  # refused or cut by the stop: not acknowledged, so nothing to check
                return
            acked[name] = created["metadata"]["resourceVersion"]
            if len(acked) >= 40:
                enough.set()

    try:
        async with aio_api_client(kubeconfig) as api_a, aio_api_client(kubeconfig) as api_b:
            writers = [
                asyncio.create_task(writer(client.CustomObjectsApi(api), prefix))
                for api, prefix in ((api_a, "a"), (api_b, "b"))
            ]
            await asyncio.wait_for(enough.wait(), timeout=60)
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(asyncio.gather(*writers), timeout=60)
    finally:
        assert await _terminate(proc) == 0
    proc, kubeconfig = await _start_cli(crd_dirs, tmp_path, "--state-dir", str(state))
    try:
        async with aio_api_client(kubeconfig) as api:
            custom = client.CustomObjectsApi(api)
            listed = await custom.list_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters")
            stored = {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in listed["items"]}
            assert {n: stored.get(n) for n in acked} == acked
            # resourceVersions go on from where they were: none is handed out twice.
            newest = max(int(rv) for rv in stored.values())
            assert int(listed["metadata"]["resourceVersion"]) >= newest
            later = await custom.create_namespaced_custom_object(
                CAPI, "v1beta2", "default", "clusters", cluster("later")
            )
            assert int(later["metadata"]["resourceVersion"]) > newest
    finally:
        assert await _terminate(proc) == 0


async def _watch_types(custom: client.CustomObjectsApi, resource_version: str) -> list[tuple[str, str]]:
    """(type, name) of the first event of a watch of clusters from ``resource_version``."""
    async with watch.Watch() as w:
        async for event in w.stream(
            custom.list_namespaced_custom_object,
            CAPI,
            "v1beta2",
            "default",
            "clusters",
            resource_version=resource_version,
            timeout_seconds=5,
        ):
            return [(event["type"], event["raw_object"]["metadata"].get("name", ""))]
    return []


async def test_watches_after_a_restart_resume_or_get_410(crd_dirs: list[Path], tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = KubeApiServer(crd_dirs=crd_dirs, state_dir=state)
    await first.start()
    try:
        async with aio_api_client(first.write_kubeconfig(tmp_path / "kc")) as api:
            custom = client.CustomObjectsApi(api)
            before = await custom.create_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", cluster("a"))
            last = await custom.create_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", cluster("b"))
    finally:
        await first.stop()
    second = KubeApiServer(crd_dirs=crd_dirs, state_dir=state)
    await second.start()
    try:
        async with aio_api_client(second.write_kubeconfig(tmp_path / "kc2")) as api:
            custom = client.CustomObjectsApi(api)
            # The history is gone: a watch from before the last write cannot be served.
            with pytest.raises(ApiException) as err:
                await _watch_types(custom, before["metadata"]["resourceVersion"])
            assert err.value.status == 410
            # A resourceVersion this server never issued (a client of a lost state) must list again too.
            with pytest.raises(ApiException) as err:
                await _watch_types(custom, str(int(last["metadata"]["resourceVersion"]) + 1000))
            assert err.value.status == 410
            # From the last resourceVersion the watch resumes: nothing was missed in between.
            resumed = asyncio.create_task(_watch_types(custom, last["metadata"]["resourceVersion"]))
            await custom.create_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", cluster("c"))
            assert await resumed == [("ADDED", "c")]
    finally:
        await second.stop()


async def test_a_cascade_the_stopped_server_had_not_run_is_run_after_a_restart(
    crd_dirs: list[Path], tmp_path: Path
) -> None:
    # The collector's queue lives in memory. An owner whose deletion was stored but whose cascade was not run
    # (a stop in between) must not leave its dependents behind for ever; nor a foreground deletion whose
    # dependents are all gone stay stuck on its finalizer.
    state = tmp_path / "state"
    first = KubeApiServer(crd_dirs=crd_dirs, state_dir=state)
    await first.start()
    try:
        async with aio_api_client(first.write_kubeconfig(tmp_path / "kc")) as api:
            custom = client.CustomObjectsApi(api)
            owner = await custom.create_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", cluster("o"))
            ref = {"apiVersion": f"{CAPI}/v1beta2", "kind": "Cluster", "name": "o", "uid": owner["metadata"]["uid"]}
            dependent = {**cluster("d"), "metadata": {**cluster("d")["metadata"], "ownerReferences": [ref]}}
            await custom.create_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", dependent)
            await custom.create_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters", cluster("f"))
    finally:
        await first.stop()
    path = state / "kubeapi-state.json"
    saved = json.loads(path.read_text())
    kept = []
    for item in saved["objects"]:
        md = item["object"]["metadata"]
        if md["name"] == "o" and item["plural"] == "clusters":
            continue  # deleted, its cascade not run yet
        if md["name"] == "f" and item["plural"] == "clusters":
            md.update(deletionTimestamp="2026-01-01T00:00:00Z", finalizers=["foregroundDeletion"])
        kept.append(item)
    path.write_text(json.dumps({**saved, "objects": kept}))
    second = KubeApiServer(crd_dirs=crd_dirs, state_dir=state)
    await second.start()
    try:
        async with aio_api_client(second.write_kubeconfig(tmp_path / "kc2")) as api:
            custom = client.CustomObjectsApi(api)
            listed = await custom.list_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters")
            left = {o["metadata"]["name"] for o in listed["items"]}

            def all_gone(event: dict[str, Any]) -> bool:
                if event["type"] == "DELETED":
                    left.discard(event["raw_object"]["metadata"]["name"])
                return not left

            if left:  # the collector may have been quicker than the list
                await next_event(
                    custom.list_namespaced_custom_object,
                    all_gone,
                    group=CAPI,
                    version="v1beta2",
                    namespace="default",
                    plural="clusters",
                    resource_version=listed["metadata"]["resourceVersion"],
                )
            listed = await custom.list_namespaced_custom_object(CAPI, "v1beta2", "default", "clusters")
            assert listed["items"] == []
    finally:
        await second.stop()


async def test_simulators_that_stop_on_their_own_stop_the_emulator_which_keeps_its_state(
    crd_dirs: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An emulator serving on without its controllers would leave every cluster waiting for ever: it stops
    # (non-zero, for its supervisor to start it again) and, like on SIGTERM, saves what it was told.
    async def broken(kubeconfig: Path, *, stop: asyncio.Event) -> None:
        async with aio_api_client(kubeconfig) as api:
            await client.CustomObjectsApi(api).create_namespaced_custom_object(
                CAPI, "v1beta2", "default", "clusters", cluster("kept")
            )
        raise RuntimeError("the simulated controllers broke")

    monkeypatch.setattr(kubeapi_main, "_simulator_entry", lambda: broken)
    state = tmp_path / "state"
    args = kubeapi_main._parse(
        ["--port", "0", "--kubeconfig-out", str(tmp_path / "kc"), "--simulate-capi", "--state-dir", str(state)]
    )
    # asyncio.timeout, not wait_for: a SystemExit raised in a task of its own would end the event loop.
    with pytest.raises(SystemExit) as stopped:
        async with asyncio.timeout(60):
            await kubeapi_main._serve(args)
    assert stopped.value.code == 1
    saved = json.loads((state / "kubeapi-state.json").read_text())
    assert "kept" in {o["object"]["metadata"]["name"] for o in saved["objects"] if o["plural"] == "clusters"}
