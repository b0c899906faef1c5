"""A job one of whose hosts lost its claim always ends with an outcome: handed back to the bus and finished
on a later delivery, or, on its last delivery, failed for that host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nats.js.kv import KeyValue

from sandbox.capi import CapiSimulators
from services.hostprep.claims import HostClaim, HostClaimLost, HostClaims
from services.hostprep.handlers import CLAIM_STEP
from shared.bus import Bus
from shared.payloads import HostprepDone, HostprepFailed
from tests.integration.hostprep.harness import Harness, settings_for, write_inventory


class LostOnce(HostClaim):
    """A claim that cannot be kept: its keeper gives up at once, as when another replica took the host over."""

    async def _keep(self) -> None:
        raise HostClaimLost(self.host_id, "another replica holds it")


class LosingClaims(HostClaims):
    """Real claims in the bucket, but the first ``losses`` claims of ``host_id`` are lost as soon as taken."""

    def __init__(self, kv: KeyValue, *, host_id: str, losses: int) -> None:
        super().__init__(kv)
        self.host_id = host_id
        self.losses = losses
        self.taken: list[str] = []

    async def acquire(self, host_id: str, **kwargs: Any) -> HostClaim | None:
        claim = await super().acquire(host_id, **kwargs)
        self.taken.append(host_id)
        if claim is None or host_id != self.host_id or self.losses <= 0:
            return claim
        self.losses -= 1
        return LostOnce(self, host_id, claim._value, claim._revision, claim._renewed)


async def start(
    bus: Bus, sandbox_hosts: Any, kubeconfig: Path, tmp_path: Path, *, max_deliver: int
) -> tuple[Harness, LosingClaims]:
    pool = await sandbox_hosts(count=2)
    made: list[LosingClaims] = []

    def claims(kv: KeyValue) -> HostClaims:
        made.append(LosingClaims(kv, host_id=pool.hosts[0].host_id, losses=1))
        return made[0]

    settings = settings_for(pool, kubeconfig, write_inventory(pool, tmp_path / "input.json"))
    harness = await Harness.start(bus, settings, claims=claims, max_deliver=max_deliver)
    harness.pool = pool  # type: ignore[attr-defined]
    return harness, made[0]


async def test_a_job_whose_host_lost_its_claim_comes_back_and_ends_with_an_outcome(
    bus: Bus, sandbox_hosts: Any, kubeconfig: Path, capi_sim: CapiSimulators, tmp_path: Path
) -> None:
    harness, claims = await start(bus, sandbox_hosts, kubeconfig, tmp_path, max_deliver=8)
    try:
        job = harness.job(harness.pool)  # type: ignore[attr-defined]
        result = await harness.run(job)
        assert isinstance(result, HostprepDone), result
        # The losing host ran twice (its claim lost on the first delivery), so did the job's other host.
        lost = claims.host_id
        assert sorted(claims.taken) == sorted([*job.hosts, *job.hosts]), claims.taken
        assert claims.losses == 0 and lost in job.hosts
        assert len(harness.results(job.pr_id)) == 1
    finally:
        await harness.close()


async def test_on_the_last_delivery_a_host_that_lost_its_claim_fails_and_the_job_still_ends(
    bus: Bus, sandbox_hosts: Any, kubeconfig: Path, capi_sim: CapiSimulators, tmp_path: Path
) -> None:
    harness, claims = await start(bus, sandbox_hosts, kubeconfig, tmp_path, max_deliver=1)
    try:
        job = harness.job(harness.pool)  # type: ignore[attr-defined]
        result = await harness.run(job)
        assert isinstance(result, HostprepFailed), result
        # One delivery only: the host whose claim was lost fails at the claim step; the other is ready.
        assert (result.host_id, result.step, result.reason) == (claims.host_id, CLAIM_STEP, "HostClaimLost")
        assert [f.host_id for f in result.failures] == [claims.host_id]
        assert list(result.ready_hosts) == [h for h in job.hosts if h != claims.host_id]
        assert claims.taken == list(job.hosts) or sorted(claims.taken) == sorted(job.hosts)
    finally:
        await harness.close()
