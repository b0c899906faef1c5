"""Progress with settling: a host's routine transitions are folded, its failure and its outcome always go out."""

from __future__ import annotations

from sandbox.hosts import Fault
from shared.payloads import HostprepFailed, HostProgress
from tests.integration.hostprep.conftest import HarnessFactory

#: Longer than any step of the sandbox takes: every routine transition is replaced before it is due.
SETTLE = 60.0


async def test_routine_transitions_are_folded_into_the_outcome_and_a_failure_goes_out(
    hostprep: HarnessFactory,
) -> None:
    harness, pool = await hostprep(3, progress_settle=SETTLE)
    pool.set_fault("host-003", Fault.command_failure(r"apt-get .*install", exit_code=100, stderr="E: broken"))
    job = harness.job(pool)
    result = await harness.run(job)
    assert isinstance(result, HostprepFailed) and result.host_id == "host-003", result
    assert sorted(result.ready_hosts) == ["host-001", "host-002"]

    for host in ("host-001", "host-002"):
        assert [(p.step, p.status) for p in harness.progress(job.pr_id, host)] == [("prepare", "ready")]
    [failed] = harness.progress(job.pr_id, "host-003")
    assert (failed.step, failed.status) == ("base-packages", "failed")
    assert "exit status 100" in (failed.detail or "") and "E: broken" in (failed.detail or "")
    # Every host's events precede the job's result: nothing is published after it.
    ended = next(i for i, e in enumerate(harness.events) if e.payload == result)
    assert not [e for e in harness.events[ended:] if isinstance(e.payload, HostProgress)]
