"""Kubernetes upgrades on the sandbox, from focom's ``upgrade`` operation to every Machine at the new version.

The five services run as processes against the API emulator with the simulated CAPI/BYOH controllers
(KCP and MachineDeployment rollouts, MachineSet preflight, kubeadm refusing a host installed at another
version) and SSH sandbox hosts that record the running kubelet and kube-apiserver versions over time.

- 1 control plane + 2 workers with one spare host, and 3 control planes + 1 worker with none: each goes
  v1.30.2 → v1.31.1 and ends fulfilled with every Machine, the KCP and the MachineDeployment at the new
  version, on the same hosts, except that the single control plane moves to the spare and its old host
  is reset and released; no kubelet is ever newer than an API server (nor too old).
- Refusals: a single control plane with no free spare, a two-minor jump, a downgrade.
- A host failing mid-upgrade fails the PR naming host and step; the Machines not replaced keep running
  the old version.
- The O2IMS path: a PUT of the ProvisioningRequest with a newer ``k8sVersion`` (one control plane naming
  its spare) upgrades the cluster the same way; without a spare it is refused with ``409``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import nats.js.errors
import pytest

from sandbox.capi import CapiSimulators
from sandbox.hosts import Fault, SandboxHostPool
from shared.bus import Bus
from shared.kube import KubeClient
from shared.leases import HostLeases
from shared.messages import decode
from shared.payloads import FocomRequest, FprStatus, HostprepJob, MessageFailed, PrStatus, pr_id_for
from shared.subjects import ALL_FOCOM_STATUS, ALL_O2IMS_STATUS, BUCKET_HOSTS, FOCOM_REQUESTS, HOSTPREP, hostprep_job
from tests.e2e.harness import Stack, StackOptions, eventually
from tests.e2e.invariants import pool_timelines, sandbox_timelines, skew_violations
from tests.e2e.test_focom_flow import environments
from tests.e2e.test_o2ims_api import PRS as API_PRS
from tests.e2e.test_o2ims_api import Client as ApiClient
from tests.e2e.test_o2ims_api import request as api_request
from tests.integration.focom.support import Recorder
from tests.integration.services.procs import ServiceProcess

pytestmark = pytest.mark.e2e

FROM, TO = "v1.30.2", "v1.31.1"
CORE = "cluster.x-k8s.io/v1beta1"
KCP = "controlplane.cluster.x-k8s.io/v1beta1"
INFRA = "infrastructure.cluster.x-k8s.io/v1beta1"
CLUSTER_LABEL = "cluster.x-k8s.io/cluster-name"
FPR = "upgrades"

#: cluster → (control-plane hosts, workers); the pool has four hosts, so 1 + 2 leaves one spare.
SINGLE = ("u1", ["host-001"], ["host-002", "host-003"])
TRIPLE = ("u3", ["host-001", "host-002", "host-003"], ["host-004"])


@dataclass
class System:
    bus: Bus
    pool: SandboxHostPool
    client: KubeClient
    statuses: Recorder
    inventory: Path
    cluster: str
    masters: list[str]
    workers: list[str]
    procs: dict[str, ServiceProcess]
    env: dict[str, dict[str, str]]

    async def restart(self, service: str) -> None:
        """SIGKILL a service and start it again (its durable consumers redeliver what it had not acked)."""
        await self.procs[service].kill()
        self.procs[service] = await ServiceProcess(f"services.{service}", self.env[service]).start()
        await self.procs[service].wait_event("service_ready", timeout=60)

    @property
    def pr(self) -> str:
        return pr_id_for(FPR, self.cluster)

    def write_inventory(self, version: str) -> None:
        hosts = [{k: v for k, v in h.items() if v is not None} for h in self.pool.inventory_hosts()]
        cluster = {
            "cluster_name": self.cluster,
            "cluster_masters": [{"host_id": h} for h in self.masters],
            "cluster_workers": [{"host_id": h} for h in self.workers],
            "control_plane_endpoint": "127.0.9.41",
        }
        self.inventory.write_text(json.dumps({"k8s_version": version, "hosts": hosts, "clusters": [cluster]}))

    async def submit(self, **fields: Any) -> None:
        request = FocomRequest(name=FPR, clusterNames=(self.cluster,), **fields)
        await self.bus.emit(FOCOM_REQUESTS, request, correlation_id=FPR)

    def fpr(self) -> list[FprStatus]:
        return [p for p in self.statuses.payloads(FprStatus) if p.name == FPR]

    def pr_states(self) -> list[PrStatus]:
        found = [p for p in self.statuses.payloads(PrStatus) if p.pr_id == self.pr]
        return sorted({s.seq: s for s in found}.values(), key=lambda s: s.seq)

    def refusals(self) -> list[MessageFailed]:
        return [e.payload for s, e in self.statuses.items if isinstance(e.payload, MessageFailed) and FPR in s]

    async def settled(self, after: int = 0, timeout: float = 240.0) -> FprStatus:
        """The FPR's first Synced or Failed status after its ``after``-th status."""

        def done() -> FprStatus | None:
            return next((s for s in self.fpr()[after:] if s.phase in ("Synced", "Failed")), None)

        found: FprStatus = await self.statuses.wait(done, timeout)
        return found

    async def leases(self) -> dict[str, str]:
        return await HostLeases(await self.bus.kv(BUCKET_HOSTS)).all()

    async def machines(self) -> list[dict[str, Any]]:
        items, _ = await self.client.list(CORE, "Machine", "default", label_selector=f"{CLUSTER_LABEL}={self.cluster}")
        return items

    async def hostprep_jobs(self) -> list[HostprepJob]:
        """The hostprep jobs o2ims sent for the cluster (as the stream stored them: duplicates dropped)."""
        info = await self.bus.js.stream_info(HOSTPREP.name, subjects_filter=hostprep_job(self.pr))
        out = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            try:
                msg = await self.bus.js.get_msg(HOSTPREP.name, seq)
            except nats.js.errors.NotFoundError:
                continue
            payload = decode(msg.data or b"").payload
            if msg.subject == hostprep_job(self.pr) and isinstance(payload, HostprepJob):
                out.append(payload)
        return out

    def host_of(self, node: str) -> str:
        return next(h["host_id"] for h in self.pool.inventory_hosts() if h["host_name"] == node)


