"""Host preparation fan-out with latency-bound hosts: hostprep and the same recipe via ansible-playbook.

The sandbox hosts run the ``realistic`` latency profile (``sandbox.hosts.latency``: apt installs 3 s,
downloads 1 s, service restarts 0.5 s, agent registration 2 s, all CPU-free), so a host takes about as
long as a real one and the fan-out is bounded by latency rather than by the sandbox's CPU.

nats-server, the Kubernetes API emulator with the simulated CAPI/BYOH controllers, and each pool of SSH
sandbox hosts run as processes of their own (``bench.sandbox_procs``), as the API server and the hosts
run on machines of their own; hostprep runs as its own process (``python -m services.hostprep``), as in
production, with ``max_parallel_hosts`` = the largest pool. Ours: wall time from publishing the
``HostprepJob`` to its ``HostprepDone`` (every host prepared and its ByoHost registered) on 1, 50, 200
and 1,000 fresh hosts, and hostprep's own CPU seconds (``/proc``), separately from the sandbox's.
Peer: ``bench/ansible/hostprep.yml`` with ``forks`` = hosts (the same concurrency) on fresh hosts with
the same profile, timed from creating the BootstrapKubeconfigs (ansible-core has no Kubernetes
modules, so the benchmark does that part) to the last ByoHost registered; its controller CPU is
ansible-playbook with its forks and their ssh clients, including the ControlPersist masters.
ansible-core comes from the ``bench`` extra and is installed into the running venv when missing.
``BENCH_HOSTPREP_SIZES`` / ``BENCH_ANSIBLE_SIZES`` (comma-separated, or ``none``) override the pool sizes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats

from bench import procstat
from bench.hostprep_figures import BENCH, Run, figures
from bench.report import Figure
from bench.sandbox_procs import Child, HostPool, start_emulator
from sandbox.capi.fakehosts import issue_bootstrap_kubeconfig
from sandbox.hosts.latency import REALISTIC, LatencyProfile
from sandbox.hosts.pool import fake_agent_binary
from shared.bus import Bus
from shared.connect import ensure_buckets, ensure_streams
from shared.kube import KubeClient
from shared.messages import decode
from shared.natsserver import EmbeddedNats
from shared.objects import HOST_ID_LABEL
from shared.payloads import HostprepDone, HostprepFailed, HostprepJob, pr_id_for
from shared.subjects import ALL_HOSTPREP_EVENTS, hostprep_job

REPO = Path(__file__).resolve().parents[1]
PLAYBOOK_DIR = REPO / "bench" / "ansible"
K8S_VERSION = "v1.30.2"
AGENT_URL = "https://downloads.sandbox.invalid/byoh/v0.5.0/byoh-hostagent-linux-{arch}"
INFRA = "infrastructure.cluster.x-k8s.io/v1beta1"
HOSTPREP_SIZES = (1, 50, 200, 1000)
ANSIBLE_SIZES = (1, 50, 200)


def _sizes(variable: str, default: tuple[int, ...]) -> tuple[int, ...]:
    raw = os.environ.get(variable, "")
    if raw.strip() == "none":
        return ()
    return tuple(int(x) for x in raw.split(",") if x.strip()) if raw else default


def _ensure_ansible() -> str | None:
    """Path of ansible-playbook, installing ansible-core into this venv if needed; None when impossible."""
    found = shutil.which("ansible-playbook", path=str(Path(sys.executable).parent)) or shutil.which("ansible-playbook")
    if found:
        return found
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "ansible-core"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        print(f"ansible-core could not be installed: {done.stderr[-500:]}", file=sys.stderr)
        return None
    return shutil.which("ansible-playbook", path=str(Path(sys.executable).parent))


class Sandbox:
    """nats, the emulator with its simulators, hostprep and each pool of hosts: processes of their own."""

    def __init__(self, workdir: Path, *, latency: LatencyProfile = REALISTIC, concurrency: int = 50) -> None:
        self.dir = workdir
        self.latency = latency
        self.concurrency = concurrency
        self.nats = EmbeddedNats(workdir / "nats", log_file=workdir / "nats.log")
        self.kubeapi: Child | None = None
        self.kubeconfig = workdir / "kubeconfig"
        self.inventory = workdir / "input.json"
        self.known_hosts = workdir / "known_hosts"
        #: The HostprepDone/HostprepFailed of each PR id seen so far.
        self.results: dict[str, HostprepDone | HostprepFailed] = {}
        self._arrived = asyncio.Event()
        self._next_net = 1
        self.proc: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None
        #: hostprep's last warning and error lines, shown when a size does not complete.
        self.trouble: collections.deque[str] = collections.deque(maxlen=20)

    async def __aenter__(self) -> Sandbox:
        try:
            return await self._start()
        except BaseException:
            await self.__aexit__()
            raise

    async def _start(self) -> Sandbox:
        await self.nats.start()
        self.kubeapi, self.kubeconfig = await start_emulator(self.dir)
        self.client = await KubeClient.from_kubeconfig(self.kubeconfig)
        self.bus = Bus(await nats.connect(self.nats.url), source="bench")
        await ensure_streams(self.bus.js)
        await ensure_buckets(self.bus.js)
        await self.bus.nc.subscribe(ALL_HOSTPREP_EVENTS, cb=self._on_event)
        self.inventory.write_text('{"hosts": []}')
        self.known_hosts.write_text("")
        await self._start_hostprep()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 30)
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
        if self._drain is not None:
            self._drain.cancel()
        for closer in ("bus", "client"):
            part = getattr(self, closer, None)
            if part is not None:
                await part.close()
        if self.kubeapi is not None:
            await self.kubeapi.stop()
        await self.nats.close()

    async def _on_event(self, msg: Any) -> None:
        payload = decode(msg.data).payload
        if isinstance(payload, HostprepDone | HostprepFailed):
            # Only outcomes are kept: scanning every progress event on each arrival was quadratic in
            # hosts, and this process's CPU is counted as the sandbox's.
            self.results[payload.pr_id] = payload
            self._arrived.set()

    async def _start_hostprep(self) -> None:
        binary = fake_agent_binary()
        env = {
            **os.environ,
            "O2_NATS_URL": self.nats.url,
            "O2_LOG_FORMAT": "json",
            "O2_LOG_LEVEL": "info",
            "O2_HTTP_PORT": "-1",
            "O2_HOSTPREP_INVENTORY_FILE": str(self.inventory),
            "O2_HOSTPREP_KNOWN_HOSTS_FILE": str(self.known_hosts),
            "O2_HOSTPREP_SSH_KEY_DIR": str(self.dir),  # every pool's client key lives below the work directory
            "O2_HOSTPREP_KUBECONFIG": str(self.kubeconfig),
            "O2_HOSTPREP_AGENT_BINARY_URL": AGENT_URL,
            "O2_HOSTPREP_AGENT_BINARY_SHA256": hashlib.sha256(binary).hexdigest(),
            "O2_HOSTPREP_MAX_PARALLEL_HOSTS": str(self.concurrency),
        }
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.hostprep",
            cwd=REPO,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            limit=2**20,  # log lines naming a thousand hosts are longer than the default 64 KiB
        )
        assert self.proc.stderr is not None
        ready = asyncio.Event()

        async def drain(stream: asyncio.StreamReader) -> None:
            # hostprep blocks on a full stderr pipe: keep reading whatever it writes, even past a line longer
            # than the reader's limit (readline drops it and raises ValueError; the loop goes on).
            while True:
                try:
                    line = await stream.readline()
                except ValueError:
                    continue
                if not line:
                    return
                if b'"service_ready"' in line:
                    ready.set()
                elif b'"level": "warning"' in line or b'"level": "error"' in line:
                    self.trouble.append(line.decode(errors="replace").strip()[:400])

        self._drain = asyncio.create_task(drain(self.proc.stderr))
        await asyncio.wait_for(ready.wait(), 60)

    async def pool(self, count: int, label: str) -> HostPool:
        first = f"127.0.{self._next_net}.1"
        self._next_net += (count // 250) + 1
        pool = HostPool(
            self.dir / label,
            count=count,
            first_address=first,
            agent_binary_url=AGENT_URL.replace("{arch}", "amd64"),
            latency=self.latency,
        )
        await pool.start()
        await self.client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": label}})
        return pool

    def sandbox_cpu(self, pool: HostPool) -> float:
        """CPU seconds so far of the sandbox: the emulator with its controllers, the pool, and this process."""
        return sum(self.sandbox_parts(pool).values())

    def sandbox_parts(self, pool: HostPool) -> dict[str, float]:
        """The sandbox's CPU seconds so far, by process (the benchmark's own share: its bus subscriber)."""
        assert self.kubeapi is not None
        parts = {"emulator": self.kubeapi.cpu_seconds(), "benchmark": time.process_time()}
        parts.update({f"hosts{k}": child.cpu_seconds() for k, child in enumerate(pool.children)})
        return parts

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def hostprep(self, count: int, label: str) -> Run:
        pool = await self.pool(count, label)
        try:
            # hostprep re-reads these files when they change: point it at this pool's hosts.
            self.inventory.write_text(json.dumps({"k8s_version": K8S_VERSION, "hosts": pool.inventory_hosts()}))
            shutil.copyfile(pool.known_hosts_path, self.known_hosts)
            pr = pr_id_for("bench", label)
            job = HostprepJob(
                pr_id=pr,
                action="prepare",
                cluster=label,
                namespace=label,
                k8s_version=K8S_VERSION,
                hosts=tuple(h.host_id for h in pool.hosts),
            )
            sample = procstat.Sample()
            base_rss = procstat.rss_mib(self.pid)[0]
            poller = asyncio.create_task(self._poll(sample))
            started, cpu, own = time.perf_counter(), procstat.cpu_seconds(self.pid), self.sandbox_cpu(pool)
            parts = self.sandbox_parts(pool)
            try:
                await self.bus.emit(hostprep_job(pr), job)
                result = await self._result(pr)
                elapsed = time.perf_counter() - started
                run = Run(
                    count,
                    elapsed,
                    procstat.cpu_seconds(self.pid) - cpu,
                    self.sandbox_cpu(pool) - own,
                    peak_rss_mib=sample.peak_rss_mib,
                    base_rss_mib=base_rss,
                    peak_fds=sample.peak_fds,
                    load=os.getloadavg()[0],
                )
            except TimeoutError:
                raise RuntimeError(
                    f"no outcome of hostprep on {label}; its last warnings:\n" + "\n".join(self.trouble)
                ) from None
            finally:
                poller.cancel()
            if not isinstance(result, HostprepDone):
                raise RuntimeError(f"hostprep failed on {label}: {result.message}\n" + "\n".join(self.trouble))
            await self._registered(label, count)
            print(f"{BENCH}: hostprep {count} hosts: {run}", file=sys.stderr, flush=True)
            spent = {k: round(v - parts[k], 2) for k, v in self.sandbox_parts(pool).items()}
            print(f"{BENCH}: sandbox CPU-s by process, {count} hosts: {spent}", file=sys.stderr, flush=True)
            return run
        finally:
            await pool.stop()

    async def _poll(self, sample: procstat.Sample) -> None:
        while True:
            sample.take(self.pid)
            await asyncio.sleep(0.5)  # sampling period of hostprep's fds and RSS

    async def _result(self, pr_id: str, timeout: float = 900.0) -> HostprepDone | HostprepFailed:
        async with asyncio.timeout(timeout):
            while pr_id not in self.results:
                self._arrived.clear()
                await self._arrived.wait()
            return self.results[pr_id]

    async def _registered(self, namespace: str, count: int, timeout: float = 300.0) -> None:
        async with asyncio.timeout(timeout):
            while True:
                items, _ = await self.client.list(INFRA, "ByoHost", namespace, label_selector=HOST_ID_LABEL)
                if len(items) >= count:
                    return
                await asyncio.sleep(0.05)  # benchmark polling of the emulator, bounded by the timeout

    async def ansible(self, playbook: str, count: int, label: str) -> Run:
        pool = await self.pool(count, label)
        try:
            run_dir = Path(tempfile.mkdtemp(prefix="ab-", dir="/tmp"))  # short: ssh ControlPath length limit
            kubeconfigs = self.dir / label / "kubeconfigs"
            kubeconfigs.mkdir(parents=True, exist_ok=True)
            inventory = self.dir / label / "inventory.ini"
            inventory.write_text(
                "[sandbox]\n"
                + "".join(
                    f"{h.host_id} ansible_host={h.ip} ansible_port={h.port} ansible_user=root host_id={h.host_id} "
                    f"node_name={h.host_name} ansible_ssh_private_key_file={h.key_file}\n"
                    for h in pool.hosts
                )
            )
            env = {
                **os.environ,
                "ANSIBLE_CONFIG": str(PLAYBOOK_DIR / "ansible.cfg"),
                "ANSIBLE_SSH_CONTROL_PATH_DIR": str(run_dir),
                "ANSIBLE_LOCAL_TEMP": str(run_dir / "tmp"),
                "ANSIBLE_HOME": str(run_dir / "home"),
                "ANSIBLE_SSH_ARGS": (
                    "-o ControlMaster=auto -o ControlPersist=60s -o StrictHostKeyChecking=yes -o BatchMode=yes "
                    f"-o UserKnownHostsFile={pool.known_hosts_path}"
                ),
            }
            argv = [
                playbook,
                "-i",
                str(inventory),
                "--forks",
                str(count),
                "-e",
                f"k8s_version={K8S_VERSION[1:]} k8s_minor=v1.30 namespace={label} "
                f"kubeconfig_dir={kubeconfigs} agent_url={AGENT_URL.replace('{arch}', 'amd64')}",
                str(PLAYBOOK_DIR / "hostprep.yml"),
            ]
            started, own = time.perf_counter(), self.sandbox_cpu(pool)
            issued = await asyncio.gather(
                *(issue_bootstrap_kubeconfig(self.client, f"ansible-{h.host_id}", label) for h in pool.hosts)
            )
            for host, data in zip(pool.hosts, issued, strict=True):
                (kubeconfigs / f"{host.host_id}.conf").write_text(data)
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            proc = await asyncio.create_subprocess_exec(
                *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
            )
            out, _ = await proc.communicate()
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            # ansible-playbook and its forks (reaped), plus the ssh masters that detached from it.
            cpu = (
                after.ru_utime
                - children.ru_utime
                + after.ru_stime
                - children.ru_stime
                + procstat.cpu_of_matching(str(run_dir))
            )
            _stop_ssh_masters(str(run_dir))
            if proc.returncode != 0:
                fatal = [ln for ln in out.decode().splitlines() if "fatal:" in ln or "FAILED" in ln][:3]
                raise RuntimeError(f"ansible-playbook exited {proc.returncode}: " + "\n".join(fatal)[:3000])
            await self._registered(label, count)
            elapsed = time.perf_counter() - started
            shutil.rmtree(run_dir, ignore_errors=True)
            run = Run(count, elapsed, cpu, self.sandbox_cpu(pool) - own, load=os.getloadavg()[0])
            print(f"{BENCH}: ansible {count} hosts: {run}", file=sys.stderr, flush=True)
            return run
        finally:
            await pool.stop()


@contextlib.contextmanager
def _reported(what: str) -> Iterator[None]:
    """A size that fails (on a small machine the sandbox runs out of CPU first) is reported, not fatal."""
    try:
        yield
    except (RuntimeError, TimeoutError) as exc:
        print(f"{BENCH}: {what} did not complete: {str(exc)[:8000]}", file=sys.stderr, flush=True)


def _stop_ssh_masters(marker: str) -> None:
    """End the ControlPersist ssh masters this ansible run started (found by their control path)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if marker.encode() in (entry / "cmdline").read_bytes():
                    os.kill(int(entry.name), signal.SIGTERM)


