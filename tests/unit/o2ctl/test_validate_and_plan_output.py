"""`o2ctl validate` caps its table (JSON stays complete); `o2ctl plan` prints nothing a value can forge."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from o2ctl import commands, plan
from shared.payloads import FocomRequest

REPO = Path(__file__).resolve().parents[3]


EXAMPLE_HOSTS = len(json.loads((REPO / "examples" / "input.json").read_text())["hosts"])


def _many_problems(tmp_path: Path, count: int) -> Path:
    inv = json.loads((REPO / "examples" / "input.json").read_text())
    template = inv["hosts"][0]
    inv["hosts"] += [
        {**template, "host_id": f"x{i}", "host_name": f"x-{i}", "host_ip": f"not-an-ip-{i}"} for i in range(count)
    ]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(inv))
    return path


def test_validate_table_is_capped_and_json_is_complete(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _many_problems(tmp_path, commands.VALIDATE_TABLE_ROWS + 57)
    assert commands.validate(path, "json") == 2
    problems = json.loads(capsys.readouterr().out)["problems"]
    total = len(problems)
    assert total >= commands.VALIDATE_TABLE_ROWS + 57
    assert {p["path"] for p in problems} >= {f"$.hosts[{i + EXAMPLE_HOSTS}].host_ip" for i in range(257)}

    assert commands.validate(path, "table") == 2
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{path}: {total} problem(s)"
    rows = [line for line in lines[2:] if line.startswith("$.")]
    assert len(rows) == commands.VALIDATE_TABLE_ROWS
    assert (
        lines[-1] == f"… and {total - commands.VALIDATE_TABLE_ROWS} more problem(s) not shown; `-o json` lists them all"
    )
    assert commands.validate(path, "yaml") == 2
    assert len(yaml.safe_load(capsys.readouterr().out)["problems"]) == total


async def test_plan_comments_cannot_inject_documents(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    injected = "\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: pwned}\n"
    spec = SimpleNamespace(
        name="edge" + injected,
        control_plane=[1],
        workers=[],
        k8s_version="v1.31.4",
        vip="10.0.0.1" + injected,
        all_hosts=[],
        cni=None,
    )
    objects = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"k": "v" + injected}}]

    def specs(*_: Any, **__: Any) -> list[Any]:
        return [spec]

    def render(*_: Any) -> list[dict[str, Any]]:
        return objects

    monkeypatch.setattr(plan, "create_specs", specs)
    monkeypatch.setattr(plan, "render_and_validate", render)
    code = await plan.plan(
        REPO / "examples" / "input.json",
        FocomRequest(name="p", allClusters=True),
        output="yaml",
        t=None,
        cni={},
        default_cni=None,
    )
    out = capsys.readouterr()
    assert code == 0
    documents = [d for d in yaml.safe_load_all(out.out) if d is not None]
    assert documents == objects  # the one rendered object, its value intact; nothing else
    comments = [line for line in out.out.splitlines() if line.startswith("#")]
    assert len(comments) == 1 and "VIP 10.0.0.1\\n---\\napiVersion: rbac" in comments[0]
    assert all(line.startswith("#") for line in out.err.splitlines())