@pytest.fixture
def layout(request: pytest.FixtureRequest) -> tuple[str, list[str], list[str]]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def system(
    bus: Bus,
    nats_url: str,
    kubeconfig: Path,
    capi_sim: CapiSimulators,
    capi_client: KubeClient,
    sandbox_hosts: Callable[..., Awaitable[SandboxHostPool]],
    tmp_path: Path,
    layout: tuple[str, list[str], list[str]],
) -> AsyncIterator[System]:
    pool = await sandbox_hosts(count=4)
    statuses = Recorder()
    await bus.js.subscribe(ALL_FOCOM_STATUS, cb=statuses.on_msg, ordered_consumer=True)
    await bus.js.subscribe(ALL_O2IMS_STATUS, cb=statuses.on_msg, ordered_consumer=True)
    inventory = tmp_path / "input.json"
    envs = environments(nats_url, pool, kubeconfig, inventory)
    procs: dict[str, ServiceProcess] = {}
    s = System(bus, pool, capi_client, statuses, inventory, *layout, procs, envs)
    s.write_inventory(FROM)
    try:
        for name, env in envs.items():
            procs[name] = await ServiceProcess(f"services.{name}", env).start()
        for proc in procs.values():
            await proc.wait_event("service_ready", timeout=60)
        await s.submit()
        created = await s.settled()
        assert created.phase == "Synced", created.message
        yield s
    finally:
        for proc in procs.values():
            await proc.kill()


async def upgrade_to(system: System, version: str) -> FprStatus:
    before = len(system.fpr())
    system.write_inventory(version)
    await system.submit(operation="upgrade")
    return await system.settled(before)


async def assert_rolled(system: System, hosts: set[str]) -> None:
    """Every Machine Running at ``TO`` on exactly ``hosts``; KCP, MachineDeployment at ``TO``; old templates gone."""
    machines = await system.machines()
    assert {m["spec"]["version"] for m in machines} == {TO}
    assert all(m["status"]["phase"] == "Running" for m in machines)
    assert {m["status"]["nodeInfo"]["kubeletVersion"] for m in machines} == {TO}
    assert {system.host_of(m["status"]["nodeRef"]["name"]) for m in machines} == hosts
    kcp = await system.client.get(KCP, "KubeadmControlPlane", f"{system.cluster}-control-plane", "default")
    md = await system.client.get(CORE, "MachineDeployment", f"{system.cluster}-md-0", "default")
    assert kcp is not None and md is not None
    assert kcp["spec"]["version"] == kcp["status"]["version"] == TO
    assert kcp["status"]["updatedReplicas"] == kcp["spec"]["replicas"] == len(system.masters)
    assert md["spec"]["template"]["spec"]["version"] == TO
    assert md["status"]["updatedReplicas"] == md["spec"]["replicas"] == len(system.workers)
    templates, _ = await system.client.list(INFRA, "ByoMachineTemplate", "default")
    assert sorted(t["metadata"]["name"] for t in templates) == [
        f"{system.cluster}-control-plane-v1-31-1",
        f"{system.cluster}-md-0-v1-31-1",
    ]


