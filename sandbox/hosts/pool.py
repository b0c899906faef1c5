"""A pool of SSH sandbox hosts served from one process: keys, addresses, known_hosts, faults, inventory."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import os
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import asyncssh
import structlog

from shared.errors import InputError

from .agents import AgentSupervisor, preload_agent
from .facts import HostFacts
from .faults import Fault
from .host import SandboxHost
from .latency import FAST, LatencyProfile
from .server import HostEndpoint, listen_socket
from .shims import registry
from .shims.fetch import mirror_lookup
from .state import HostState

log = structlog.get_logger(__name__)

AGENT_VERSION = "v0.5.0"
_PORT_ATTEMPTS = 10


def fake_agent_binary(version: str = AGENT_VERSION) -> bytes:
    """What the sandbox hosts accept as the BYOH agent: a magic first line, then filler bytes."""
    filler = bytes(range(256)) * 4
    return f"#!sandbox-byoh-hostagent {version}\n".encode() + b"\x7fELF sandbox fake byoh-hostagent\n" + filler


def host_addresses(first: str, count: int) -> list[str]:
    """Consecutive loopback addresses from ``first``, skipping .0 and .255 in the last octet."""
    addr = ipaddress.IPv4Address(first)
    if not addr.is_loopback:
        raise InputError(
            f"{first} is not a loopback address (sandbox hosts listen on 127.0.0.0/8 only)", path="first_address"
        )
    out: list[str] = []
    while len(out) < count:
        last = int(addr) & 0xFF
        if last not in (0, 255):
            out.append(str(addr))
        addr += 1
        if not addr.is_loopback:
            raise InputError(f"{count} hosts from {first} run past 127.255.255.254", path="count")
    return out


def _load_or_create_key(path: Path) -> asyncssh.SSHKey:
    if path.is_file():
        return asyncssh.read_private_key(str(path))
    key = asyncssh.generate_private_key("ssh-ed25519")
    path.write_bytes(key.export_private_key())
    os.chmod(path, 0o600)
    path.with_name(path.name + ".pub").write_bytes(key.export_public_key())
    return key


#: Seconds a host's state file may lag behind its in-memory state (the default of ``save_interval``).
SAVE_DEBOUNCE = 0.25


class SandboxHostPool:
    """``count`` hosts named host-001/node-001... (from ``first_index``), each on its own loopback address.

    Pools in different processes (the sandbox's hosts spread over cores, as real hosts are over machines)
    take disjoint ``first_index`` and address ranges, so that host ids and ByoHost names stay unique.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        count: int,
        user: str = "root",
        password: str | None = None,
        first_address: str = "127.0.1.1",
        first_index: int = 1,
        port: int = 0,
        mirror: Mapping[str, bytes] | None = None,
        host_overrides: Mapping[str, HostFacts] | None = None,
        agent_binary_url: str | None = None,
        latency: LatencyProfile = FAST,
        save_interval: float = SAVE_DEBOUNCE,
    ) -> None:
        if count < 1:
            raise InputError("count must be at least 1", path="count")
        if not 1 <= first_index <= 99_999:
            raise InputError("first_index must be in [1, 99999]", path="first_index")
        if not 0 < save_interval <= 3600:
            raise InputError("save_interval must be in (0, 3600] seconds", path="save_interval")
        self.state_dir = Path(state_dir)
        self.count = count
        self.user = user
        self.password = password
        self.port = port
        self.addresses = host_addresses(first_address, count)
        self.first_index = first_index
        self.host_overrides = dict(host_overrides or {})
        self.agent_binary_url = agent_binary_url
        self.latency = latency
        #: Seconds a host's ``state.json`` may lag behind its in-memory state; every write serialises the
        #: whole state, so a pool nobody reads from outside while it runs (a benchmark) can write less often.
        self.save_interval = save_interval
        self.agent_binary = fake_agent_binary()
        self.mirror: dict[str, bytes] = dict(mirror or {})
        if agent_binary_url:
            self.mirror.setdefault(agent_binary_url, self.agent_binary)
        self.known_hosts_path = self.state_dir / "known_hosts"
        self.client_key_path = self.state_dir / "id_ed25519"
        self.agent_binary_path = self.state_dir / "byoh-hostagent-linux-amd64"
        self.hosts: list[SandboxHost] = []
        self._endpoints: dict[str, HostEndpoint] = {}
        self._by_id: dict[str, SandboxHost] = {}
        self._dirty: set[str] = set()
        self._saving: dict[str, asyncio.Task[None]] = {}
        self._changed: asyncio.Event | None = None
        #: Set by ``stop()``: pending saves write now instead of waiting out the interval.
        self._flush: asyncio.Event | None = None
        self._started = False

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        client_key, host_keys = await asyncio.to_thread(self._prepare_files)
        # Code every host will run, loaded before any host serves: the shims, the agent simulator.
        await asyncio.to_thread(lambda: (registry(), preload_agent()))
        socks = self._bind_all()
        try:
            known_hosts = "".join(self._known_hosts_line(h, host_keys[h.host_id]) for h in self.hosts)
            await asyncio.to_thread(self.known_hosts_path.write_text, known_hosts, encoding="utf-8")
            for host in self.hosts:
                host.agents = AgentSupervisor(host)
                host.on_change = lambda h=host: self._schedule_save(h)
                self._endpoints[host.host_id] = HostEndpoint(
                    host, host_key=host_keys[host.host_id], client_key=client_key, password=self.password
                )
            await asyncio.gather(*(self._endpoints[h.host_id].start(socks.pop(h.host_id)) for h in self.hosts))
        except BaseException:
            for sock in socks.values():
                sock.close()
            await self.stop()
            raise
        self._started = True
        log.info("sandbox_hosts_started", count=len(self.hosts), port=self.port, first=self.addresses[0])

    def _prepare_files(self) -> tuple[asyncssh.SSHKey, dict[str, asyncssh.SSHKey]]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        client_key = _load_or_create_key(self.client_key_path)
        self.agent_binary_path.write_bytes(self.agent_binary)
        os.chmod(self.agent_binary_path, 0o755)  # noqa: S103 - a fake executable, as a client would upload it
        host_keys: dict[str, asyncssh.SSHKey] = {}
        mirror = _MirrorView(self.mirror)
        for index, ip in enumerate(self.addresses, start=self.first_index):
            host_id, host_name = f"host-{index:03d}", f"node-{index:03d}"
            facts = self.host_overrides.get(host_id) or self.host_overrides.get(host_name) or HostFacts()
            directory = self.state_dir / host_id
            host = SandboxHost.create(
                directory,
                host_id=host_id,
                host_name=host_name,
                ip=ip,
                port=self.port,
                user=self.user,
                facts=facts,
                mirror=mirror,
            )
            host_keys[host_id] = _load_or_create_key(directory / "ssh_host_ed25519_key")
            host.latency = self.latency
            self.hosts.append(host)
            self._by_id[host_id] = host
        return client_key, host_keys

    def _bind_all(self) -> dict[str, socket.socket]:
        """Bind every host's address on one shared port (a free one when ``port`` is 0)."""
        last_error: OSError | None = None
        for _ in range(_PORT_ATTEMPTS if self.port == 0 else 1):
            port = self.port or _free_port(self.addresses[0])
            socks: dict[str, socket.socket] = {}
            try:
                for host in self.hosts:
                    host.port = port
                    socks[host.host_id] = listen_socket(host.ip, port)
            except OSError as exc:
                last_error = exc
                for sock in socks.values():
                    sock.close()
                continue
            self.port = port
            return socks
        raise OSError(f"could not bind the sandbox hosts on a common port: {last_error}")

    @staticmethod
    def _known_hosts_line(host: SandboxHost, key: asyncssh.SSHKey) -> str:
        public = key.export_public_key().decode().strip()
        name = host.ip if host.port == 22 else f"[{host.ip}]:{host.port}"
        return f"{name} {public}\n"

    async def stop(self) -> None:
        """Stop listening, close every connection, stop every agent, flush state (no task is left behind)."""
        await asyncio.gather(*(ep.stop() for ep in self._endpoints.values()))
        for host in self.hosts:
            if host.agents is not None:
                await host.agents.stop_all()
        if self._flush is not None:
            self._flush.set()
        for task in list(self._saving.values()):
            with contextlib.suppress(Exception):
                await task
        self._flush = None
        if self.hosts:
            await asyncio.to_thread(self._save_all)
        self._endpoints.clear()
        self._started = False

    def _save_all(self) -> None:
        for host in self.hosts:
            host.save_sync()

    def _schedule_save(self, host: SandboxHost) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()
        self._dirty.add(host.host_id)
        if host.host_id in self._saving:
            return
        self._saving[host.host_id] = asyncio.get_running_loop().create_task(self._save_loop(host))

    async def _save_loop(self, host: SandboxHost) -> None:
        try:
            while host.host_id in self._dirty:
                # Coalesce a burst of commands into one write: serialising the whole state after every
                # command dominated the sandbox's CPU. ``stop()`` and readers in this process see the
                # in-memory state; the file lags by at most this much.
                if self._flush is None:
                    self._flush = asyncio.Event()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._flush.wait(), self.save_interval)
                if self._flush.is_set():
                    return  # stopping: ``stop()`` writes every host's state once
                self._dirty.discard(host.host_id)
                await host.save()
        finally:
            self._saving.pop(host.host_id, None)

    # -- queries and control ---------------------------------------------------------------------

    def host(self, host_id: str) -> SandboxHost:
        try:
            return self._by_id[host_id]
        except KeyError:
            raise KeyError(f"no sandbox host {host_id!r}") from None

    def endpoint(self, host_id: str) -> HostEndpoint:
        return self._endpoints[self.host(host_id).host_id]

    async def wait_for(self, host_id: str, predicate: Callable[[HostState], bool], timeout: float) -> None:
        """Wait until ``predicate(state)`` holds for the host (checked after every change); TimeoutError after
        ``timeout`` seconds."""
        state = self.host(host_id).state
        async with asyncio.timeout(timeout):
            while not predicate(state):
                if self._changed is None:
                    self._changed = asyncio.Event()
                await self._changed.wait()

    def set_fault(self, host_id: str, fault: Fault | None) -> None:
        """Inject (or clear, with None) a fault; connection faults take effect before this returns."""
        host = self.host(host_id)
        host.set_fault(fault)
        endpoint = self._endpoints.get(host_id)
        if endpoint is not None:
            endpoint.apply_fault()
        log.info("sandbox_host_fault", host_id=host_id, fault=fault.kind if fault else None)

    def set_latency(self, profile: LatencyProfile) -> None:
        """Apply a latency profile to every host (commands already waiting keep their delay)."""
        self.latency = profile
        for host in self.hosts:
            host.latency = profile
        log.info("sandbox_host_latency", **profile.to_json())

    def inventory_hosts(self) -> list[dict[str, Any]]:
        return [
            {
                "host_id": h.host_id,
                "host_name": h.host_name,
                "host_ip": h.ip,
                "host_user": h.user,
                "ssh_port": h.port,
                "ssh_key_file": str(self.client_key_path),
            }
            for h in self.hosts
        ]

    def write_inventory(self, path: Path, k8s_version: str = "v1.30.2") -> None:
        """An ``input.json`` naming every host (no clusters); the inventory format requires a version."""
        doc = {"k8s_version": k8s_version, "hosts": self.inventory_hosts()}
        path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")

    def describe(self) -> dict[str, Any]:
        return {
            "count": len(self.hosts),
            "port": self.port,
            "first_address": self.addresses[0],
            "first_index": self.first_index,
            "known_hosts": str(self.known_hosts_path),
            "client_key": str(self.client_key_path),
            "agent_binary": str(self.agent_binary_path),
            "agent_binary_url": self.agent_binary_url,
            "facts_overridden": sorted(self.host_overrides),
            "latency": self.latency.to_json(),
            "default_facts": dataclasses.asdict(HostFacts()),
        }


class _MirrorView(Mapping[str, bytes]):
    """The pool's URL -> bytes map plus the generated pkgs.k8s.io Release.key of every minor."""

    def __init__(self, data: Mapping[str, bytes]) -> None:
        self._data = data

    def __getitem__(self, url: str) -> bytes:
        found = mirror_lookup(self._data, url)
        if found is None:
            raise KeyError(url)
        return found

    def __iter__(self) -> Any:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, url: object) -> bool:
        return isinstance(url, str) and mirror_lookup(self._data, url) is not None


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])
