"""o2ims end to end on the sandbox: o2ims, hostprep, capi_renderer and status_watcher as processes,
the Kubernetes API emulator with the simulated CAPI/BYOH controllers, SSH sandbox hosts.

The test plays focom: it takes the host leases and publishes ``PrRequest``s on ``o2ims.requests``.
Create → fulfilled; a host failing prep → failed naming host and step; a control plane that never
initializes → failed at the (short) provisioning deadline; delete after fulfilled and mid-hostprep
→ hosts reset, tombstoned, leases released, Cluster gone; scale 2 → 3 workers → fulfilled with 3 Running
workers; o2ims killed with SIGKILL at each stage → the same end, each job sent once.

The tests that keep the default settings share one system per module (starting the four services is most
of a test's cost), each on hosts no other test used (``System.take``); a test that changes a setting
(``o2ims_env``, ``capi_options``) or kills a service gets a system of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from nats.aio.msg import Msg

from sandbox.capi import SimOptions
from sandbox.hosts import Fault, SandboxHostPool
from shared.bus import Bus
from shared.kube import KubeClient
from shared.leases import HostLeases
from shared.messages import Envelope, decode
from shared.models import ClusterSpec, HostRef
from shared.payloads import HostprepFailed, PrRequest, PrStatus
from shared.subjects import ALL_HOSTPREP_EVENTS, ALL_O2IMS_STATUS, BUCKET_HOSTS, CAPI, HOSTPREP, o2ims_request
from tests.fixtures.capi import kube_client, running_simulators
from tests.fixtures.kubeapi import running_kubeapi
from tests.fixtures.nats import connected_bus, running_nats
from tests.fixtures.sandbox_hosts import running_pool
from tests.integration.services.procs import ServiceProcess

# Module-scoped loop: the tests on the module's shared system run in the loop that started it.
pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

REPO = Path(__file__).resolve().parents[2]
K8S_VERSION = "v1.30.2"
CNI = "bridge-pool"
CNI_FILE = REPO / "examples" / "cni" / "bridge-pool.yaml"
CORE = "cluster.x-k8s.io/v1beta1"
FPR = "e2e-o2ims"
#: Hosts of a module's shared system: every test on it takes hosts of its own (``System.take``).
SHARED_HOSTS = 24
#: Hosts of a test's own system.
OWN_HOSTS = 4


class Recorder:
    """Envelopes seen on a subject pattern, with a bounded wait for a condition over them."""

    def __init__(self) -> None:
        self.items: list[Envelope] = []
        self._changed = asyncio.Condition()

    async def on_msg(self, msg: Msg) -> None:
        async with self._changed:
            self.items.append(decode(msg.data))
            self._changed.notify_all()

    async def wait(self, what: Callable[[], Any], timeout: float = 90.0) -> Any:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(what), timeout)
            return what()


@dataclass
class System:
    bus: Bus
    pool: SandboxHostPool
    client: KubeClient
    statuses: Recorder
    hostprep_events: Recorder
    procs: dict[str, ServiceProcess]
    env: dict[str, dict[str, str]]
    #: Hosts no test has taken yet, in name order.
    free: list[str] = field(default_factory=list)

    def take(self, count: int) -> list[str]:
        """``count`` hosts (in name order) that no other test used: fresh, never leased, never prepared."""
        if len(self.free) < count:
            raise AssertionError(f"the system has {len(self.free)} unused hosts, the test wants {count}")
        taken, self.free[:] = self.free[:count], self.free[count:]
        return taken

    def node(self, host_id: str) -> str:
        """The host's name, which its Node (and a Machine's nodeRef) takes."""
        return self.pool.host(host_id).host_name

    def spec(self, name: str, hosts: list[str], vip: str) -> ClusterSpec:
        refs = {h["host_id"]: h for h in self.pool.inventory_hosts()}

        def ref(host_id: str) -> HostRef:
            h = refs[host_id]
            return HostRef(
                host_id=host_id,
                host_name=h["host_name"],
                host_ip=h["host_ip"],
                ssh_port=h["ssh_port"],
                ssh_user=h["host_user"],
            )

        return ClusterSpec(
            name=name,
            k8s_version=K8S_VERSION,
            control_plane=(ref(hosts[0]),),
            workers=tuple(ref(h) for h in hosts[1:]),
            vip=vip,
            cni=CNI,
        )

    async def leases(self) -> HostLeases:
        return HostLeases(await self.bus.kv(BUCKET_HOSTS))

    async def request(self, op: str, pr: str, spec: ClusterSpec) -> None:
        if op in ("create", "update"):  # what focom does before asking
            await (await self.leases()).acquire(pr, [h.host_id for h in spec.all_hosts])
        payload = PrRequest(pr_id=pr, fpr=FPR, operation=op, spec=spec)  # type: ignore[arg-type]
        await self.bus.emit(o2ims_request(pr), payload, correlation_id=FPR)

    def states(self, pr: str) -> list[PrStatus]:
        found = [e.payload for e in self.statuses.items if isinstance(e.payload, PrStatus) and e.payload.pr_id == pr]
        return sorted({s.seq: s for s in found}.values(), key=lambda s: s.seq)

    async def state(self, pr: str, state: str, stage: str | None = None, timeout: float = 90.0) -> PrStatus:
        def reached() -> PrStatus | None:
            got = [s for s in self.states(pr) if s.state == state and (stage is None or s.stage == stage)]
            return got[-1] if got else None

        try:
            found: PrStatus = await self.statuses.wait(reached, timeout)
        except TimeoutError:
            seen = [(s.state, s.stage, s.reason) for s in self.states(pr)]
            logs = "\n".join(f"{name}: {line}" for name, proc in self.procs.items() for line in proc.raw[-40:])
            raise AssertionError(
                f"PR {pr}: no {state} {stage or ''} within {timeout:.0f}s; it went {seen}; the services' last lines:\n"
                + logs
            ) from None
        return found

    async def restart_o2ims(self) -> None:
        await self.procs["o2ims"].kill()  # SIGKILL
        self.procs["o2ims"] = await ServiceProcess("services.o2ims", self.env["o2ims"]).start()
        await self.procs["o2ims"].wait_event("service_ready", timeout=60)

    async def cluster(self, name: str) -> dict[str, Any] | None:
        return await self.client.get(CORE, "Cluster", name, "default")

    async def running_workers(self, name: str) -> int:
        machines, _ = await self.client.list(CORE, "Machine", "default", label_selector=f"{CORE_LABEL}={name}")
        return sum(
            1
            for m in machines
            if "cluster.x-k8s.io/control-plane" not in (m["metadata"].get("labels") or {})
            and (m.get("status") or {}).get("phase") == "Running"
            and (m.get("status") or {}).get("nodeRef")
        )

    async def count(self, stream: str, subject: str) -> int:
        info = await self.bus.js.stream_info(stream, subjects_filter=subject)
        return int((info.state.subjects or {}).get(subject, 0))


CORE_LABEL = "cluster.x-k8s.io/cluster-name"


def environments(
    nats_url: str, pool: SandboxHostPool, kubeconfig: Path, inventory: Path, o2ims: dict[str, str]
) -> dict[str, dict[str, str]]:
    common = {"O2_NATS_URL": nats_url}
    return {
        "o2ims": {**common, **o2ims},
        "hostprep": {
            **common,
            "O2_HOSTPREP_INVENTORY_FILE": str(inventory),
            "O2_HOSTPREP_SSH_KEY_DIR": str(pool.client_key_path.parent),
            "O2_HOSTPREP_KNOWN_HOSTS_FILE": str(pool.known_hosts_path),
            "O2_HOSTPREP_KUBECONFIG": str(kubeconfig),
            "O2_HOSTPREP_AGENT_BINARY_FILE": str(pool.agent_binary_path),
            "O2_HOSTPREP_CONNECT_TIMEOUT": "5",
            "O2_HOSTPREP_REGISTRATION_TIMEOUT": "60",
        },
        "capi_renderer": {
            **common,
            "O2_CAPI_RENDERER_KUBECONFIG": str(kubeconfig),
            "O2_CAPI_RENDERER_CNI_MANIFESTS": json.dumps({CNI: str(CNI_FILE)}),
        },
        "status_watcher": {**common, "O2_STATUS_WATCHER_KUBECONFIG": str(kubeconfig)},
    }


@contextlib.asynccontextmanager
async def running_system(
    state: Path, crd_dirs: list[Path], hosts: int, o2ims_env: Mapping[str, str], capi: SimOptions
) -> AsyncIterator[System]:
    """NATS, the emulator with the simulators, ``hosts`` sandbox hosts and the four services as processes."""
    async with contextlib.AsyncExitStack() as parts:
        server = await parts.enter_async_context(running_nats(state))
        bus = await parts.enter_async_context(connected_bus(server.url))
        kubeconfig = state / "kubeconfig"
        await parts.enter_async_context(running_kubeapi(crd_dirs, kubeconfig))
        await parts.enter_async_context(running_simulators(kubeconfig, capi))
        client = await parts.enter_async_context(kube_client(kubeconfig))
        pool = await parts.enter_async_context(running_pool(state / "sandbox-hosts", hosts))
        inventory = state / "input.json"
        pool.write_inventory(inventory)
        statuses, hostprep_events = Recorder(), Recorder()
        await bus.js.subscribe(ALL_O2IMS_STATUS, cb=statuses.on_msg, ordered_consumer=True)
        await bus.js.subscribe(ALL_HOSTPREP_EVENTS, cb=hostprep_events.on_msg, ordered_consumer=True)
        env = environments(server.url, pool, kubeconfig, inventory, dict(o2ims_env))
        procs: dict[str, ServiceProcess] = {}

        async def kill_all() -> None:
            for proc in procs.values():
                await proc.kill()

        parts.push_async_callback(kill_all)
        for name, service_env in env.items():
            procs[name] = await ServiceProcess(f"services.{name}", service_env).start()
        for proc in procs.values():
            await proc.wait_event("service_ready", timeout=60)
        free = [h.host_id for h in pool.hosts]
        yield System(bus, pool, client, statuses, hostprep_events, procs, env, free)


@pytest.fixture
def o2ims_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Extra o2ims settings, given by ``parametrize(..., indirect=True)``."""
    return dict(getattr(request, "param", {}))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_system(crd_dirs: list[Path], tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[System]:
    async with running_system(tmp_path_factory.mktemp("system"), crd_dirs, SHARED_HOSTS, {}, SimOptions()) as system:
        yield system


@pytest_asyncio.fixture(loop_scope="module")
async def own_system(
    crd_dirs: list[Path], tmp_path: Path, o2ims_env: dict[str, str], request: pytest.FixtureRequest
) -> AsyncIterator[System]:
    marker = request.node.get_closest_marker("capi_options")
    capi = SimOptions(**(dict(marker.kwargs) if marker else {}))
    async with running_system(tmp_path, crd_dirs, OWN_HOSTS, o2ims_env, capi) as system:
        yield system


@pytest.fixture
def system(request: pytest.FixtureRequest, o2ims_env: dict[str, str]) -> System:
    """The module's shared system, or one of the test's own when it sets ``o2ims_env`` or ``capi_options``."""
    if o2ims_env or request.node.get_closest_marker("capi_options"):
        return request.getfixturevalue("own_system")
    shared: System = request.getfixturevalue("shared_system")
    return shared


def new_pr() -> str:
    return str(uuid.uuid4())


async def test_create_goes_to_fulfilled(system: System) -> None:
    pr, spec = new_pr(), system.spec("e2e1", system.take(3), "127.0.9.1")
    await system.request("create", pr, spec)
    done = await system.state(pr, "fulfilled")
    assert done.node_cluster_id
    assert system.states(pr)[0].state == "pending"
    assert await system.cluster("e2e1") is not None
    assert await system.running_workers("e2e1") == 2


async def test_a_host_failing_prep_fails_the_pr_naming_host_and_step(system: System) -> None:
    hosts = system.take(3)
    system.pool.set_fault(hosts[2], Fault.command_failure(r"apt-get .*install", exit_code=100, stderr="E: broken"))
    pr, spec = new_pr(), system.spec("e2e2", hosts, "127.0.9.2")
    await system.request("create", pr, spec)
    failed = await system.state(pr, "failed")
    reported = [
        e.payload
        for e in system.hostprep_events.items
        if isinstance(e.payload, HostprepFailed) and e.payload.pr_id == pr
    ]
    assert reported and reported[0].host_id == hosts[2] and reported[0].step
    assert failed.stage == "hostprep"
    assert hosts[2] in (failed.message or "") and str(reported[0].step) in (failed.message or "")
    assert await system.cluster("e2e2") is None


@pytest.mark.capi_options(never_initialize_clusters=frozenset({"e2e3"}))
@pytest.mark.parametrize("o2ims_env", [{"O2_O2IMS_PROVISIONING_DEADLINE": "5"}], indirect=True)
async def test_a_control_plane_that_never_initializes_fails_at_the_deadline(system: System) -> None:
    pr, spec = new_pr(), system.spec("e2e3", system.take(2), "127.0.9.3")
    await system.request("create", pr, spec)
    failed = await system.state(pr, "failed")
    assert (failed.stage, failed.reason) == ("provisioning", "ProvisioningTimedOut")
    assert "deadline" in (failed.message or "")


async def test_delete_after_fulfilled_tombstones_releases_and_removes_the_cluster(system: System) -> None:
    hosts = system.take(3)
    pr, spec = new_pr(), system.spec("e2e4", hosts, "127.0.9.4")
    await system.request("create", pr, spec)
    await system.state(pr, "fulfilled")
    await system.request("delete", pr, spec)
    await system.state(pr, "deleted")
    assert [(s.state, s.stage) for s in system.states(pr)][-3:] == [
        ("deleting", "capi-delete"),
        ("deleting", "teardown"),
        ("deleted", None),
    ]
    assert await (await system.leases()).held_by(pr) == []
    assert await system.cluster("e2e4") is None
    # Reset before the leases went back (kubeadm reset -f over SSH, the agent and its ByoHost gone).
    for host_id in hosts:
        assert system.pool.host(host_id).state.kubeadm_runs[-1]["action"] == "reset"


async def test_delete_mid_hostprep_tombstones_releases_and_leaves_no_cluster(system: System) -> None:
    # Slow enough that the delete lands mid-preparation; the reset then waits for that host's preparation.
    hosts = system.take(2)
    system.pool.set_fault(hosts[1], Fault.slow_command("apt-get", delay=8, times=1))
    pr, spec = new_pr(), system.spec("e2e5", hosts, "127.0.9.5")
    await system.request("create", pr, spec)
    await system.state(pr, "progressing", "hostprep")
    await system.request("delete", pr, spec)
    await system.state(pr, "deleted", timeout=150)
    assert ("deleting", "teardown") in [(s.state, s.stage) for s in system.states(pr)]
    assert await (await system.leases()).held_by(pr) == []
    assert await system.cluster("e2e5") is None
    assert await system.count(CAPI.name, f"capi.jobs.{pr}") == 0


async def test_scale_two_to_three_workers(system: System) -> None:
    pr, hosts = new_pr(), system.take(4)
    two = system.spec("e2e6", hosts[:3], "127.0.9.6")
    await system.request("create", pr, two)
    await system.state(pr, "fulfilled")
    three = system.spec("e2e6", hosts, "127.0.9.6")
    await system.request("update", pr, three)
    scaling = await system.state(pr, "progressing", "scaling")
    await system.statuses.wait(lambda: [s for s in system.states(pr) if s.state == "fulfilled" and s.seq > scaling.seq])
    assert [(s.state, s.stage) for s in system.states(pr) if s.seq >= scaling.seq - 1] == [
        ("progressing", "hostprep"),
        ("progressing", "scaling"),
        ("fulfilled", None),
    ]
    assert await system.running_workers("e2e6") == 3


ORDER = [
    ("pending", None),
    ("progressing", "hostprep"),
    ("progressing", "apply"),
    ("progressing", "provisioning"),
    ("fulfilled", None),
]


@pytest.mark.capi_options(node_ready_delay=2.0)
async def test_kill_9_at_each_stage_reaches_the_same_end(system: System) -> None:
    # Stages that last a moment, so that each kill lands inside one.
    hosts = system.take(3)
    system.pool.set_fault(hosts[1], Fault.slow_command("apt-get update", delay=2.0, times=1))
    pr, spec = new_pr(), system.spec("e2e7", hosts, "127.0.9.7")
    await system.request("create", pr, spec)
    killed_in: list[tuple[str, str | None]] = []
    for rank in range(len(ORDER) - 1):

        def at_or_past(rank: int = rank) -> bool:
            return any(
                ORDER.index((s.state, s.stage)) >= rank for s in system.states(pr) if (s.state, s.stage) in ORDER
            )

        await system.statuses.wait(at_or_past)
        if any(s.state == "fulfilled" for s in system.states(pr)):
            break
        last = system.states(pr)[-1]
        killed_in.append((last.state, last.stage))
        await system.restart_o2ims()  # SIGKILL in this stage (or just past it), then start again
    await system.state(pr, "fulfilled", timeout=120)
    # Each stage's job went out once; each transition was published once.
    assert await system.count(HOSTPREP.name, f"hostprep.jobs.{pr}") == 1
    assert await system.count(CAPI.name, f"capi.jobs.{pr}") == 1
    states = [(s.state, s.stage) for s in system.states(pr)]
    assert states[0] == ("pending", None) and states[-1] == ("fulfilled", None)
    assert all(st in ORDER for st in states) and states == sorted(states, key=ORDER.index)
    assert await system.running_workers("e2e7") == 2
    assert len(killed_in) >= 3, killed_in
