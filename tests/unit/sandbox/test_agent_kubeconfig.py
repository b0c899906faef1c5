"""How the BYOH agent simulator reads its bootstrap kubeconfig (no cluster needed for these)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sandbox.capi.agent import HostAgent, _names_files
from shared.errors import PermanentError


async def test_a_bootstrap_kubeconfig_that_is_not_yaml_fails_without_quoting_it(tmp_path: Path) -> None:
    bootstrap = tmp_path / "bootstrap-kubeconfig"
    bootstrap.write_text("users: [{name: u, user: {token: abcdef.0123456789abcdef}\n  - : ]")
    agent = HostAgent(bootstrap_kubeconfig=bootstrap, hostname="host-1", config_path=tmp_path / "config")
    with pytest.raises(PermanentError) as caught:
        await agent.start()
    assert caught.value.reason == "InvalidKubeconfig"
    assert "0123456789abcdef" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert not (tmp_path / "config").exists()


@pytest.mark.parametrize(
    ("kubeconfig", "names_files"),
    [
        (
            {
                "clusters": [{"name": "c", "cluster": {"server": "https://x", "certificate-authority-data": "Zm9v"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
            },
            False,
        ),
        ({"clusters": [{"name": "c", "cluster": {"server": "https://x", "certificate-authority": "ca.crt"}}]}, True),
        ({"users": [{"name": "u", "user": {"client-certificate": "c.crt", "client-key": "c.key"}}]}, True),
        ({"users": [{"name": "u", "user": {"tokenFile": "token"}}]}, True),
        ({"users": [{"name": "u", "user": {"exec": {"command": "plugin"}}}]}, True),
        ({"clusters": None, "users": ["not a mapping", {"name": "u"}]}, False),
    ],
)
def test_an_agent_reads_its_written_config_back_only_when_it_names_files(
    kubeconfig: dict[str, Any], names_files: bool
) -> None:
    assert _names_files(kubeconfig) is names_files
