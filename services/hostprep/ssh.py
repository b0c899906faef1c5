"""The SSH adapter (asyncssh): verified connections, privileged commands with timeouts, file uploads.

Every connection goes to the address, port and user of hostprep's own inventory (a ``ResolvedHost``),
never to one a message named. Host keys are verified against the host's pinned keys or, for a host
with none pinned, the known_hosts entries of that address; a host with no trusted key, or one
presenting a different key, fails, it is never accepted on first use. No OpenSSH client config,
agent or default key is consulted: only what ``CredentialStore`` resolved. Commands run as
given for root and under ``sudo -n bash -c`` for other users. Every failure leaves this module
as a ``shared.errors`` error carrying the host id, never a secret:

=======================================================  ==========================================
what went wrong                                          error (reason)
=======================================================  ==========================================
no trusted key / key mismatch                            PermanentError (HostKeyUnknown/Mismatch)
credentials refused                                      PermanentError (AuthFailed)
refused, unreachable, connect timeout, connection lost   TemporaryError (HostUnreachable/...)
a command exceeding its timeout                          TemporaryError (CommandTimeout)
=======================================================  ==========================================
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import posixpath
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import structlog
from asyncssh.encryption import get_default_encryption_algs

from services.hostprep.credentials import HostCredentials, ResolvedHost, TrustSources
from shared.errors import PermanentError, ServiceError, TemporaryError, UnexpectedError

log = structlog.get_logger(__name__)

_STDERR_TAIL = 10


@dataclass(frozen=True)
class SshTarget:
    host_id: str
    address: str
    port: int
    username: str

    def __str__(self) -> str:
        return f"{self.host_id} ({self.username}@{self.address}:{self.port})"


@dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def stderr_tail(self, lines: int = _STDERR_TAIL) -> str:
        return "\n".join(self.stderr.strip().splitlines()[-lines:])


def privileged(script: str, username: str) -> str:
    """The command line that runs ``script`` as root for ``username``."""
    if username == "root":
        return script
    return f"sudo -n bash -c {shlex.quote(script)}"


def _classify(exc: BaseException, target: SshTarget, during: str) -> ServiceError:
    where = f"{during} {target}"
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return PermanentError(f"{where}: the host key does not match the trusted key", reason="HostKeyMismatch")
    if isinstance(exc, asyncssh.PermissionDenied):
        return PermanentError(f"{where}: authentication failed (credentials refused)", reason="AuthFailed")
    if isinstance(exc, asyncssh.ConnectionLost):
        return TemporaryError(f"{where}: connection lost", reason="ConnectionLost")
    if isinstance(exc, asyncssh.DisconnectError):
        return TemporaryError(f"{where}: disconnected: {exc.reason}", reason="Disconnected")
    if isinstance(exc, asyncssh.ChannelOpenError):
        return TemporaryError(f"{where}: channel refused: {exc.reason}", reason="ChannelFailed")
    if isinstance(exc, asyncssh.SFTPError):
        return PermanentError(f"{where}: SFTP error: {exc.reason}", reason="UploadFailed")
    if isinstance(exc, ConnectionRefusedError):
        return TemporaryError(f"{where}: connection refused", reason="ConnectionRefused")
    if isinstance(exc, TimeoutError):
        return TemporaryError(f"{where}: timed out", reason="ConnectTimeout")
    if isinstance(exc, OSError):
        text = errno.errorcode.get(exc.errno or 0, "") or exc.strerror or type(exc).__name__
        return TemporaryError(f"{where}: {text}", reason="HostUnreachable")
    if isinstance(exc, asyncssh.Error):
        return TemporaryError(f"{where}: {type(exc).__name__}", reason="SshError")
    # Not an SSH failure at all (a bug): unexpected, so the bus logs its traceback and bounds retries.
    return UnexpectedError(f"{where}: unexpected {type(exc).__name__}")


class _KeyCache:
    """Private keys and parsed known_hosts, loaded off the loop and kept while the file is unchanged."""

    def __init__(self) -> None:
        self._keys: dict[tuple[Path, int], Any] = {}
        self._known: dict[int, Any] = {}

    async def private_key(self, creds: HostCredentials) -> Any:
        path = creds.key_file
        assert path is not None
        passphrase = creds.passphrase.get_secret_value() if creds.passphrase else None

        def load() -> tuple[int, Any]:
            stamp = path.stat().st_mtime_ns
            cached = self._keys.get((path, stamp))
            return stamp, cached if cached is not None else asyncssh.read_private_key(path, passphrase)

        try:
            stamp, key = await asyncio.to_thread(load)
        except OSError as exc:
            raise PermanentError(
                f"cannot read the SSH key for {creds.host_id}: {exc.strerror}", reason="NoCredentials"
            ) from None
        except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError):
            raise PermanentError(
                f"the SSH key for {creds.host_id} cannot be loaded (format or passphrase)", reason="NoCredentials"
            ) from None
        self._keys[(path, stamp)] = key
        return key

    def known_hosts(self, text: str) -> Any:
        digest = hash(text)
        parsed = self._known.get(digest)
        if parsed is None:
            parsed = self._known[digest] = asyncssh.import_known_hosts(text)
        return parsed


def trusted_host_keys(
    trust: TrustSources, target: SshTarget, known_hosts: Any
) -> tuple[list[Any], list[Any], list[Any]]:
    """(host keys, CA keys, revoked keys) to verify this host with: its pinned keys only, when it has any."""
    host_keys: list[Any] = []
    for text in trust.pinned:
        try:
            host_keys.append(asyncssh.import_public_key(text))
        except asyncssh.KeyImportError:
            raise PermanentError(
                f"the pinned host key for {target.host_id} is not an OpenSSH public key", reason="InvalidPinnedKeys"
            ) from None
    ca_keys: list[Any] = []
    revoked: list[Any] = []
    if known_hosts is not None and not host_keys:
        matched = known_hosts.match(target.address, target.address, target.port if target.port != 22 else None)
        host_keys += list(matched[0])
        ca_keys += list(matched[1])
        revoked += list(matched[2])
    if not host_keys and not ca_keys:
        raise PermanentError(
            f"no trusted host key for {target} (pin one or add it to known_hosts; unknown keys are never accepted)",
            reason="HostKeyUnknown",
        )
    return host_keys, ca_keys, revoked


#: AES-GCM first: with AES-NI it costs a fraction of ChaCha20-Poly1305 per packet in asyncssh (which builds
#: new cipher contexts for every ChaCha20 packet), and packet crypto is most of hostprep's CPU per host.
#: Both are AEAD ciphers of OpenSSH's default list; a server without AES-GCM still gets the rest of it.
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


def encryption_algs() -> list[str]:
    """The ciphers hostprep offers, in order: ``PREFERRED_CIPHERS``, then asyncssh's other defaults."""
    defaults = [alg.decode() for alg in get_default_encryption_algs()]
    return [*PREFERRED_CIPHERS, *(alg for alg in defaults if alg not in PREFERRED_CIPHERS)]


