"""o2ctl against a running sandbox, as an operator uses it: every command, JSON output, errors, down."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from o2ctl.state import pid_alive

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def o2ctl(state: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "o2ctl", "--state-dir", str(state), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def as_json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.stdout, proc.stderr
    return json.loads(proc.stdout)


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    state = tmp_path_factory.mktemp("o2ctl") / "state"
    up = o2ctl(state, "up", "--sandbox", "--detach", "--hosts", "9")
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        # The sandbox's management cluster, for kubectl: a kubeconfig under the state dir, owner-only.
        assert f"export KUBECONFIG={state / 'kubeconfig'}" in up.stdout, up.stdout
        assert stat.S_IMODE((state / "kubeconfig").stat().st_mode) == 0o600
        yield state
    finally:
        o2ctl(state, "down")


def test_validate_reports_every_problem_with_its_path(tmp_path: Path) -> None:
    ok = o2ctl(tmp_path, "-o", "json", "validate", str(REPO / "examples" / "input.json"))
    assert ok.returncode == 0 and as_json(ok)["valid"] is True
    bad = json.loads((REPO / "examples" / "input.json").read_text())
    bad["hosts"][1]["host_id"] = bad["hosts"][0]["host_id"]
    bad["clusters"][0]["cluster_name"] = "Not_DNS"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    res = o2ctl(tmp_path, "-o", "json", "validate", str(path))
    no_traceback(res)
    assert res.returncode == 2
    problems = as_json(res)["problems"]
    paths = {p["path"] for p in problems}
    assert "$.hosts[1].host_id" in paths and "$.clusters[0].cluster_name" in paths, problems


def test_schemas_are_json_schemas(tmp_path: Path) -> None:
    inv = as_json(o2ctl(tmp_path, "schema", "inventory"))
    assert inv["type"] == "object" and "hosts" in inv["properties"]
    req = as_json(o2ctl(tmp_path, "schema", "request"))
    assert "allClusters" in req["properties"]


def test_nats_unreachable_is_a_clear_error(tmp_path: Path) -> None:
    res = o2ctl(tmp_path, "--nats-url", "nats://127.0.0.1:9", "status")
    no_traceback(res)
    assert res.returncode == 3 and "not reachable" in res.stderr


def test_nothing_running_is_a_clear_error(tmp_path: Path) -> None:
    res = o2ctl(tmp_path / "empty", "status")
    no_traceback(res)
    assert res.returncode == 3 and "no running system" in res.stderr


def test_plan_renders_without_touching_anything(sandbox: Path) -> None:
    res = o2ctl(sandbox, "-o", "json", "plan", "--all")
    assert res.returncode == 0, res.stderr
    plan = as_json(res)
    assert plan["feasible"] is True and plan["feasibility_checked"] is True and plan["schemas_checked"] is True
    kinds = {o["kind"] for c in plan["clusters"] for o in c["objects"]}
    assert {"Cluster", "ByoCluster", "KubeadmControlPlane", "MachineDeployment", "ByoMachineTemplate"} <= kinds
    status = as_json(o2ctl(sandbox, "-o", "json", "status"))
    assert status == []  # nothing was submitted by plan


def test_submit_wait_then_status_events_and_kubeconfig(sandbox: Path, tmp_path: Path) -> None:
    early = o2ctl(sandbox, "kubeconfig", "smo")
    assert early.returncode == 2 and "no cluster named" in early.stderr  # nothing requested yet

    res = o2ctl(sandbox, "-o", "json", "submit", "--all", "--name", "ops", "--wait", "--timeout", "240")
    assert res.returncode == 0, res.stdout + res.stderr
    done = as_json(res)
    assert done["phase"] == "Synced"
    assert {c["cluster"]: c["state"] for c in done["clusters"]} == {
        "smo": "fulfilled",
        "ran": "fulfilled",
        "edge": "fulfilled",
    }
    assert {c["kubeconfig_secret"] for c in done["clusters"]} == {"smo-kubeconfig", "ran-kubeconfig", "edge-kubeconfig"}

    status = as_json(o2ctl(sandbox, "-o", "json", "status", "ops"))
    assert status[0]["phase"] == "Synced" and set(status[0]["children"]) == {"smo", "ran", "edge"}
    table = o2ctl(sandbox, "status")
    assert table.returncode == 0 and "ops" in table.stdout

    events = as_json(o2ctl(sandbox, "-o", "json", "events", "ops"))
    types = [e["type"] for e in events]
    assert "focom.status" in types and "o2ims.status" in types
    assert [e["state"] for e in events if e["cluster"] == "smo"][-1] == "fulfilled"

    out = tmp_path / "smo.kubeconfig"
    kc = o2ctl(sandbox, "kubeconfig", "smo", "--out", str(out))
    assert kc.returncode == 0, kc.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "kind: Config" in out.read_text()

    again = o2ctl(sandbox, "-o", "json", "submit", "--all", "--name", "ops", "--wait", "--timeout", "120")
    assert again.returncode == 0 and as_json(again)["phase"] == "Synced"  # re-submitting is idempotent


def test_errors_are_clear_and_exit_non_zero(sandbox: Path, tmp_path: Path) -> None:
    unknown = o2ctl(sandbox, "kubeconfig", "no-such-cluster")
    no_traceback(unknown)
    assert unknown.returncode == 2 and "no cluster named 'no-such-cluster'" in unknown.stderr

    missing = o2ctl(sandbox, "submit", "-f", str(tmp_path / "missing.yaml"))
    no_traceback(missing)
    assert missing.returncode == 2 and "cannot read" in missing.stderr

    garbage = tmp_path / "bad.yaml"
    garbage.write_text("spec: [1, 2\n")
    bad = o2ctl(sandbox, "submit", "-f", str(garbage))
    no_traceback(bad)
    assert bad.returncode == 2

    refused = o2ctl(
        sandbox, "-o", "json", "submit", "--clusters", "no-such-cluster", "--name", "nope", "--wait", "--timeout", "60"
    )
    no_traceback(refused)
    assert refused.returncode == 1
    body = as_json(refused)
    assert body["phase"] == "Failed" and "no-such-cluster" in body["message"]

    both = o2ctl(sandbox, "submit", "--all", "--clusters", "smo")
    assert both.returncode == 2 and "exactly one" in both.stderr


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_down_leaves_no_process_or_port(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert o2ctl(state, "up", "--sandbox", "--detach", "--hosts", "3").returncode == 0
    run = json.loads((state / "state.json").read_text())
    pids = [run["supervisor_pid"], *(c["pid"] for c in run["children"].values())]
    nats_port = int(run["nats_url"].rsplit(":", 1)[1])
    assert _listening(nats_port)
    res = o2ctl(state, "down")
    assert res.returncode == 0 and "stopped" in res.stdout
    # A process that has exited may stay a zombie until its new parent reaps it: it holds nothing.
    assert [pid for pid in pids if pid_alive(pid)] == []
    assert not _listening(nats_port)
    assert "nothing running" in o2ctl(state, "down").stdout


def test_make_demo_from_a_clean_state(tmp_path: Path) -> None:
    env = {**os.environ, "O2CTL_STATE_DIR": str(tmp_path / "demo")}
    res = subprocess.run(
        ["make", "--no-print-directory", "demo"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    lines = [line for line in res.stdout.splitlines() if line.strip()]
    assert lines[-1] == "stopped everything."
    assert "demo: Synced" in res.stdout
    for cluster in ("smo", "ran", "edge"):
        assert any(line.split()[:2] == [cluster, "fulfilled"] for line in lines), cluster
