"""``o2ctl plan`` with no configuration and no network: the CAPI manifests of a seed-format inventory,
Calico's ClusterResourceSet included, validated strictly against the carried CAPI/BYOH API (and
against the upstream CRD files too, when they are beside the checkout)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from services.capi_renderer.cni_source import CALICO_URL
from shared.capi_api import carried_schemas
from shared.capi_api.generate import default_upstream
from shared.crd_schema import CrdSchemas

REPO = Path(__file__).resolve().parents[2]

#: Written the way operators write theirs: numeric ids, password logins, versions without the "v",
#: single control planes without a VIP (the host's address is the endpoint), no CNI (so Calico, the default).
SEED_FORMAT: dict[str, Any] = {
    "namespace": "default",
    "k8s_version": "1.31.4",
    "hosts": [
        {
            "host_id": str(100 + i),
            "host_name": f"node{i}",
            "host_ip": f"10.20.0.{10 + i}",
            "host_user": "ubuntu",
            "host_pwd": "secret",
        }
        for i in range(4)
    ],
    "clusters": [
        {"cluster_name": "edge-a", "cluster_masters": [{"host_id": "100"}], "cluster_workers": [{"host_id": "101"}]},
        {
            "cluster_name": "edge-b",
            "cluster_masters": [{"host_id": "102"}],
            "cluster_workers": [{"host_id": "103"}],
            "pod_cidr": "10.128.0.0/16",
        },
    ],
}


def _isolated_env(home: Path) -> dict[str, str]:
    """The caller's environment without any project setting, and a HOME with no cache in it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("O2_", "O2CTL_", "SANDBOX_"))}
    (home / "tmp").mkdir()
    return {**env, "HOME": str(home), "TMPDIR": str(home / "tmp")}


def _offline(argv: list[str]) -> list[str]:
    # In a network namespace of its own the process has only a loopback: no download can happen.
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True, check=False).returncode == 0:
        return [unshare, "-rn", *argv]
    return argv


def test_plan_renders_calico_and_validates_strictly_with_nothing_configured(tmp_path: Path) -> None:
    inventory = tmp_path / "input.json"
    inventory.write_text(json.dumps(SEED_FORMAT), encoding="utf-8")
    home = tmp_path / "home"
    home.mkdir()
    argv = [
        sys.executable,
        "-m",
        "o2ctl",
        "--state-dir",
        str(tmp_path / "state"),
        "plan",
        "--inventory",
        str(inventory),
        "--all",
        "-o",
        "yaml",
    ]
    done = subprocess.run(
        _offline(argv),
        cwd=tmp_path,
        env={**_isolated_env(home), "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"# CNI calico: from {CALICO_URL}" in done.stderr
    assert not (home / "tmp" / "focom-o2ims-cni").exists(), "plan must not download or cache anything"

    objects = [d for d in yaml.safe_load_all(done.stdout) if d]
    kinds = sorted({o["kind"] for o in objects})
    assert kinds == [
        "ByoCluster",
        "ByoMachineTemplate",
        "Cluster",
        "ClusterResourceSet",
        "ConfigMap",
        "KubeadmConfigTemplate",
        "KubeadmControlPlane",
        "MachineDeployment",
    ]
    endpoints = {
        o["metadata"]["name"]: o["spec"]["controlPlaneEndpoint"]["host"] for o in objects if o["kind"] == "ByoCluster"
    }
    assert endpoints == {"edge-a": "10.20.0.10", "edge-b": "10.20.0.12"}
    crs = [o for o in objects if o["kind"] == "ClusterResourceSet"]
    assert sorted(o["metadata"]["name"] for o in crs) == ["edge-a-crs-0", "edge-b-crs-0"]
    config_maps = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ConfigMap"}
    for cluster in ("edge-a", "edge-b"):
        carried = config_maps[f"cni-{cluster}-crs-0"]["data"]["calico.yaml"]
        assert CALICO_URL in carried and "downloads nothing" in carried

    upstream = default_upstream()
    checks = [carried_schemas()] + ([CrdSchemas.from_dirs([upstream])] if upstream.is_dir() else [])
    for schemas in checks:
        for obj in objects:
            if obj["kind"] != "ConfigMap":
                assert schemas.validate(obj, strict=True) == [], (obj["kind"], obj["metadata"]["name"])