class SshConnector:
    """Opens verified sessions to resolved hosts (address, login and trusted keys from hostprep's own files)."""

    def __init__(self, *, connect_timeout: float, keepalive: float = 30.0) -> None:
        self._connect_timeout = connect_timeout
        self._keepalive = keepalive
        self._cache = _KeyCache()

    async def open(self, host: ResolvedHost) -> SshSession:
        ref, creds, trust = host.ref, host.credentials, host.trust
        target = SshTarget(ref.host_id, ref.host_ip, ref.ssh_port, ref.ssh_user)
        known = self._cache.known_hosts(trust.known_hosts) if trust.known_hosts else None
        host_keys = trusted_host_keys(trust, target, known)
        keys = [await self._cache.private_key(creds)] if creds.key_file else None
        options: dict[str, Any] = {
            "username": target.username,
            "known_hosts": host_keys,
            "client_keys": keys,
            "password": creds.password.get_secret_value() if creds.password else None,
            "kbdint_auth": False,
            "agent_path": None,
            "config": None,
            "x509_trusted_certs": None,
            "connect_timeout": self._connect_timeout,
            "login_timeout": self._connect_timeout,
            "keepalive_interval": self._keepalive,
            "keepalive_count_max": 3,
            "encryption_algs": encryption_algs(),
        }
        try:
            conn = await asyncio.wait_for(
                asyncssh.connect(target.address, target.port, **options), self._connect_timeout * 2
            )
        except Exception as exc:
            raise _classify(exc, target, "connecting to") from exc
        return SshSession(conn, target)


#: Bytes of a command's stdout, and of its stderr, that are kept; a recipe command prints a few KiB at most.
MAX_OUTPUT = 1 << 20