async def run() -> list[Figure]:
    sizes, peer_sizes = _sizes("BENCH_HOSTPREP_SIZES", HOSTPREP_SIZES), _sizes("BENCH_ANSIBLE_SIZES", ANSIBLE_SIZES)
    playbook = await asyncio.to_thread(_ensure_ansible) if peer_sizes else None
    concurrency = max(sizes)
    ours: dict[int, Run] = {}
    peer: dict[int, Run] = {}
    with tempfile.TemporaryDirectory(prefix="hostprep-bench-") as tmp:
        async with Sandbox(Path(tmp), concurrency=concurrency) as sandbox:
            await sandbox.hostprep(1, "warmup")
            for n in sizes:
                with _reported(f"hostprep on {n} hosts"):
                    ours[n] = await sandbox.hostprep(n, f"h{n}")
            for n in peer_sizes if playbook else ():
                with _reported(f"ansible-playbook on {n} hosts"):
                    peer[n] = await sandbox.ansible(playbook, n, f"a{n}")  # type: ignore[arg-type]
    if 1 not in ours:
        raise RuntimeError("hostprep on 1 host did not complete: no baseline")
    out = figures(ours, peer, concurrency)
    for f in out:
        print(
            f"{f.key}: {f.ours:.2f} {f.unit}" + (f" (peer {f.peer_value:.2f})" if f.peer_value else ""), file=sys.stderr
        )
    return out


if __name__ == "__main__":
    print(asyncio.run(run()))