def assert_no_skew(system: System) -> None:
    """The kubelet skew held at every moment; and the timelines really saw both versions run."""
    timelines = pool_timelines(system.pool.host(h["host_id"]).state for h in system.pool.inventory_hosts())
    assert skew_violations(timelines) == []
    seen = {(e.get("version") or "").split("-")[0] for t in timelines.values() for e in t.kubelet if e.get("active")}
    assert {"1.30.2", "1.31.1"} <= {v.lstrip("v") for v in seen}, seen


def stages(system: System, since: int) -> list[tuple[str, str | None]]:
    return [(s.state, s.stage) for s in system.pr_states() if s.seq > since]


@pytest.mark.parametrize("layout", [SINGLE], indirect=True)
async def test_a_single_control_plane_moves_to_the_spare_host_and_its_old_host_is_released(system: System) -> None:
    created = system.pr_states()[-1].seq
    synced = await upgrade_to(system, TO)
    assert synced.phase == "Synced" and synced.operation == "upgrade", synced.message
    assert any(s.phase == "Upgrading" for s in system.fpr())
    await assert_rolled(system, {"host-004", "host-002", "host-003"})
    assert stages(system, created) == [
        ("progressing", "hostprep"),  # the spare, at the new version
        ("progressing", "upgrade-control-plane"),
        ("progressing", "upgrade-workers"),
        ("fulfilled", None),
    ]
    leases = await system.leases()
    assert "host-001" not in leases  # reset, then released
    assert {h: leases[h] for h in ("host-002", "host-003", "host-004")} == dict.fromkeys(
        ("host-002", "host-003", "host-004"), system.pr
    )
    old = system.pool.host("host-001").state
    assert [r["action"] for r in old.kubeadm_runs][-1] == "reset"
    jobs = [(j.action, j.hosts, j.k8s_version) for j in await system.hostprep_jobs()]
    # Created; the spare prepared at the new version; the old control plane reset once the new one ran; then
    # each worker re-prepared exactly once as the rollout freed it (in the order the rollout chose).
    assert jobs[:3] == [
        ("prepare", ("host-001", "host-002", "host-003"), FROM),
        ("prepare", ("host-004",), TO),
        ("teardown", ("host-001",), TO),
    ]
    assert sorted(jobs[3:]) == [("upgrade", (w,), TO) for w in system.workers]
    for worker in system.workers:  # the same hosts, each re-prepared once and joined again at the new version
        runs = [r["action"] for r in system.pool.host(worker).state.kubeadm_runs]
        assert runs == ["join", "reset", "join"], (worker, runs)
    assert_no_skew(system)


@pytest.mark.parametrize("layout", [TRIPLE], indirect=True)
async def test_three_control_planes_and_a_worker_upgrade_in_place_on_the_same_hosts(system: System) -> None:
    created = system.pr_states()[-1].seq
    synced = await upgrade_to(system, TO)
    assert synced.phase == "Synced", synced.message
    await assert_rolled(system, {"host-001", "host-002", "host-003", "host-004"})
    assert stages(system, created) == [
        ("progressing", "upgrade-control-plane"),
        ("progressing", "upgrade-workers"),
        ("fulfilled", None),
    ]
    assert await system.leases() == dict.fromkeys(("host-001", "host-002", "host-003", "host-004"), system.pr)
    jobs = [(j.action, j.hosts) for j in await system.hostprep_jobs()]
    # Created, then each host re-prepared exactly once as the rollout freed it: control planes first.
    assert jobs[0] == ("prepare", ("host-001", "host-002", "host-003", "host-004"))
    assert sorted(jobs[1:4]) == [("upgrade", (h,)) for h in system.masters] and jobs[4:] == [("upgrade", ("host-004",))]
    for host in ("host-001", "host-002", "host-003", "host-004"):
        runs = [r["action"] for r in system.pool.host(host).state.kubeadm_runs]
        assert runs[-2:] == ["reset", "join"], (host, runs)
    assert_no_skew(system)


@pytest.mark.parametrize("layout", [TRIPLE], indirect=True)
async def test_o2ims_killed_during_each_rollout_stage_reaches_the_same_end(system: System) -> None:
    before = len(system.fpr())
    system.write_inventory(TO)
    await system.submit(operation="upgrade")
    for stage in ("upgrade-control-plane", "upgrade-workers"):
        await system.statuses.wait(lambda s=stage: [p for p in system.pr_states() if p.stage == s], 120)
        await system.restart("o2ims")
    synced = await system.settled(before)
    assert synced.phase == "Synced", synced.message
    await assert_rolled(system, {"host-001", "host-002", "host-003", "host-004"})
    jobs = [(j.action, j.hosts) for j in await system.hostprep_jobs()]
    assert sorted(jobs[1:]) == [("upgrade", (h,)) for h in ("host-001", "host-002", "host-003", "host-004")]
    assert_no_skew(system)