class _Collected(asyncssh.SSHClientSession[bytes]):
    """One command's channel: its output, exit status or signal, and when it closed.

    A plain session rather than asyncssh's process streams: a recipe command's output is small and read
    whole, and the stream machinery was a good part of hostprep's CPU per command.
    """

    def __init__(self) -> None:
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.exit_status: int | None = None
        self.exit_signal: str | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes, datatype: int | None) -> None:
        # A host's answer is untrusted: what a command prints past MAX_OUTPUT is dropped, not held in memory.
        kept = self.stderr if datatype == asyncssh.EXTENDED_DATA_STDERR else self.stdout
        room = MAX_OUTPUT - len(kept)
        if room > 0:
            kept += data[:room]

    def exit_status_received(self, status: int) -> None:
        self.exit_status = status

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        self.exit_signal = signal

    def connection_lost(self, exc: Exception | None) -> None:
        # A lost connection shows as a missing exit status (ConnectionLost below), whatever the socket said.
        if not self.closed.done():
            self.closed.set_result(None)


class SshSession:
    """One open connection to a host; commands and uploads run as root (sudo for other users)."""

    def __init__(self, conn: Any, target: SshTarget) -> None:
        self._conn = conn
        self.target = target

    @property
    def is_root(self) -> bool:
        return self.target.username == "root"

    async def run(self, script: str, *, timeout: float, stdin: bytes | None = None, root: bool = True) -> CommandResult:
        """Run a shell script; a non-zero exit is a result, not an error."""
        command = privileged(script, self.target.username) if root else script
        channel: Any = None
        try:
            async with asyncio.timeout(timeout):
                channel, session = await self._conn.create_session(_Collected, command, encoding=None)
                if stdin is not None:
                    channel.write(stdin)
                channel.write_eof()
                await session.closed
        except TimeoutError:
            raise TemporaryError(
                f"a command on {self.target} did not finish within {timeout:g}s", reason="CommandTimeout"
            ) from None
        except Exception as exc:
            raise _classify(exc, self.target, "running a command on") from exc
        finally:
            if channel is not None:
                channel.close()
        status = session.exit_status
        if status is None or status < 0:
            if not session.exit_signal:
                # The channel closed without an exit status: the connection went away mid-command.
                raise TemporaryError(
                    f"the connection to {self.target} was lost during a command", reason="ConnectionLost"
                )
            status = 128 + 9  # killed by a signal: report it like a shell does
        return CommandResult(
            exit_status=int(status),
            stdout=session.stdout.decode("utf-8", "replace"),
            stderr=session.stderr.decode("utf-8", "replace"),
        )

    async def put_file(
        self, path: str, data: bytes, *, mode: int, timeout: float, sha256: str | None = None
    ) -> CommandResult:
        """Upload ``data`` to ``path`` (owner root) with ``mode``, atomically, staging it over SFTP as 0600.

        The staged copy lives in the login user's home so that a non-root user can write it; a
        privileged ``install`` then moves it into place (a running binary is replaced, not rewritten).
        With ``sha256``, the staged copy must have that digest on the host before it replaces anything.
        """
        stage = f".o2ims-stage-{hashlib.sha256(path.encode()).hexdigest()[:16]}"
        try:
            async with asyncio.timeout(timeout):
                async with self._conn.start_sftp_client() as sftp:
                    home = await sftp.realpath(".")
                    attrs = asyncssh.SFTPAttrs(permissions=0o600)
                    async with sftp.open(stage, "wb", attrs) as handle:
                        await handle.write(data)
                    await sftp.chmod(stage, 0o600)
        except TimeoutError:
            raise TemporaryError(
                f"uploading to {self.target} did not finish within {timeout:g}s", reason="CommandTimeout"
            ) from None
        except Exception as exc:
            raise _classify(exc, self.target, "uploading a file to") from exc
        staged = posixpath.join(home, stage)
        q = shlex.quote
        install = f"install -D -m {mode:04o} -o root -g root {q(staged)} {q(path)}"
        if sha256 is not None:
            install = f"printf '%s  %s\\n' {q(sha256)} {q(staged)} | sha256sum -c --quiet && {install}"
        # The staged copy is removed whatever install did; the script's status is install's (or the check's).
        script = f"{install}; rc=$?; rm -f {q(staged)}; exit $rc"
        return await self.run(script, timeout=timeout)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()
            await asyncio.wait_for(self._conn.wait_closed(), 5.0)
