"""`o2ctl kubeconfig --out` writes a fresh 0600 file: never through a symlink, never keeping an old mode."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from o2ctl import client, commands
from sandbox.kubeapi import KubeApiServer
from shared.bus import Bus
from shared.kube import KubeClient
from shared.subjects import BUCKET_PR

KUBECONFIG_TEXT = "apiVersion: v1\nkind: Config\nclusters: []\n# the workload cluster's admin credentials\n"


@pytest.fixture
async def fulfilled(bus: Bus, kubeapi: KubeApiServer, kubeconfig: Path, nats_url: str) -> client.Target:
    """A system where cluster `edge` is fulfilled and its kubeconfig Secret exists."""
    kv = await bus.kv(BUCKET_PR)
    await kv.put(
        "0b6c7a52-1b8e-4f57-9a39-3a4a2f0f8d11",
        json.dumps({"state": "fulfilled", "spec": {"name": "edge", "namespace": "default"}}).encode(),
    )
    async with await KubeClient.from_kubeconfig(kubeconfig) as kube:
        await kube.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "cluster.x-k8s.io/secret",
                "metadata": {"name": "edge-kubeconfig", "namespace": "default"},
                "data": {"value": base64.b64encode(KUBECONFIG_TEXT.encode()).decode()},
            }
        )
    return client.Target(nats_url, kubeconfig, "default")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


async def test_an_existing_file_gets_mode_0600(fulfilled: client.Target, tmp_path: Path) -> None:
    out = tmp_path / "edge.kubeconfig"
    out.write_text("old")
    out.chmod(0o644)
    assert await commands.kubeconfig(fulfilled, "edge", out, "table") == 0
    assert out.read_text() == KUBECONFIG_TEXT and mode(out) == 0o600
    assert not list(tmp_path.glob(".edge.kubeconfig*"))  # no temporary file left behind


async def test_a_symlink_is_replaced_not_followed(fulfilled: client.Target, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    victim.chmod(0o644)
    out = tmp_path / "edge.kubeconfig"
    out.symlink_to(victim)
    dangling = tmp_path / "dangling.kubeconfig"
    dangling.symlink_to(tmp_path / "created-through-the-link")
    assert await commands.kubeconfig(fulfilled, "edge", out, "table") == 0
    assert await commands.kubeconfig(fulfilled, "edge", dangling, "table") == 0
    assert victim.read_text() == "precious" and mode(victim) == 0o644
    assert not (tmp_path / "created-through-the-link").exists()
    for path in (out, dangling):
        assert not path.is_symlink() and path.read_text() == KUBECONFIG_TEXT and mode(path) == 0o600


async def test_the_mode_does_not_depend_on_the_umask(fulfilled: client.Target, tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        out = tmp_path / "edge.kubeconfig"
        assert await commands.kubeconfig(fulfilled, "edge", out, "table") == 0
    finally:
        os.umask(old)
    assert mode(out) == 0o600