@pytest.mark.parametrize("layout", [SINGLE], indirect=True)
async def test_refusals_a_single_control_plane_without_a_spare_a_two_minor_jump_a_downgrade(system: System) -> None:
    leases = await system.leases()

    async def refused(version: str, reason: str) -> None:
        system.write_inventory(version)
        await system.submit(operation="upgrade")
        found = await system.statuses.wait(lambda: [r for r in system.refusals() if r.reason == reason], 60)
        assert system.cluster in found[0].error
        assert await system.leases() == leases and system.pr_states()[-1].state == "fulfilled"

    await refused("v1.32.0", "MinorVersionSkip")
    await refused("v1.29.9", "Downgrade")
    # The one unassigned host is held by another request: nothing to move the control plane onto.
    await HostLeases(await system.bus.kv(BUCKET_HOSTS)).acquire("another-request", ["host-004"])
    leases = await system.leases()
    await refused(TO, "NoSpareHost")
    assert "spare host" in system.refusals()[-1].error
    machines = await system.machines()
    assert {m["spec"]["version"] for m in machines} == {FROM}


@pytest.mark.parametrize("layout", [TRIPLE], indirect=True)
async def test_a_host_failing_mid_upgrade_fails_the_pr_naming_host_and_step(system: System) -> None:
    for host in system.masters:  # whichever control plane the rollout frees first cannot install the new kubelet
        system.pool.set_fault(
            host, Fault.command_failure(r"kubelet=1\.31\.1", exit_code=100, stderr="E: Version '1.31.1' not found")
        )
    failed = await upgrade_to(system, TO)
    assert failed.phase == "Failed"
    status = system.pr_states()[-1]
    assert (status.state, status.stage) == ("failed", "upgrade-control-plane")
    message = status.message or ""
    host = next(h for h in system.masters if f"host {h}" in message)
    assert "step kubernetes-packages" in message and "exit 100" in message, message
    assert host in (failed.message or "")
    # The Machines not replaced keep running the old version; the failed host is not claimed by anything.
    running = [m for m in await system.machines() if m["status"].get("phase") == "Running"]
    assert len(running) == 3 and {m["spec"]["version"] for m in running} == {FROM}
    assert host not in {system.host_of(m["status"]["nodeRef"]["name"]) for m in running}
    assert await system.leases() == dict.fromkeys(("host-001", "host-002", "host-003", "host-004"), system.pr)
    assert_no_skew_so_far(system)


def assert_no_skew_so_far(system: System) -> None:
    timelines = pool_timelines(system.pool.host(h["host_id"]).state for h in system.pool.inventory_hosts())
    assert skew_violations(timelines) == []


async def test_an_o2ims_api_update_with_a_newer_version_upgrades_the_cluster(tmp_path: Path) -> None:
    """The O2IMS path: a PUT naming a newer ``k8sVersion`` (and, for one control plane, its spare host)."""
    options = StackOptions(clusters=0, hosts_per_cluster=0, spare_hosts=4, k8s_version=FROM)
    async with Stack(tmp_path / "stack", options) as stack, aiohttp.ClientSession() as session:
        api = ApiClient(session, stack.state)
        pr_id = str(uuid.uuid4())

        def body(version: str, master: str) -> dict[str, Any]:
            data = api_request(pr_id, "api-up", master, "host-002", "127.0.211.1")
            data["templateParameters"]["k8sVersion"] = version
            return data

        async def record(version: str) -> dict[str, Any] | None:
            pr = (await stack.prs()).get(pr_id) or {}
            return pr if pr.get("state") == "fulfilled" and pr["spec"]["k8s_version"] == version else None

        status, created = await api.call("POST", API_PRS, body(FROM, "host-001"))
        assert status == 201, created
        await eventually(lambda: record(FROM), 180, "the PR fulfilled at the old version", wake=stack.changed)
        status, refused = await api.call("PUT", f"{API_PRS}/{pr_id}", body(TO, "host-001"))
        assert status == 409 and refused["problems"][0]["rule"] == "NoSpareHost", refused
        status, updated = await api.call("PUT", f"{API_PRS}/{pr_id}", body(TO, "host-004"))
        assert status == 200, updated
        await eventually(lambda: record(TO), 240, "the PR fulfilled at the new version", wake=stack.changed)
        machines, _ = await stack.kube.list(CORE, "Machine", "default", label_selector=f"{CLUSTER_LABEL}=api-up")
        assert {m["spec"]["version"] for m in machines} == {TO}
        hosts = {h["host_name"]: h["host_id"] for h in stack.inventory["hosts"]}
        assert {hosts[m["status"]["nodeRef"]["name"]] for m in machines} == {"host-004", "host-002"}
        leases = await stack.leases()
        assert "host-001" not in leases and leases["host-004"] == leases["host-002"] == pr_id
        assert skew_violations(sandbox_timelines(stack)) == []
