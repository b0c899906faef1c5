"""Host preparation fan-out: hostprep on 1, 50 and 200 fresh sandbox hosts, and the same recipe via ansible-playbook.

Everything runs on this machine: a nats-server, the Kubernetes API emulator with the simulated
BYOH controllers and the SSH sandbox hosts live in this process; hostprep runs as its own process
(``python -m services.hostprep``), as in production. Ours: wall time from publishing the
``HostprepJob`` to its ``HostprepDone`` (every host prepared and its ByoHost registered). Peer:
``bench/ansible/hostprep.yml`` with ``forks = hosts`` on 50 fresh hosts, timed from creating the
BootstrapKubeconfigs (ansible-core has no Kubernetes modules, so the benchmark does that part) to
the last ByoHost registered. Both fetch the agent binary from the sandbox mirror with curl.
ansible-core is installed into the running venv when missing (a benchmark-only tool, not a
project dependency).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nats

from bench.report import Figure
from sandbox.capi import CapiSimulators, SimOptions
from sandbox.capi.fakehosts import issue_bootstrap_kubeconfig
from sandbox.hosts import SandboxHostPool
from sandbox.hosts.pool import fake_agent_binary
from sandbox.kubeapi import KubeApiServer
from shared.bus import Bus
from shared.connect import ensure_buckets, ensure_streams
from shared.kube import KubeClient
from shared.messages import Envelope, decode
from shared.models import HostRef
from shared.natsserver import EmbeddedNats
from shared.objects import HOST_ID_LABEL
from shared.payloads import HostprepDone, HostprepFailed, HostprepJob
from shared.subjects import ALL_HOSTPREP_EVENTS, hostprep_job

REPO = Path(__file__).resolve().parents[1]
PLAYBOOK_DIR = REPO / "bench" / "ansible"
K8S_VERSION = "v1.30.2"
AGENT_URL = "https://downloads.sandbox.invalid/byoh/v0.5.0/byoh-hostagent-linux-{arch}"
INFRA = "infrastructure.cluster.x-k8s.io/v1beta1"
BENCH = "hostprep_fanout"


def _ensure_ansible() -> str | None:
    """Path of ansible-playbook, installing ansible-core into this venv if needed; None when impossible."""
    found = shutil.which("ansible-playbook", path=str(Path(sys.executable).parent)) or shutil.which("ansible-playbook")
    if found:
        return found
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "ansible-core"], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        print(f"ansible-core could not be installed: {done.stderr[-500:]}", file=sys.stderr)
        return None
    return shutil.which("ansible-playbook", path=str(Path(sys.executable).parent))


class Sandbox:
    """nats + emulator + simulators here, hostprep as a subprocess; fresh host pools per measurement."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.nats = EmbeddedNats(workdir / "nats", log_file=workdir / "nats.log")
        self.kubeapi = KubeApiServer()
        self.kubeconfig = workdir / "kubeconfig"
        self.inventory = workdir / "input.json"
        self.known_hosts = workdir / "known_hosts"
        self.events: list[Envelope] = []
        #: label -> (hostprep CPU s, sandbox CPU s) during that measurement.
        self.cpu: dict[str, tuple[float, float]] = {}
        self._arrived = asyncio.Event()
        self._next_net = 1
        self.proc: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Sandbox:
        try:
            return await self._start()
        except BaseException:
            await self.__aexit__()
            raise

    async def _start(self) -> Sandbox:
        await self.nats.start()
        await self.kubeapi.start()
        self.kubeapi.write_kubeconfig(self.kubeconfig)
        self.client = await KubeClient.from_kubeconfig(self.kubeconfig)
        self.sims = CapiSimulators(self.client, SimOptions())
        await self.sims.start()
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
        for closer in ("bus", "sims", "client"):
            part = getattr(self, closer, None)
            if part is not None:
                await (part.stop() if closer == "sims" else part.close())
        await self.kubeapi.stop()
        await self.nats.close()

    async def _on_event(self, msg: Any) -> None:
        self.events.append(decode(msg.data))
        self._arrived.set()

    async def _start_hostprep(self) -> None:
        binary = fake_agent_binary()
        env = {
            **os.environ, "O2_NATS_URL": self.nats.url, "O2_LOG_FORMAT": "json", "O2_LOG_LEVEL": "info",
            "O2_HTTP_PORT": "-1",
            "O2_HOSTPREP_INVENTORY_FILE": str(self.inventory), "O2_HOSTPREP_KNOWN_HOSTS_FILE": str(self.known_hosts),
            "O2_HOSTPREP_SSH_KEY_DIR": str(self.dir),  # every pool's client key lives below the work directory
            "O2_HOSTPREP_KUBECONFIG": str(self.kubeconfig), "O2_HOSTPREP_AGENT_BINARY_URL": AGENT_URL,
            "O2_HOSTPREP_AGENT_BINARY_SHA256": hashlib.sha256(binary).hexdigest(),
        }
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.hostprep", cwd=REPO, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        assert self.proc.stderr is not None
        ready = asyncio.Event()

        async def drain(stream: asyncio.StreamReader) -> None:
            async for line in stream:
                if b'"service_ready"' in line:
                    ready.set()

        self._drain = asyncio.create_task(drain(self.proc.stderr))
        await asyncio.wait_for(ready.wait(), 60)

    async def pool(self, count: int, label: str) -> SandboxHostPool:
        first = f"127.0.{self._next_net}.1"
        self._next_net += (count // 250) + 1
        pool = SandboxHostPool(self.dir / label, count=count, first_address=first,
                               agent_binary_url=AGENT_URL.replace("{arch}", "amd64"))
        await pool.start()
        await self.client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": label}})
        return pool

    def hostprep_cpu(self) -> float:
        """CPU seconds used so far by the hostprep process (user + system)."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def hostprep(self, count: int, label: str) -> float:
        pool = await self.pool(count, label)
        try:
            # hostprep re-reads these files when they change: point it at this pool's hosts.
            self.inventory.write_text(json.dumps({"hosts": pool.inventory_hosts()}))
            shutil.copyfile(pool.known_hosts_path, self.known_hosts)
            hosts = tuple(HostRef(host_id=h.host_id, host_name=h.host_name, host_ip=h.ip, ssh_port=h.port)
                          for h in pool.hosts)
            job = HostprepJob(pr_id=label, action="prepare", cluster=label, namespace=label, k8s_version=K8S_VERSION,
                              hosts=hosts)
            started, cpu, own = time.perf_counter(), self.hostprep_cpu(), time.process_time()
            await self.bus.emit(hostprep_job(label), job)
            result = await self._result(label)
            elapsed = time.perf_counter() - started
            self.cpu[label] = (self.hostprep_cpu() - cpu, time.process_time() - own)
            if not isinstance(result, HostprepDone):
                raise RuntimeError(f"hostprep failed on {label}: {result.message}")
            await self._registered(label, count)
            return elapsed
        finally:
            await pool.stop()

    async def _result(self, pr_id: str, timeout: float = 900.0) -> HostprepDone | HostprepFailed:
        async with asyncio.timeout(timeout):
            while True:
                for env in self.events:
                    if isinstance(env.payload, HostprepDone | HostprepFailed) and env.payload.pr_id == pr_id:
                        return env.payload
                self._arrived.clear()
                await self._arrived.wait()

    async def _registered(self, namespace: str, count: int, timeout: float = 300.0) -> None:
        async with asyncio.timeout(timeout):
            while True:
                items, _ = await self.client.list(INFRA, "ByoHost", namespace, label_selector=HOST_ID_LABEL)
                if len(items) >= count:
                    return
                await asyncio.sleep(0.05)  # benchmark polling of the emulator, bounded by the timeout

    async def ansible(self, playbook: str, count: int, label: str) -> float:
        pool = await self.pool(count, label)
        try:
            run_dir = Path(tempfile.mkdtemp(prefix="ab-", dir="/tmp"))  # short: ssh ControlPath length limit
            kubeconfigs = self.dir / label / "kubeconfigs"
            kubeconfigs.mkdir(parents=True, exist_ok=True)
            inventory = self.dir / label / "inventory.ini"
            inventory.write_text("[sandbox]\n" + "".join(
                f"{h.host_id} ansible_host={h.ip} ansible_port={h.port} ansible_user=root host_id={h.host_id} "
                f"node_name={h.host_name}\n" for h in pool.hosts))
            env = {
                **os.environ, "ANSIBLE_CONFIG": str(PLAYBOOK_DIR / "ansible.cfg"),
                "ANSIBLE_SSH_CONTROL_PATH_DIR": str(run_dir), "ANSIBLE_LOCAL_TEMP": str(run_dir / "tmp"),
                "ANSIBLE_HOME": str(run_dir / "home"), "ANSIBLE_SSH_ARGS": (
                    "-o ControlMaster=auto -o ControlPersist=60s -o StrictHostKeyChecking=yes -o BatchMode=yes "
                    f"-o UserKnownHostsFile={pool.known_hosts_path}"),
            }
            argv = [playbook, "-i", str(inventory), "--forks", str(count), "--private-key", str(pool.client_key_path),
                    "-e", f"k8s_version={K8S_VERSION[1:]} k8s_minor=v1.30 namespace={label} "
                          f"kubeconfig_dir={kubeconfigs} agent_url={AGENT_URL.replace('{arch}', 'amd64')}",
                    str(PLAYBOOK_DIR / "hostprep.yml")]
            started = time.perf_counter()
            issued = await asyncio.gather(*(
                issue_bootstrap_kubeconfig(self.client, f"ansible-{h.host_id}", label) for h in pool.hosts))
            for host, data in zip(pool.hosts, issued, strict=True):
                (kubeconfigs / f"{host.host_id}.conf").write_text(data)
            proc = await asyncio.create_subprocess_exec(*argv, env=env, stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.STDOUT)
            out, _ = await proc.communicate()
            if proc.returncode != 0:
                fatal = [ln for ln in out.decode().splitlines() if "fatal:" in ln or "FAILED" in ln][:3]
                raise RuntimeError(f"ansible-playbook exited {proc.returncode}: " + "\n".join(fatal)[:3000])
            await self._registered(label, count)
            elapsed = time.perf_counter() - started
            shutil.rmtree(run_dir, ignore_errors=True)
            return elapsed
        finally:
            await pool.stop()


async def run() -> list[Figure]:
    playbook = await asyncio.to_thread(_ensure_ansible)
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="hostprep-bench-") as tmp:
        async with Sandbox(Path(tmp)) as sandbox:
            await sandbox.hostprep(1, "warmup")
            one = await sandbox.hostprep(1, "h1")
            fifty = await sandbox.hostprep(50, "h50")
            two_hundred = await sandbox.hostprep(200, "h200")
            peer = await sandbox.ansible(playbook, 50, "a50") if playbook else None
            cpu = dict(sandbox.cpu)
    figures.append(Figure(BENCH, "1 host, wall time", one, "s", note="publish job → HostprepDone"))
    figures.append(Figure(BENCH, "50 hosts vs 1 host", fifty, "s", peer="hostprep, 1 host", peer_value=one,
                          note="aim: ratio < 2"))
    figures.append(Figure(BENCH, "50 hosts, wall time", fifty, "s", peer="ansible-playbook, forks=50",
                          peer_value=peer, note="aim: ratio <= 0.1" if peer else "ansible-core unavailable"))
    figures.append(Figure(BENCH, "200 hosts, wall time", two_hundred, "s", note="max_parallel_hosts=50"))
    for label, count in (("h50", 50), ("h200", 200)):
        hostprep_cpu, sandbox_cpu = cpu[label]
        figures.append(Figure(BENCH, f"{count} hosts, CPU per host: hostprep", 1000 * hostprep_cpu / count, "ms",
                              peer="sandbox (hosts+emulator+controllers)", peer_value=1000 * sandbox_cpu / count,
                              note="the sandbox is one Python process: its CPU bounds the wall time"))
    for f in figures:
        print(f"{f.metric}: {f.ours:.2f} {f.unit}" + (f" (peer {f.peer_value:.2f} {f.unit})" if f.peer_value else ""),
              file=sys.stderr)
    return figures


if __name__ == "__main__":
    print(asyncio.run(run()))
