"""The user guide's way in, with the real ``kubectl`` binary against ``o2ctl up --sandbox``.

First the same way in through the official Python client (so machines without kubectl still prove that the
sandbox runs focom's FPR face and o2ims's ProvisioningRequest mirror); the kubectl tests skip, with the
reason, where no kubectl is installed.

``o2ctl up`` prints the ``KUBECONFIG`` to use; ``kubectl apply -f examples/focom-all-clusters.yaml`` drives the
whole flow (client-side validation through the emulator's OpenAPI, the FPR face in focom); ``kubectl wait``
sees it Synced; ``kubectl get`` prints the CRDs' printer columns; each cluster's kubeconfig Secret is there;
``kubectl delete`` removes the request and everything it made, which ``kubectl wait --for=delete`` and a
``kubectl get -w`` watch both see.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.kube import KubeClient

REPO = Path(__file__).resolve().parents[2]
KUBECTL = shutil.which("kubectl")
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
needs_kubectl = pytest.mark.skipif(
    KUBECTL is None, reason="no kubectl binary on PATH (the guide's flow needs a real kubectl)"
)
FPR_API, PR_API = "focom.nephio.org/v1alpha1", "o2ims.provisioning.oran.org/v1alpha1"
EXAMPLE = REPO / "examples" / "focom-all-clusters.yaml"


def o2ctl(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "o2ctl", "--state-dir", str(state), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


class Kubectl:
    def __init__(self, kubeconfig: Path, home: Path) -> None:
        # A private HOME: kubectl's discovery and OpenAPI cache must not come from (or go to) the user's.
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(home)}

    def argv(self, *args: str) -> list[str]:
        assert KUBECTL is not None
        return [KUBECTL, *args]

    def __call__(self, *args: str, check: bool = True, timeout: float = 400) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self.argv(*args), env=self.env, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check:
            assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stdout}{proc.stderr}"
        return proc


def table(text: str) -> list[dict[str, str]]:
    """``kubectl get`` output as rows keyed by header (columns split on runs of 2+ spaces)."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = re.split(r"\s{2,}", lines[0].strip())
    return [dict(zip(header, re.split(r"\s{2,}", line.strip()), strict=False)) for line in lines[1:]]


def _up(base: Path) -> Iterator[tuple[Path, Kubectl]]:
    state = base / "state"
    up = o2ctl(state, "up", "--sandbox", "--detach", "--hosts", "9")
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        match = re.search(r"export KUBECONFIG=(\S+)", up.stdout)
        assert match, f"o2ctl up did not print the KUBECONFIG to use:\n{up.stdout}"
        kubeconfig = Path(match.group(1))
        assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600  # it carries the admin token
        (base / "home").mkdir()
        yield state, Kubectl(kubeconfig, base / "home")
    finally:
        o2ctl(state, "down")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Kubectl]]:
    """The sandbox the kubectl tests share (each leaves it as it found it)."""
    yield from _up(tmp_path_factory.mktemp("kubectl"))


@pytest.fixture
def own_sandbox(tmp_path: Path) -> Iterator[tuple[Path, Kubectl]]:
    yield from _up(tmp_path)


async def until(
    kube: KubeClient, api_version: str, kind: str, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 300
) -> list[dict[str, Any]]:
    """List, then watch (re-listing on every event) until ``done(items)``; bounded by ``timeout``."""
    async with asyncio.timeout(timeout):
        while True:
            items, version = await kube.list(api_version, kind)
            if done(items):
                return items
            async for _ in kube.watch(api_version, kind, resource_version=version, timeout_seconds=30):
                items, _ = await kube.list(api_version, kind)
                if done(items):
                    return items


async def test_the_fpr_face_and_the_pr_mirror_run_on_the_sandbox(own_sandbox: tuple[Path, Kubectl]) -> None:
    state, kubectl = own_sandbox
    cluster = json.loads((state / "input.json").read_text())["clusters"][0]["cluster_name"]
    fpr = yaml.safe_load(EXAMPLE.read_text())
    fpr["metadata"] = {"name": "one-cluster", "namespace": "default"}
    fpr["spec"] = {"operation": "create", "clusterNames": [cluster]}

    def phase(items: list[dict[str, Any]]) -> str | None:
        return next(
            ((i.get("status") or {}).get("phase") for i in items if i["metadata"]["name"] == "one-cluster"), None
        )

    def mirrored(items: list[dict[str, Any]]) -> list[str]:
        return [
            ((i.get("status") or {}).get("provisioningStatus") or {}).get("provisioningState", "")
            for i in items
            if i["spec"]["templateParameters"]["clusterName"] == cluster
        ]

    async with await KubeClient.from_kubeconfig(Path(kubectl.env["KUBECONFIG"])) as kube:
        await kube.create(fpr)
        await until(kube, FPR_API, "FocomProvisioningRequest", lambda items: phase(items) == "Synced")
        await until(kube, PR_API, "ProvisioningRequest", lambda items: mirrored(items) == ["fulfilled"])
        await kube.delete(FPR_API, "FocomProvisioningRequest", "one-cluster", "default")
        await until(kube, FPR_API, "FocomProvisioningRequest", lambda items: phase(items) is None)
        await until(kube, PR_API, "ProvisioningRequest", lambda items: mirrored(items) == [])


