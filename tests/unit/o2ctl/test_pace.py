"""``--pace`` of ``o2ctl up``/``demo``: the sandbox hosts' latency profiles, fast by default, sandbox only."""

from __future__ import annotations

from pathlib import Path

import pytest

from o2ctl import cli, client, stack
from sandbox.hosts.latency import PROFILES


def test_pace_choices_are_the_latency_profiles_and_default_to_fast() -> None:
    assert set(cli.PACES) == set(PROFILES)
    assert cli.parse_args(["up", "--sandbox"]).pace == "fast"
    assert cli.parse_args(["demo"]).pace == "fast"
    assert cli.parse_args(["demo", "--pace", "realistic"]).pace == "realistic"
    with pytest.raises(SystemExit):
        cli.parse_args(["up", "--sandbox", "--pace", "sluggish"])


def test_pace_needs_the_sandbox() -> None:
    with pytest.raises(client.UsageError, match="--pace needs --sandbox"):
        cli._up(cli.parse_args(["up", "--pace", "realistic"]))


def test_the_hosts_child_gets_the_profile(tmp_path: Path) -> None:
    argv = stack.hosts_child(tmp_path, 3, 2222, latency="realistic").argv
    assert argv[argv.index("--latency") + 1] == "realistic"
    default = stack.hosts_child(tmp_path, 3, 2222).argv
    assert default[default.index("--latency") + 1] == "fast"
