"""o2ctl's command-line habits: global flags on either side of the subcommand, uncut tables in pipes, one
example in every --help."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from o2ctl import cli
from o2ctl.output import printable, table

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    "argv",
    [
        ["-o", "yaml", "--state-dir", "/s", "--nats-url", "nats://n:1", "--kubeconfig", "/k", "plan", "--all"],
        ["plan", "--all", "-o", "yaml", "--state-dir", "/s", "--nats-url", "nats://n:1", "--kubeconfig", "/k"],
        ["--state-dir", "/s", "plan", "-o", "yaml", "--all", "--kubeconfig", "/k", "--nats-url", "nats://n:1"],
    ],
)
def test_global_flags_before_or_after_the_subcommand(argv: list[str]) -> None:
    args = cli.parse_args(argv)
    assert (args.command, args.output, args.state_dir, args.nats_url, args.kubeconfig, args.all) == (
        "plan",
        "yaml",
        "/s",
        "nats://n:1",
        "/k",
        True,
    )


def test_global_defaults_and_the_later_flag_wins() -> None:
    args = cli.parse_args(["status"])
    assert (args.output, args.state_dir, args.nats_url, args.kubeconfig) == ("table", None, None, None)
    assert cli.parse_args(["-o", "json", "status", "-o", "yaml"]).output == "yaml"
    # The file of `kubeconfig` is --out; -o stays the output format there too.
    args = cli.parse_args(["kubeconfig", "edge", "--out", "edge.kc", "-o", "json"])
    assert (args.out, args.output) == (Path("edge.kc"), "json")


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli._parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_help_shows_one_example(capsys: pytest.CaptureFixture[str]) -> None:
    commands = _subcommands()
    assert {"up", "plan", "validate", "kubeconfig"} <= set(commands)
    for argv in [["--help"], *([name, "--help"] for name in commands)]:
        with pytest.raises(SystemExit) as done:
            cli.parse_args(argv)
        assert done.value.code == 0
        text = capsys.readouterr().out
        examples = [
            line.strip() for line in text.splitlines()[text.splitlines().index("example:") + 1 :] if line.strip()
        ]
        assert len(examples) == 1, (argv, text)
        assert examples[0].startswith("o2ctl " + ("" if argv == ["--help"] else argv[0])), (argv, examples)


def test_plain_tables_never_cut_a_cell() -> None:
    long_path = "$.clusters[0].cluster_workers[12].host_id" + ".x" * 80
    out = io.StringIO()  # not a terminal
    table("problems", ("path", "rule", "message"), [(long_path, "unknown-host", "no host with this id " * 8)], out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "problems" and lines[1].split() == ["PATH", "RULE", "MESSAGE"]
    assert long_path in lines[2] and ("no host with this id " * 8).strip() in lines[2]
    assert "…" not in out.getvalue()


def test_cells_cannot_forge_lines() -> None:
    out = io.StringIO()
    table(None, ("name",), [("edge\n---\nkind: Secret\x1b[2J",)], out)
    assert out.getvalue().splitlines() == ["NAME", "edge\\n---\\nkind: Secret\\x1b[2J"]
    assert printable("tab\there\u2028next\u202eevil\x85") == "tab\\there\\u2028next\\u202eevil\\x85"


def test_piped_validate_prints_whole_paths(tmp_path: Path) -> None:
    bad = json.loads((REPO / "examples" / "input.json").read_text())
    bad["clusters"][0]["cluster_workers"][0]["host_id"] = "no-such-host-" + "z" * 50
    path = tmp_path / "a-rather-long-directory-name-for-the-inventory" / "bad.json"
    path.parent.mkdir()
    path.write_text(json.dumps(bad))
    res = subprocess.run(
        [sys.executable, "-m", "o2ctl", "validate", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert res.returncode == 2, res.stderr
    assert "$.clusters[0].cluster_workers[0].host_id" in res.stdout and str(path) in res.stdout
    assert "…" not in res.stdout
