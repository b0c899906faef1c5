"""Secrets on the whole system: after a run with password and key auth, no secret is in any log or message.

Cluster c001's hosts are reached with the SSH key (``ssh_key_file`` in the inventory), c002's with a password
only (``host_pwd``; hostprep has no default key, so nothing but the password can log in). Once both are
Synced, with every service logging at debug level, the secret material (the password, every line of the
private key, the emulator's admin token, the bootstrap token secrets the BYOH controller issued, the workload
clusters' kubeconfig credentials) is searched for in every log file of every process, every message kept in
every stream and KV bucket, and every command line (and stderr tail) the sandbox hosts recorded.
"""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

import pytest
import yaml

from tests.e2e.harness import Stack, StackOptions
from tests.e2e.invariants import run_problems

pytestmark = pytest.mark.e2e

PASSWORD = "pw-" + secrets.token_urlsafe(18)
KEY_HOSTS = ("host-001", "host-002", "host-003")
PASSWORD_HOSTS = frozenset({"host-004", "host-005", "host-006"})


async def secret_material(stack: Stack) -> dict[str, str]:
    """What must never show up, by a name that says what it is (the name, never the value, is reported)."""
    found = {"host password": PASSWORD}
    key = (stack.state / "hosts" / "id_ed25519").read_text()
    body = [ln for ln in key.splitlines() if ln and not ln.startswith("-----")]
    found.update({f"private key line {i + 1}": ln for i, ln in enumerate(body) if len(ln) >= 16})
    found["private key body"] = "".join(body)
    kubeconfig = yaml.safe_load((stack.state / "kubeconfig").read_text())
    found["emulator admin token"] = kubeconfig["users"][0]["user"]["token"]
    found.update({f"NATS password of {role}": pw.get_secret_value() for role, pw in stack.nats_passwords.items()})
    tokens, _ = await stack.kube.list(
        "v1", "Secret", "kube-system", field_selector="type=bootstrap.kubernetes.io/token"
    )
    for s in tokens:
        found[f"bootstrap token {s['metadata']['name']}"] = base64.b64decode(s["data"]["token-secret"]).decode()
    for cluster in stack.clusters:
        secret = await stack.kube.get("v1", "Secret", f"{cluster}-kubeconfig", "default")
        config = yaml.safe_load(base64.b64decode(secret["data"]["value"])) if secret else {}
        for user in config.get("users", []):
            for field, value in user["user"].items():
                found[f"{cluster} kubeconfig {field}"] = str(value)
    return found


async def haystacks(stack: Stack) -> dict[str, str]:
    """Every place a secret must not be: logs, stream messages, recorded host commands."""
    places = {f"log {name}": text for name, text in stack.logs().items()}
    async for stream, subject, data in stack.stream_messages():
        key = f"{stream} {subject}"
        places[key] = places.get(key, "") + "\n" + data.decode("utf-8", "replace")
    for host in [*KEY_HOSTS, *sorted(PASSWORD_HOSTS)]:
        log = stack.host_state(host)["log"]
        places[f"{host} command log"] = json.dumps([(r["command"], r["stderr_tail"]) for r in log])
    return places


async def test_no_secret_in_any_log_or_message(tmp_path: Path) -> None:
    options = StackOptions(
        clusters=2,
        password=PASSWORD,
        password_hosts=PASSWORD_HOSTS,
        log_level="debug",
        env={"hostprep": {"O2_HOSTPREP_SSH_KEY_FILE": None}},
    )
    async with Stack(tmp_path / "stack", options) as stack:
        assert all(
            "host_pwd" in h and "ssh_key_file" not in h
            for h in stack.inventory["hosts"]
            if h["host_id"] in PASSWORD_HOSTS
        )
        await stack.submit("secrets", allClusters=True)
        await stack.settled("secrets")
        problems = await run_problems(stack, {"secrets": {}})
        assert problems == [], "\n".join(problems)
        material = await secret_material(stack)
        assert len([k for k in material if k.startswith("bootstrap token")]) >= 6
        assert len([k for k in material if "kubeconfig" in k]) >= 2
        places = await haystacks(stack)
        # The search sees what it should: the hosts' ids travel in messages, the password sits in input.json.
        assert any("host-004" in text for place, text in places.items() if not place.startswith("log"))
        assert PASSWORD in stack.inventory_path.read_text()
        leaks = sorted(
            {(what, place) for place, text in places.items() for what, value in material.items() if value in text}
        )
        assert leaks == [], "secret material found (what, where):\n" + "\n".join(map(str, leaks))
