"""A reusable in-process harness for whole-system runs on the sandbox (chaos, faults, bad input, secrets, benchmarks).

``Stack(state_dir, StackOptions(...))`` starts what ``o2ctl up --sandbox`` starts, in the caller's event loop
and with the same building blocks (``o2ctl.stack``, ``o2ctl.supervisor``, ``shared.natsserver``): NATS with
its file store, the Kubernetes API emulator with the simulated CAPI/BYOH controllers (``capi`` = SimOptions
fields), N SSH sandbox hosts (``faults`` per host, an optional password) and every service, ``replicas``
processes each. The inventory lays ``clusters`` clusters of ``hosts_per_cluster`` hosts (one control plane)
onto the hosts. The stack can kill children (the supervisor restarts them), restart NATS and the emulator,
read records (``fpr``/``pr``/``hosts`` buckets, host ``state.json``), logs and every stream message, and
check the invariants of ``tests.e2e.invariants`` against those real records.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import nats
import nats.errors
import nats.js.errors
from nats.js.api import ConsumerInfo

from o2ctl import stack
from o2ctl.supervisor import Child, Supervisor
from shared.bus import Bus
from shared.connect import ensure_buckets, ensure_streams
from shared.kube import KubeClient
from shared.messages import Envelope
from shared.natsauth import NatsUser, new_password
from shared.natsserver import EmbeddedNats
from shared.payloads import FocomRequest
from shared.subjects import ALL_BUCKETS, ALL_STREAMS, BUCKET_FPR, BUCKET_HOSTS, BUCKET_PR, FOCOM_REQUESTS
from tests.e2e.objects import ObjectRecorder

T = TypeVar("T")
SERVICES = stack.SERVICES
K8S_VERSION = "v1.30.2"
READY_TIMEOUT = 90.0
#: The harness's own NATS user (every permission: it reads every stream and record to check invariants).
HARNESS_USER = "e2e-harness"
#: Test-friendly service settings (short SSH timeouts, a quick redelivery of a killed hostprep's job).
TEST_ENV: dict[str, dict[str, str]] = {
    "hostprep": {
        "O2_HOSTPREP_CONNECT_TIMEOUT": "5",
        "O2_HOSTPREP_REGISTRATION_TIMEOUT": "60",
        "O2_HOSTPREP_JOBS_ACK_WAIT": "15",
    }
}


async def eventually(
    check: Callable[[], Awaitable[T | None]],
    timeout: float,
    what: str,
    wake: asyncio.Event | None = None,
    interval: float = 0.25,
) -> T:
    """Re-check ``check`` until it returns something truthy, woken by ``wake`` or every ``interval`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if wake is not None:
            wake.clear()
        got = await check()
        if got:
            return got
        left = deadline - loop.time()
        if left <= 0:
            raise AssertionError(f"gave up after {timeout:.0f}s waiting for {what}")
        waiter = wake.wait() if wake is not None else asyncio.sleep(interval)  # a bounded re-check, not a pause
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter, min(left, interval if wake is None else 1.0))


@dataclass
class StackOptions:
    clusters: int = 3
    hosts_per_cluster: int = 3
    spare_hosts: int = 0
    #: Processes per service: one number for all, or per service name.
    replicas: int | Mapping[str, int] = 1
    #: host_id -> fault spec, as ``python -m sandbox.hosts --faults-file`` takes it.
    faults: Mapping[str, str | dict[str, Any]] = field(default_factory=dict)
    #: SimOptions fields of the simulated CAPI/BYOH controllers.
    capi: Mapping[str, Any] = field(default_factory=dict)
    #: Per service environment overrides; a None value removes the variable.
    env: Mapping[str, Mapping[str, str | None]] = field(default_factory=dict)
    #: The sandbox hosts also accept this password; ``password_hosts`` get it as ``host_pwd`` and no key file.
    password: str | None = None
    password_hosts: frozenset[str] = frozenset()
    k8s_version: str = K8S_VERSION
    record_objects: bool = True
    log_level: str = "info"
    #: Apply ``TEST_ENV`` (short SSH and redelivery timeouts); benchmarks run with the production defaults.
    test_env: bool = True
    #: The sandbox hosts' latency profile (``python -m sandbox.hosts --latency``): fast, realistic or JSON.
    latency: str = "fast"

    def replicas_of(self, service: str) -> int:
        return self.replicas if isinstance(self.replicas, int) else self.replicas.get(service, 1)


def cluster_name(i: int) -> str:
    return f"c{i + 1:03d}"


def vip(i: int) -> str:
    """A free loopback VIP per cluster, far above the hosts' addresses (which start at 127.0.1.1)."""
    return f"127.0.{200 + i // 250}.{i % 250 + 1}"


def build_inventory(hosts: list[dict[str, Any]], options: StackOptions) -> dict[str, Any]:
    hosts = [{k: v for k, v in h.items() if v is not None} for h in hosts]
    for h in hosts:
        if h["host_id"] in options.password_hosts:
            h.pop("ssh_key_file", None)
            h["host_pwd"] = options.password
    per = options.hosts_per_cluster
    clusters = []
    for i in range(options.clusters):
        ids = [h["host_id"] for h in hosts[i * per : (i + 1) * per]]
        clusters.append(
            {
                "cluster_name": cluster_name(i),
                "cluster_masters": [{"host_id": ids[0]}],
                "cluster_workers": [{"host_id": h} for h in ids[1:]],
                "control_plane_endpoint": vip(i),
                "cni": stack.SANDBOX_CNI,
            }
        )
    return {"k8s_version": options.k8s_version, "namespace": "default", "hosts": hosts, "clusters": clusters}


class Stack:
    def __init__(self, state: Path, options: StackOptions | None = None) -> None:
        self.state = state
        self.options = options or StackOptions()
        self.logs_dir = state / "logs"
        # Auth on, as in production: each service its own role; the harness itself an unrestricted test user.
        self.nats_passwords = stack.nats_passwords(state)
        self._harness_password = new_password()
        self.nats = EmbeddedNats(
            state / "nats",
            log_file=self.logs_dir / "nats.log",
            users=[*stack.nats_users(self.nats_passwords), NatsUser(HARNESS_USER, self._harness_password, None)],
        )
        self.sup = Supervisor(self.logs_dir, max_backoff=2.0)
        self.inventory: dict[str, Any] = {}
        self.inventory_path = state / "input.json"
        #: Inventory host id → the sandbox host's own id, for inventories that renumber the hosts.
        self.host_dirs: dict[str, str] = {}
        self.changed = asyncio.Event()
        #: o2ims.status messages seen (a progress clock for chaos plans; replays count too).
        self.transitions = 0
        self._bus: Bus | None = None
        self._kube: KubeClient | None = None
        self.recorder: ObjectRecorder | None = None
        self._http: aiohttp.ClientSession | None = None

    # ── lifecycle ─────────────────────────────────────────────────────────────────────

    async def __aenter__(self) -> Stack:
        try:
            return await self.start()
        except BaseException:
            await self.stop()
            raise

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def bus(self) -> Bus:
        assert self._bus is not None, "stack not started"
        return self._bus

    @property
    def kube(self) -> KubeClient:
        assert self._kube is not None, "stack not started"
        return self._kube

    @property
    def clusters(self) -> list[str]:
        return [c["cluster_name"] for c in self.inventory.get("clusters", [])]

    @property
    def services(self) -> list[str]:
        return [n for n in self.sup.children if n.split("-")[0] in SERVICES]

    async def start(self) -> Stack:
        o = self.options
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        await self.nats.start()
        kubeapi = stack.kubeapi_child(self.state, stack.free_port())
        if o.capi:
            kubeapi.argv = [*kubeapi.argv, "--capi-options", json.dumps(dict(o.capi), default=sorted)]
        hosts = stack.hosts_child(
            self.state, o.clusters * o.hosts_per_cluster + o.spare_hosts, stack.free_port(), latency=o.latency
        )
        faults = self.state / "faults.json"
        faults.write_text(json.dumps(dict(o.faults)))
        hosts.argv = [*hosts.argv, "--faults-file", str(faults)]
        if o.password is not None:
            secret = self.state / "host-password"
            secret.write_text(o.password)
            secret.chmod(0o600)
            hosts.argv = [*hosts.argv, "--password-file", str(secret)]
        await self.sup.start(kubeapi)
        await self.sup.start(hosts)
        await self.sup.wait_ready("kubeapi", READY_TIMEOUT)
        ready = await self.sup.wait_ready("hosts", READY_TIMEOUT)
        listed = json.loads(Path(ready["inventory"]).read_text())
        self.inventory = build_inventory(listed["hosts"] if isinstance(listed, dict) else listed, o)
        self.write_inventory(self.inventory)
        nc = await nats.connect(
            self.nats.url,
            connect_timeout=5,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            user=HARNESS_USER,
            password=self._harness_password.get_secret_value(),
        )
        self._bus = Bus(nc, source="e2e-harness")
        await ensure_streams(self.bus.js)
        await ensure_buckets(self.bus.js)
        for pattern in ("focom.status.>", "o2ims.status.>"):
            await nc.subscribe(pattern, cb=self._on_status)
        self._kube = await KubeClient.from_kubeconfig(self.state / "kubeconfig")
        if o.record_objects:
            self.recorder = ObjectRecorder(self.kube)
            self.recorder.start()
        for name in SERVICES:
            env = {
                **stack.service_env(
                    name, nats_url=self.nats.url, state=self.state, sandbox=True, passwords=self.nats_passwords
                ),
                "O2_LOG_LEVEL": o.log_level,
                **(TEST_ENV.get(name, {}) if o.test_env else {}),
            }
            for key, value in o.env.get(name, {}).items():
                if value is None:
                    env.pop(key, None)
                else:
                    env[key] = value
            for r in range(o.replicas_of(name)):
                spec = stack.service_child(name, env)
                spec.name = name if r == 0 else f"{name}-{r + 1}"
                await self.sup.start(spec)
        for name in self.services:
            await self.sup.wait_ready(name, READY_TIMEOUT)
        return self

    async def stop(self) -> None:
        if self.recorder is not None:
            await self.recorder.stop()
        if self._http is not None:
            await self._http.close()
        if self._kube is not None:
            await self._kube.close()
        if self._bus is not None:
            await self._bus.close()
        await self.sup.stop()
        await self.nats.stop()

    async def _on_status(self, msg: Any) -> None:
        if msg.subject.startswith("o2ims."):
            self.transitions += 1
        self.changed.set()

    def write_inventory(self, data: dict[str, Any] | bytes) -> None:
        """Replace the inventory focom and hostprep read (atomically: a new file, renamed over the old)."""
        raw = data if isinstance(data, bytes) else json.dumps(data, indent=1).encode()
        tmp = self.inventory_path.with_name(".input.json.tmp")
        tmp.write_bytes(raw)
        os.replace(tmp, self.inventory_path)

    # ── requests and records ──────────────────────────────────────────────────────────

    async def submit(self, name: str, **fields: Any) -> Envelope:
        return await self.bus.emit(FOCOM_REQUESTS, FocomRequest(name=name, **fields), correlation_id=name)

    async def _records(self, bucket: str) -> dict[str, dict[str, Any]]:
        kv = await self.bus.kv(bucket)
        # The keys from the stream's subjects: nats-py's kv.keys() (an ephemeral watcher) can come back short.
        info = await self.bus.js.stream_info(f"KV_{bucket}", subjects_filter=f"$KV.{bucket}.>")
        keys = sorted(subject.split(".", 2)[2] for subject in (info.state.subjects or {}))
        out = {}
        for key in keys:
            with contextlib.suppress(nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
                entry = await kv.get(key)
                if entry.value:
                    out[key] = json.loads(entry.value)
        return out

    async def fprs(self) -> dict[str, dict[str, Any]]:
        """FPR records by name (the bucket's ``<fpr>.<cluster>`` spec records left out)."""
        return {k: v for k, v in (await self._records(BUCKET_FPR)).items() if "." not in k}

    async def fpr(self, name: str) -> dict[str, Any] | None:
        kv = await self.bus.kv(BUCKET_FPR)
        try:
            entry = await kv.get(name)
        except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
            return None
        return json.loads(entry.value) if entry.value else None

    async def prs(self) -> dict[str, dict[str, Any]]:
        return await self._records(BUCKET_PR)

    async def leases(self) -> dict[str, str]:
        return {k: str(v.get("owner")) for k, v in (await self._records(BUCKET_HOSTS)).items()}

    async def settled(self, name: str, timeout: float = 120.0) -> dict[str, Any]:
        """The FPR record once it is Synced or Failed with every child fulfilled or failed."""

        async def done() -> dict[str, Any] | None:
            rec = await self.fpr(name)
            children = (rec or {}).get("children") or {}
            if (
                rec
                and rec.get("phase") in ("Synced", "Failed")
                and all(c.get("state") in ("fulfilled", "failed") for c in children.values())
            ):
                return rec
            return None

        return await eventually(done, timeout, f"FPR {name} to settle", wake=self.changed)

    def host_state(self, host_id: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self._host_dir(host_id) / "state.json").read_text())
        return data

    def host_file(self, host_id: str, path: str) -> str:
        return (self._host_dir(host_id) / "root" / path.lstrip("/")).read_text(errors="replace")

    def _host_dir(self, host_id: str) -> Path:
        return self.state / "hosts" / self.host_dirs.get(host_id, host_id)

    # ── chaos ─────────────────────────────────────────────────────────────────────────

    def child(self, name: str) -> Child:
        return self.sup.children[name]

    async def kill(
        self, name: str, *, sig: int = signal.SIGKILL, wait: bool = True, timeout: float = READY_TIMEOUT
    ) -> None:
        """Signal a child (SIGKILL by default); with ``wait``, return once it was restarted and is ready again."""
        child = self.child(name)
        before = child.restarts
        if child.proc is not None and child.proc.returncode is None:
            child.proc.send_signal(sig)
        if not wait:
            return

        async def restarted() -> bool:
            return child.restarts > before

        await eventually(restarted, timeout, f"{name} to be restarted")
        await self.sup.wait_ready(name, timeout)

    async def restart_nats(self) -> None:
        """Stop NATS and start it again on the same port with its file store; clients reconnect."""
        await self.nats.restart()

    async def restart_kubeapi(self) -> None:
        """Stop the emulator (and its simulators) with SIGTERM; it comes back on the same port with its objects.

        Not SIGKILL: the emulator writes its state directory only when it stops cleanly.
        """
        await self.kill("kubeapi", sig=signal.SIGTERM)

    # ── observation ───────────────────────────────────────────────────────────────────

    def logs(self) -> dict[str, str]:
        return {p.stem: p.read_text(errors="replace") for p in sorted(self.logs_dir.glob("*.log"))}

    def log_records(self, child: str) -> list[dict[str, Any]]:
        out = []
        for line in (self.logs_dir / f"{child}.log").read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                rec = json.loads(line)
                if isinstance(rec, dict):
                    out.append(rec)
        return out

    async def stream_messages(self) -> AsyncIterator[tuple[str, str, bytes]]:
        """(stream, subject, data) of every message kept in every stream, KV buckets included."""
        names = [s.name for s in ALL_STREAMS] + [f"KV_{b}" for b in ALL_BUCKETS]
        for name in names:
            info = await self.bus.js.stream_info(name)
            if not info.state.messages:
                continue  # an empty stream reports first_seq 0, which is no message's sequence
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                try:
                    msg = await self.bus.js.get_msg(name, seq)
                except nats.js.errors.NotFoundError:
                    continue
                yield name, msg.subject or "", msg.data or b""

    async def count(self, stream: str, subject: str) -> int:
        info = await self.bus.js.stream_info(stream, subjects_filter=subject)
        return sum((info.state.subjects or {}).values())

    async def durables(self) -> list[ConsumerInfo]:
        found = []
        for spec in ALL_STREAMS:
            found += [c for c in await self.bus.js.consumers_info(spec.name) if c.config.durable_name]
        return found

    async def ready(self, child: str) -> bool:
        """The child's ``/readyz`` answers 200 (NATS connected, consumers bound)."""
        port = self.child(child).info.get("http_port")
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        try:
            async with self._http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    def rss_kib(self, child: str) -> tuple[int, int]:
        """(current, peak) resident set size of a child process in KiB."""
        pid = self.child(child).pid
        fields = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
        )
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])
