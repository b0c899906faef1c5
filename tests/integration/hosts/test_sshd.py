"""The same shims behind a real OpenSSH sshd (ForceCommand -> ``python -m sandbox.hosts.exec``).

The recipe run through sshd must leave exactly the state it leaves on an asyncssh sandbox host.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest

from sandbox.hosts.seed import init_host_dir
from sandbox.hosts.state import HostState
from tests.fixtures.sandbox_hosts import ssh_connect
from tests.integration.hosts.helpers import PREP_COMMANDS, recorded_effects

pytestmark = pytest.mark.sshd

SSHD = Path("/usr/sbin/sshd")
LOGIN = "sandboxprep"
REPO_ROOT = Path(__file__).resolve().parents[3]
CHECKS = [
    "kubeadm version -o short; systemctl is-active containerd; systemctl is-enabled kubelet",
    "sudo -n apt-get install -y kubelet=1.30.9-1.1",
    "apt-get install -y socat",
    "echo $(hostname)",
]


def _skip_reason() -> str | None:
    if not SSHD.is_file():
        return "OpenSSH sshd is not installed (apt-get install -y openssh-server)"
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "running sshd with its own login user needs root"
    if shutil.which("runuser") is None or shutil.which("useradd") is None:
        return "runuser/useradd are not available"
    return None


def _ensure_login_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(LOGIN)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", LOGIN], check=True, capture_output=True)
        # useradd leaves the password locked ("!"), and sshd without PAM refuses locked accounts.
        subprocess.run(["usermod", "--password", "*", LOGIN], check=True, capture_output=True)
        return pwd.getpwnam(LOGIN)


def _interpreter(code_dir: Path) -> list[str] | None:
    """A Python the login user can run that imports sandbox.hosts.exec (the venv's, else the system's)."""
    env = f"PYTHONPATH={code_dir}"
    for python in (sys.executable, "/usr/bin/python3"):
        probe = subprocess.run(
            [
                "runuser",
                "-u",
                LOGIN,
                "--",
                "env",
                env,
                "PYTHONDONTWRITEBYTECODE=1",
                python,
                "-c",
                "import sys, sandbox.hosts.exec; assert sys.version_info >= (3, 11)",
            ],
            capture_output=True,
            check=False,
            cwd="/",
        )
        if probe.returncode == 0:
            return ["env", env, "PYTHONDONTWRITEBYTECODE=1", python]
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _session_processes(sid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            # fields: state, ppid, pgrp, session; a zombie is already dead (its new parent reaps it).
            if int(fields[3]) == sid and fields[0] != "Z":
                pids.append(int(entry.name))
    return pids


@dataclass
class Sshd:
    port: int
    host_dir: Path
    client_key: Path
    known_hosts: Path

    async def connect(self) -> asyncssh.SSHClientConnection:
        return await asyncssh.connect(
            "127.0.0.1",
            self.port,
            username=LOGIN,
            client_keys=[str(self.client_key)],
            known_hosts=str(self.known_hosts),
            connect_timeout=10,
            agent_path=None,
        )


@pytest.fixture
async def sshd() -> AsyncIterator[Sshd]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    user = _ensure_login_user()
    base = Path(tempfile.mkdtemp(prefix="sandbox-sshd-"))
    base.chmod(0o755)
    # A readable copy of the shims: the checkout may sit in a directory the login user cannot enter.
    code_dir = base / "code"
    for package in ("sandbox", "shared"):
        shutil.copytree(REPO_ROOT / package, code_dir / package, ignore=shutil.ignore_patterns("__pycache__"))
    for path in [code_dir, *code_dir.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    python = _interpreter(code_dir)
    if python is None:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"no Python >= 3.11 that user {LOGIN} may run can import sandbox.hosts.exec")
    made_privsep = not Path("/run/sshd").exists()
    proc: asyncio.subprocess.Process | None = None
    try:
        base.chmod(0o755)  # the login user must reach its state dir and authorized_keys
        host_dir = base / "host"
        init_host_dir(host_dir, host_id="host-001", host_name="node-001", ip="127.0.1.1", user=LOGIN)
        for path in [host_dir, *host_dir.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)
        client = asyncssh.generate_private_key("ssh-ed25519")
        client_key = base / "id_ed25519"
        client_key.write_bytes(client.export_private_key())
        client_key.chmod(0o600)
        (base / "authorized_keys").write_bytes(client.export_public_key())
        (base / "authorized_keys").chmod(0o644)
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        (base / "ssh_host_ed25519_key").write_bytes(host_key.export_private_key())
        (base / "ssh_host_ed25519_key").chmod(0o600)
        port = _free_port()
        known_hosts = base / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{port} {host_key.export_public_key().decode().strip()}\n")
        force = " ".join([*python, "-m", "sandbox.hosts.exec", "--state-dir", str(host_dir)])
        config = base / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {base / 'ssh_host_ed25519_key'}",
                    f"PidFile {base / 'sshd.pid'}",
                    "UsePAM no",
                    # The test dir sits under the world-writable /tmp, which StrictModes would refuse.
                    "StrictModes no",
                    f"AuthorizedKeysFile {base / 'authorized_keys'}",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin no",
                    f"AllowUsers {LOGIN}",
                    "AcceptEnv LANG LC_*",
                    "PermitTTY no",
                    "X11Forwarding no",
                    "AllowTcpForwarding no",
                    "PrintMotd no",
                    f"ForceCommand {force}",
                    "",
                ]
            )
        )
        if made_privsep:
            Path("/run/sshd").mkdir(mode=0o755)
        proc = await asyncio.create_subprocess_exec(
            str(SSHD), "-D", "-e", "-f", str(config), stderr=asyncio.subprocess.PIPE, start_new_session=True
        )
        assert proc.stderr is not None
        seen = []
        async with asyncio.timeout(30):
            while True:
                line = (await proc.stderr.readline()).decode()
                seen.append(line)
                if not line:
                    pytest.fail("sshd exited early: " + "".join(seen))
                if "Server listening on 127.0.0.1" in line:
                    break
        yield Sshd(port, host_dir, client_key, known_hosts)
    finally:
        if proc is not None:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                async with asyncio.timeout(30):
                    await proc.wait()
            # Session processes (one per connection) share sshd's session id; none may outlive the test.
            async with asyncio.timeout(30):
                while left := _session_processes(proc.pid):
                    for pid in left:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGTERM)
                    await asyncio.sleep(0.05)
        if made_privsep:
            with contextlib.suppress(OSError):
                Path("/run/sshd").rmdir()
        shutil.rmtree(base, ignore_errors=True)


async def _run_all(conn: asyncssh.SSHClientConnection, commands: list[str]) -> list[tuple[int | None, str, str]]:
    out = []
    for command in commands:
        result = await conn.run(command, check=False)
        out.append((result.exit_status, str(result.stdout), str(result.stderr)))
    return out


async def test_recipe_behind_real_sshd_records_the_same_state(sshd, sandbox_hosts):
    async with await sshd.connect() as conn:
        via_sshd = await _run_all(conn, PREP_COMMANDS + CHECKS)
        identity = await conn.run("id -un; echo $HOME", check=True)
    assert identity.stdout == f"{LOGIN}\n/home/{LOGIN}\n"
    assert all(status == 0 for status, _, _ in via_sshd[: len(PREP_COMMANDS)]), via_sshd

    pool = await sandbox_hosts(count=1, user=LOGIN)
    async with await ssh_connect(pool) as conn:
        via_asyncssh = await _run_all(conn, PREP_COMMANDS + CHECKS)
    assert via_sshd == via_asyncssh

    sshd_state = HostState.load(sshd.host_dir / "state.json")
    pool_state = pool.host("host-001").state
    assert recorded_effects(sshd_state) == recorded_effects(pool_state)
    assert sshd_state.log[-1].command == "id -un; echo $HOME"
    assert [(r.command, r.exit_code, r.changed) for r in sshd_state.log[:-1]] == [
        (r.command, r.exit_code, r.changed) for r in pool_state.log
    ]
    assert {r.source for r in sshd_state.log} == {"exec"}
    assert sshd_state.installed("kubelet") == "1.30.2-1.1"
