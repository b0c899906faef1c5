"""Per-service NATS credentials: generating them, keeping them in a 0600 file, and the server's users block.

``o2ctl up`` and the test harnesses keep one random password per role (``shared.natsroles.ROLES``) in a
credentials file (JSON, mode 0600, created with ``O_EXCL|O_NOFOLLOW`` so an existing file or a symlink
planted in its place is never written through). The embedded ``nats-server`` gets the same users with
their permissions in its configuration file (``authorization_config``); each service gets its own user
and password in its environment, and ``o2ctl`` reads its own from the file. The chart does the same with
a Kubernetes Secret (``deploy/helm``), from the permissions this module prints:

    python -m shared.natsauth permissions   # role -> NATS permissions, as JSON (the chart's generated file)
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from shared.errors import PermanentError
from shared.natsroles import ROLES, Role, all_permissions, inbox_prefix, permissions

CREDENTIALS_FILE = "nats-credentials.json"


@dataclass(frozen=True)
class NatsUser:
    """One identity of the NATS server: a user, its password and its permissions (None = no limits)."""

    user: str
    password: SecretStr
    permissions: Mapping[str, Any] | None

    def __repr__(self) -> str:  # never show the password, even in a traceback
        return f"NatsUser({self.user!r})"


def new_password() -> SecretStr:
    return SecretStr(secrets.token_urlsafe(32))


def users_for(passwords: Mapping[str, SecretStr], roles: Iterable[Role] = ROLES) -> list[NatsUser]:
    """The server users of ``roles``, each with its role's permissions."""
    return [NatsUser(r.name, passwords[r.name], permissions(r)) for r in roles]


def authorization_config(users: Sequence[NatsUser]) -> str:
    """A ``nats-server`` configuration fragment declaring ``users`` (JSON is valid NATS configuration)."""
    entries = []
    for u in users:
        entry: dict[str, Any] = {"user": u.user, "password": u.password.get_secret_value()}
        if u.permissions is not None:
            entry["permissions"] = u.permissions
        entries.append(entry)
    return "authorization " + json.dumps({"users": entries}, indent=1) + "\n"


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600, never following a symlink and never through a stale file.

    A temp file beside it is created exclusively, ``fchmod``-ed, written, then renamed over ``path``.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb", closefd=False) as out:
            out.write(data)
            out.flush()
            os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _read_private(path: Path) -> dict[str, Any]:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PermanentError(f"{path} is not a regular file", reason="InsecureCredentials")
        if st.st_mode & 0o077:
            raise PermanentError(
                f"{path} is readable by others (mode {stat.S_IMODE(st.st_mode):04o}); it must be 0600",
                reason="InsecureCredentials",
            )
        if st.st_uid != os.getuid():
            raise PermanentError(f"{path} belongs to another user", reason="InsecureCredentials")
        with os.fdopen(fd, "rb", closefd=False) as f:
            raw = f.read()
    finally:
        os.close(fd)
    try:
        data = json.loads(raw)
    except ValueError:
        raise PermanentError(f"{path} is not valid JSON", reason="InsecureCredentials") from None
    if not isinstance(data, dict) or not isinstance(data.get("users"), dict):
        raise PermanentError(f'{path}: expected {{"users": {{role: password}}}}', reason="InsecureCredentials")
    return data


def load_passwords(path: Path) -> dict[str, SecretStr]:
    """Role -> password from a credentials file (refused unless it is a 0600 regular file of ours)."""
    users = _read_private(path)["users"]
    return {str(k): SecretStr(str(v)) for k, v in users.items()}


def ensure_credentials(path: Path, roles: Iterable[Role] = ROLES) -> dict[str, SecretStr]:
    """The passwords of ``roles`` from ``path``, generating (and saving) any that are missing."""
    passwords = load_passwords(path) if path.exists() or path.is_symlink() else {}
    missing = [r.name for r in roles if r.name not in passwords]
    if missing:
        passwords.update({name: new_password() for name in missing})
        body = {"users": {k: v.get_secret_value() for k, v in sorted(passwords.items())}}
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, json.dumps(body, indent=1).encode())
    return passwords


def service_env(role: str, passwords: Mapping[str, SecretStr]) -> dict[str, str]:
    """The environment that makes a service connect as its own role."""
    return {"O2_NATS_USER": role, "O2_NATS_PASSWORD": passwords[role].get_secret_value()}


def client_options(role: str, passwords: Mapping[str, SecretStr]) -> dict[str, Any]:
    """``nats.connect`` keyword arguments for a client (``o2ctl``, tests) connecting as ``role``."""
    return {"user": role, "password": passwords[role].get_secret_value(), "inbox_prefix": inbox_prefix(role)}


def env_client_options(env: Mapping[str, str]) -> dict[str, Any]:
    """``nats.connect`` arguments from ``O2_NATS_USER``/``O2_NATS_PASSWORD`` or ``O2_NATS_CREDS_FILE`` (the
    ``o2ctl`` role's credentials for a system started elsewhere, e.g. from the chart's Secret)."""
    opts: dict[str, Any] = {"inbox_prefix": inbox_prefix("o2ctl")}
    if env.get("O2_NATS_CREDS_FILE"):
        opts["user_credentials"] = env["O2_NATS_CREDS_FILE"]
    if env.get("O2_NATS_USER"):
        opts["user"] = env["O2_NATS_USER"]
        opts["password"] = env.get("O2_NATS_PASSWORD", "")
    return opts


def main(argv: list[str]) -> int:
    if argv != ["permissions"]:
        print("usage: python -m shared.natsauth permissions", file=sys.stderr)  # noqa: T201
        return 2
    print(json.dumps(all_permissions(), indent=2, sort_keys=True))  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
