"""The sandbox hosts' latency profile: command classes, parsing, and the delay a host applies."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sandbox.hosts import SandboxHost
from sandbox.hosts import shell as shell_module
from sandbox.hosts.latency import FAST, PROFILES, REALISTIC, LatencyProfile
from shared.errors import InputError

APT = "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["apt-get", "install", "-y", "socat"], 3.0),
        (["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "-q", "containerd"], 3.0),
        (["/usr/bin/apt", "install", "kubelet"], 3.0),
        (["apt-get", "update", "-q"], 0.0),
        (["apt-get", "purge", "-y", "kubelet"], 0.0),
        (["curl", "-fsSL", "-o", "/tmp/x", "https://example.invalid/x"], 1.0),
        (["wget", "https://example.invalid/x"], 1.0),
        (["systemctl", "restart", "containerd"], 0.5),
        (["systemctl", "start", "byoh-hostagent"], 0.5),
        (["systemctl", "enable", "--now", "containerd"], 0.5),
        (["systemctl", "enable", "containerd"], 0.0),
        (["systemctl", "is-active", "containerd"], 0.0),
        (["systemctl", "daemon-reload"], 0.0),
        (["sha256sum", "/usr/local/bin/byoh-hostagent"], 0.0),
        ([], 0.0),
    ],
)
def test_realistic_profile_classifies_commands(argv: list[str], expected: float) -> None:
    assert REALISTIC.command_delay(argv) == expected
    assert FAST.command_delay(argv) == 0.0


def test_realistic_profile_figures() -> None:
    assert REALISTIC.to_json() == {
        "package_install": 3.0,
        "download": 1.0,
        "service_restart": 0.5,
        "agent_registration": 2.0,
    }
    assert FAST.is_zero and not REALISTIC.is_zero


def test_parse_names_and_json() -> None:
    assert LatencyProfile.parse("fast") is FAST
    assert LatencyProfile.parse(" realistic ") is REALISTIC
    assert set(PROFILES) == {"fast", "realistic"}
    custom = LatencyProfile.parse('{"download": 2, "agent_registration": 0.25}')
    assert custom == LatencyProfile(download=2.0, agent_registration=0.25)


@pytest.mark.parametrize(
    "spec",
    [
        "slow",
        "[]",
        "{bad json",
        '{"download": -1}',
        '{"download": "1"}',
        '{"download": true}',
        '{"download": 601}',
        '{"nap": 1}',
    ],
)
def test_parse_refuses_bad_specs(spec: str) -> None:
    with pytest.raises(InputError):
        LatencyProfile.parse(spec)


async def test_host_waits_the_profile_delay_before_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def recording_sleep(delay: float, *args: object) -> None:
        slept.append(delay)
        await real_sleep(0)

    host = await asyncio.to_thread(
        SandboxHost.create, tmp_path / "h", host_id="host-001", host_name="node-001", ip="127.0.0.1"
    )
    monkeypatch.setattr(shell_module.asyncio, "sleep", recording_sleep)
    await host.run_command("systemctl is-active containerd; true")
    assert slept == []  # the default profile is fast: no delay at all

    host.latency = LatencyProfile(service_restart=0.5, download=1.25)
    result = await host.run_command("systemctl is-active containerd; curl -fsS https://nowhere.invalid/x; true")
    assert result.exit_code == 0
    assert slept == [1.25]  # the query is free; the download waits, then fails as before (no mirror entry)
