"""``o2ctl approve NAME`` / ``o2ctl reject NAME``: an operator decides on a request waiting in PendingApproval.

o2ctl runs as its own process with its own NATS identity (the ``o2ctl`` role) against a nats-server
that requires it; focom runs in-process under change control.
"""

from __future__ import annotations

from pathlib import Path

import nats
from pydantic import SecretStr

from o2ctl.state import RunState
from shared.bus import Bus
from shared.connect import ensure_buckets, ensure_streams
from shared.natsauth import CREDENTIALS_FILE, NatsUser, ensure_credentials, new_password, users_for
from shared.natsserver import EmbeddedNats
from shared.payloads import pr_id_for
from tests.integration.focom.support import example_inventory, start_focom
from tests.integration.o2ctl.test_host_quarantine import o2ctl


async def test_approve_and_reject_from_the_cli(tmp_path: Path) -> None:
    state = tmp_path / "state"
    passwords = ensure_credentials(state / CREDENTIALS_FILE)
    # The in-process focom harness also records the streams (beyond focom's role): it logs in unrestricted.
    harness: SecretStr = new_password()
    users = [*users_for(passwords), NatsUser("harness", harness, None)]
    async with EmbeddedNats(tmp_path / "nats", users=users) as server:
        RunState(nats_url=server.url).save(state)
        nc = await nats.connect(server.url, user="harness", password=harness.get_secret_value())
        bus = Bus(nc, source="focom")
        try:
            await ensure_streams(bus.js)
            await ensure_buckets(bus.js)
            h = await start_focom(bus, example_inventory(tmp_path), require_approval=True)
            # `submit --wait` stops where a person must act, and says so (exit 4: not ready yet).
            code, out, err = await o2ctl(state, "submit", "--name", "yes", "--clusters", "smo", "--wait")
            assert code == 4 and "o2ctl approve yes" in out, (out, err)
            await h.submit("no", clusterNames=("edge",))
            await h.wait_phase("yes", "PendingApproval")
            await h.wait_phase("no", "PendingApproval")
            assert await h.leases.all() == {}
            code, out, err = await o2ctl(state, "approve", "yes")
            assert code == 0, err
            await h.wait_phase("yes", "Creating")
            code, out, err = await o2ctl(state, "-o", "json", "reject", "no")
            assert code == 0 and '"decision": "reject"' in out, err
            await h.wait_phase("no", "Deleted")
            assert set((await h.leases.all()).values()) == {pr_id_for("yes", "smo")}
            code, _, err = await o2ctl(state, "approve", "yes")
            assert code == 1 and "not waiting for approval" in err
        finally:
            await bus.close()