@needs_kubectl
def test_the_guides_flow_with_kubectl(sandbox: tuple[Path, Kubectl]) -> None:
    state, kubectl = sandbox
    clusters = sorted(c["cluster_name"] for c in json.loads((state / "input.json").read_text())["clusters"])
    assert clusters

    applied = kubectl("apply", "-f", str(EXAMPLE))
    assert "focomprovisioningrequest.focom.nephio.org/all-clusters created" in applied.stdout
    assert kubectl("apply", "-f", str(EXAMPLE)).stdout.strip().endswith("unchanged")

    synced = kubectl("wait", "fpr/all-clusters", "--for=jsonpath={.status.phase}=Synced", "--timeout=300s", check=False)
    assert synced.returncode == 0, synced.stderr + kubectl("get", "fpr,oranpr", "-o", "wide").stdout

    fpr = table(kubectl("get", "fpr").stdout)
    assert [(r["NAME"], r["PHASE"], r["OPERATION"]) for r in fpr] == [("all-clusters", "Synced", "create")]
    assert fpr[0]["MESSAGE"] == f"{len(clusters)} cluster(s) fulfilled"
    assert "UPDATED" in table(kubectl("get", "fpr", "-o", "wide").stdout)[0]  # the priority-1 column

    # The ProvisioningRequest CRs mirror o2ims's records: on a busy machine they may trail the FPR by a moment.
    deadline = time.monotonic() + 120
    while True:
        listed = kubectl("get", "oranpr").stdout
        prs = table(listed) if listed.strip() else []
        done = sorted(r["CLUSTER"] for r in prs) == clusters and {r.get("STATE") for r in prs} == {"fulfilled"}
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert sorted(r["CLUSTER"] for r in prs) == clusters
    assert {r["STATE"] for r in prs} == {"fulfilled"}
    for cluster in clusters:
        secret = table(kubectl("get", "secret", f"{cluster}-kubeconfig").stdout)
        assert secret[0]["NAME"] == f"{cluster}-kubeconfig" and secret[0]["DATA"] == "1"

    # Deleting the request removes every cluster it made; a watch started before sees the FPR go.
    watcher = subprocess.Popen(
        kubectl.argv("get", "fpr", "--watch", "--output-watch-events"),
        env=kubectl.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        kubectl("delete", "-f", str(EXAMPLE), "--timeout=300s")
        kubectl("wait", "--for=delete", "fpr/all-clusters", "--timeout=60s")
        kubectl("wait", "--for=delete", "oranpr", "--all", "--timeout=300s")
        for cluster in clusters:
            kubectl("wait", "--for=delete", f"secret/{cluster}-kubeconfig", "--timeout=300s")
    finally:
        watcher.send_signal(signal.SIGTERM)
        watched, _ = watcher.communicate(timeout=30)
    events = table(watched)
    assert ("ADDED", "all-clusters") in {(e["EVENT"], e["NAME"]) for e in events}, watched
    assert ("DELETED", "all-clusters") in {(e["EVENT"], e["NAME"]) for e in events}, watched
    assert "No resources found" in kubectl("get", "fpr,oranpr").stderr
    capi = kubectl("get", "clusters.cluster.x-k8s.io", "-A", "-o", "name").stdout
    assert capi.strip() == ""
    # Nothing of the clusters is left: their templates went with the Clusters that owned them.
    leftovers = ",".join(
        (
            "machinedeployments.cluster.x-k8s.io",
            "kubeadmcontrolplanes.controlplane.cluster.x-k8s.io",
            "byomachinetemplates.infrastructure.cluster.x-k8s.io",
            "kubeadmconfigtemplates.bootstrap.cluster.x-k8s.io",
        )
    )
    deadline = time.monotonic() + 120
    while (left := kubectl("get", leftovers, "-A", "-o", "name").stdout.strip()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert left == "", left


@needs_kubectl
def test_kubectl_is_validated_strictly_by_the_server(sandbox: tuple[Path, Kubectl], tmp_path: Path) -> None:
    _, kubectl = sandbox
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("allClusters: true", "allClusters: true\n  allClustrs: true"))
    refused = kubectl("apply", "-f", str(bad), check=False)
    assert refused.returncode != 0 and 'unknown field "spec.allClustrs"' in refused.stderr
    dry = kubectl("apply", "--server-side", "--dry-run=server", "-f", str(EXAMPLE))
    assert "serverside-applied (server dry run)" in dry.stdout


@needs_kubectl
def test_kubectl_explain_reads_openapi_v3_and_v2(sandbox: tuple[Path, Kubectl]) -> None:
    _, kubectl = sandbox
    v3 = kubectl("explain", "fpr.spec").stdout
    v2 = kubectl("explain", "fpr.spec", "--output=plaintext-openapiv2").stdout  # the protobuf v2 document
    for text in (v3, v2):
        assert "FocomProvisioningRequest" in text and re.search(r"allClusters\s+<boolean>", text), text
