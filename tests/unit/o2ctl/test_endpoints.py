"""``o2ctl endpoints`` and ``o2ctl token`` against a state dir, and ``up --fault`` refusals."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

import pytest

from o2ctl import cli, stack
from o2ctl.state import RunState
from shared.httpapi.auth import ROLES, AuthConfig, TokenVerifier


def _state(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    RunState(
        nats_url="nats://127.0.0.1:4999",
        kubeconfig=str(state / "kubeconfig"),
        supervisor_pid=os.getpid(),
        ready=True,
        children={"o2ims_api": {"pid": os.getpid()}},
    ).save(state)
    stack.api_files(state)
    return state


def test_endpoints_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = _state(tmp_path)
    assert cli.main(["--state-dir", str(state), "-o", "json", "endpoints"]) == 0
    found = json.loads(capsys.readouterr().out)
    port = (state / "o2ims-api" / "port").read_text().strip()
    assert found["o2ims_api"] == f"http://127.0.0.1:{port}" and found["nats"] == "nats://127.0.0.1:4999"


def test_endpoints_without_a_running_system(tmp_path: Path) -> None:
    assert cli.main(["--state-dir", str(tmp_path / "none"), "endpoints"]) == 3


@pytest.mark.parametrize("roles", [[], ["reader"], ["provisioner", "subscriber"]])
def test_token_is_accepted_by_the_api_verifier(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], roles: list[str]
) -> None:
    state = _state(tmp_path)
    key = state / "o2ims-api" / "signing-key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    argv = ["--state-dir", str(state), "token"] + [a for r in roles for a in ("--role", r)]
    assert cli.main(argv) == 0
    token = capsys.readouterr().out.strip()
    verifier = TokenVerifier(
        AuthConfig(
            issuer=stack.API_ISSUER,
            audience=stack.API_AUDIENCE,
            public_key_file=state / "o2ims-api" / "signing-key.pub.pem",
        )
    )
    who = asyncio.run(verifier.verify(token))
    assert who.roles == frozenset(roles or ROLES)


def test_token_refuses_unknown_roles(tmp_path: Path) -> None:
    assert cli.main(["--state-dir", str(_state(tmp_path)), "token", "--role", "root"]) == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["up", "--fault", "host-001=unreachable"],
        ["up", "--sandbox", "--fault", "host-001"],
        ["up", "--sandbox", "--fault", "host-001=teleported"],
    ],
)
def test_up_refuses_bad_faults(tmp_path: Path, argv: list[str]) -> None:
    assert cli.main(["--state-dir", str(tmp_path / "s"), *argv]) == 2


def test_endpoints_include_focoms_api(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    RunState(
        nats_url="nats://127.0.0.1:4999",
        supervisor_pid=os.getpid(),
        ready=True,
        children={"o2ims_api": {"pid": os.getpid()}, "focom_api": {"pid": os.getpid()}},
    ).save(state)
    env = stack.focom_api_env(state, sandbox=False)
    assert cli.main(["--state-dir", str(state), "-o", "json", "endpoints"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["focom_api"] == f"http://127.0.0.1:{env['O2_FOCOM_API_PORT']}/focom/v1"
    # One token serves both APIs: FOCOM's trusts the same public key.
    assert env["O2_FOCOM_API_JWT_PUBLIC_KEY_FILE"] == str(state / "o2ims-api" / "signing-key.pub.pem")
