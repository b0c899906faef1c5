"""A host that answers under another name than the inventory's ``host_name`` fails preflight (it never joins)."""

from __future__ import annotations

from shared.kube import KubeClient
from shared.payloads import HostprepFailed
from tests.integration.hostprep.conftest import HarnessFactory
from tests.integration.hostprep.harness import byohosts_by_host_id

BAD = "host-002"


async def test_a_hostname_that_differs_from_host_name_fails_preflight(
    hostprep: HarnessFactory, capi_client: KubeClient
) -> None:
    # hostprep's inventory names host-002 "node-elsewhere"; the machine at that address calls itself otherwise.
    harness, pool = await hostprep(2, inventory={BAD: {"host_name": "node-elsewhere"}})
    result = await harness.run(harness.job(pool))
    assert isinstance(result, HostprepFailed), result
    assert (result.host_id, result.step, result.reason) == (BAD, "preflight", "PreflightFailed"), result
    assert "node-elsewhere" in result.message and pool.host(BAD).state.hostname in result.message
    # Nothing registered under either name for that host; the other host is prepared as usual.
    assert set(await byohosts_by_host_id(capi_client)) == {"host-001"}
