"""The SSH endpoint of one sandbox host (asyncssh server): auth, exec requests, SFTP, and connection faults."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import socket
from typing import Any

import asyncssh
import structlog

from .host import SandboxHost
from .sftp import HostSFTPServer

log = structlog.get_logger(__name__)
_LISTEN_BACKLOG = 128
_LOGIN_TIMEOUT = 30.0


def listen_socket(ip: str, port: int) -> socket.socket:
    """Bind and listen synchronously, so clients queue in the backlog until asyncssh accepts."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ip, port))
        sock.listen(_LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class _BatchedTransport:
    """A connection's socket transport that sends what one turn of the event loop wrote in one system call.

    asyncssh writes every SSH packet as soon as it is built, and a command's answer is several (its
    output, its exit status, EOF, close): a send on this end and a receive on the client's for each.
    The bytes and their order are unchanged; they leave at the end of the loop turn that wrote them,
    and before a close or an abort.
    """

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.append(data if isinstance(data, bytes) else bytes(data))

    def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._flush()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _HostSSHServer(asyncssh.SSHServer):
    def __init__(self, endpoint: HostEndpoint) -> None:
        self._endpoint = endpoint
        self._conn: Any = None

    def connection_made(self, conn: Any) -> None:
        self._conn = conn
        self._endpoint.connections.add(conn)
        # asyncssh keeps the socket transport in ``_transport`` (and only writes, closes or aborts it); where
        # it does not, the connection simply stays unbatched. (uvloop's transports are no asyncio.Transport.)
        transport = getattr(conn, "_transport", None)
        if all(callable(getattr(transport, name, None)) for name in ("write", "close", "abort", "get_extra_info")):
            conn._transport = _BatchedTransport(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._endpoint.connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def _allowed(self, username: str) -> bool:
        fault = self._endpoint.host.fault
        return username == self._endpoint.host.user and not (fault is not None and fault.kind == "auth_failure")

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return self._allowed(username) and key.public_data == self._endpoint.client_key.public_data

    def password_auth_supported(self) -> bool:
        return self._endpoint.password is not None

    def validate_password(self, username: str, password: str) -> bool:
        expected = self._endpoint.password
        return (
            expected is not None
            and self._allowed(username)
            and hmac.compare_digest(password.encode(), expected.encode())
        )


class HostEndpoint:
    """Listens on the host's own address; ``apply_fault()`` (sync) reconfigures it at once."""

    def __init__(
        self, host: SandboxHost, *, host_key: asyncssh.SSHKey, client_key: asyncssh.SSHKey, password: str | None
    ) -> None:
        self.host = host
        self.host_key = host_key
        self.client_key = client_key
        self.password = password
        self.connections: set[Any] = set()
        self._acceptor: Any = None
        self._alt_key: asyncssh.SSHKey | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def listening(self) -> bool:
        return self._acceptor is not None

    def bind(self) -> socket.socket:
        return listen_socket(self.host.ip, self.host.port)

    def _current_key(self) -> asyncssh.SSHKey:
        fault = self.host.fault
        if fault is not None and fault.kind == "wrong_host_key":
            if self._alt_key is None:
                self._alt_key = asyncssh.generate_private_key("ssh-ed25519")
            return self._alt_key
        return self.host_key

    async def start(self, sock: socket.socket | None = None) -> None:
        fault = self.host.fault
        if fault is not None and fault.kind == "unreachable":
            if sock is not None:
                sock.close()
            return
        sock = sock or self.bind()
        try:
            self._acceptor = await asyncssh.listen(
                sock=sock,
                server_factory=lambda: _HostSSHServer(self),
                server_host_keys=[self._current_key()],
                process_factory=self._run_process,
                sftp_factory=lambda chan: HostSFTPServer(chan, self.host),
                encoding=None,
                allow_scp=False,
                login_timeout=_LOGIN_TIMEOUT,
                keepalive_interval=0,
            )
        except BaseException:
            sock.close()
            raise

    def apply_fault(self) -> None:
        fault = self.host.fault
        if fault is not None and fault.kind == "unreachable":
            if self._acceptor is not None:
                self._acceptor.close()
                self._acceptor = None
            for conn in list(self.connections):
                conn.abort()
            return
        if self._acceptor is None:
            self._spawn(self.start(self.bind()))
            return
        self._acceptor.update(server_host_keys=[self._current_key()])

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        if self._acceptor is not None:
            acceptor, self._acceptor = self._acceptor, None
            acceptor.close()
            with contextlib.suppress(Exception):
                await acceptor.wait_closed()
        for conn in list(self.connections):
            conn.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for conn in list(self.connections):
            with contextlib.suppress(Exception):
                await conn.wait_closed()
        self.connections.clear()

    # -- exec requests ---------------------------------------------------------------------------

    async def _run_process(self, process: Any) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._serve(process)
        except Exception:
            # A bug in the sandbox must look like a failed command, not hang the client.
            log.exception("sandbox_host_internal_error", host_id=self.host.host_id)
            with contextlib.suppress(Exception):
                process.stderr.write(b"sandbox host internal error (see the sandbox log)\n")
                process.exit(255)
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _serve(self, process: Any) -> None:
        command = process.command
        host = self.host
        if command is None:
            process.stderr.write(b"This sandbox host accepts exec requests only (no interactive shell).\n")
            process.exit(1)
            return
        hangup = asyncio.Event()
        watcher = asyncio.get_running_loop().create_task(self._watch_close(process, hangup))
        try:
            fault = host.command_fault(command)
            if fault is not None and fault.kind == "command_failure":
                stderr = (fault.stderr.rstrip("\n") + "\n").encode() if fault.stderr else b""
                host.record_fault(command, fault, fault.exit_code, stderr)
                process.stderr.write(stderr)
                process.exit(fault.exit_code)
                return
            if fault is not None and fault.kind == "slow_command":
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(hangup.wait(), fault.delay)
                if hangup.is_set():
                    host.record_fault(command, fault, 129)
                    return

            async def read_stdin() -> bytes:
                data = await process.stdin.read()
                return bytes(data)

            result = await host.run_command(command, stdin=read_stdin, env=process.env, hangup=hangup)
            if fault is not None and fault.kind == "drop_connection":
                host.state.log[-1].fault = fault.kind
                log.info("sandbox_host_drop_connection", host_id=host.host_id)
                process.channel.get_connection().abort()
                return
            if not hangup.is_set():
                process.stdout.write(result.stdout)
                process.stderr.write(result.stderr)
                process.exit(result.exit_code)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    @staticmethod
    async def _watch_close(process: Any, hangup: asyncio.Event) -> None:
        await process.channel.wait_closed()
        hangup.set()
