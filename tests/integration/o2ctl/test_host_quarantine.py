"""``o2ctl host``: a quarantined host shows with its reason, and the operator's clear returns it to the pool.

o2ctl runs as its own process with its own NATS identity (the ``o2ctl`` role from the state dir's
credentials file), against a nats-server that requires it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import nats

from o2ctl.state import RunState
from shared.bus import Bus
from shared.connect import ensure_buckets, ensure_streams
from shared.leases import QUARANTINE, HostLeases
from shared.natsauth import CREDENTIALS_FILE, client_options, ensure_credentials, users_for
from shared.natsserver import EmbeddedNats
from shared.subjects import BUCKET_HOSTS

REPO = Path(__file__).resolve().parents[3]


async def o2ctl(state: Path, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "o2ctl",
        "--state-dir",
        str(state),
        *args,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return int(proc.returncode or 0), out.decode(), err.decode()


async def test_an_operator_lists_and_clears_a_quarantined_host(tmp_path: Path) -> None:
    state = tmp_path / "state"
    passwords = ensure_credentials(state / CREDENTIALS_FILE)
    async with EmbeddedNats(tmp_path / "nats", users=users_for(passwords)) as server:
        RunState(nats_url=server.url).save(state)
        bus = Bus(await nats.connect(server.url, **client_options("o2ims", passwords)), source="o2ims")
        try:
            await ensure_streams(bus.js)
            await ensure_buckets(bus.js)
            leases = HostLeases(await bus.kv(BUCKET_HOSTS))
            await leases.acquire("pr-a", ["h1", "h2"])
            await leases.quarantine("pr-a", ["h1"], "teardown failed: kubeadm reset exit 1")

            code, out, err = await o2ctl(state, "host", "list", "-o", "json")
            assert code == 0, err
            rows = {r["host"]: r for r in json.loads(out)}
            assert rows["h1"]["owner"] == QUARANTINE and rows["h1"]["quarantined"] is True
            assert "kubeadm reset" in rows["h1"]["reason"] and rows["h1"]["previous_owner"] == "pr-a"
            assert rows["h2"] == {**rows["h2"], "owner": "pr-a", "quarantined": False}

            code, _, err = await o2ctl(state, "host", "clear-quarantine", "h2")
            assert code == 1 and "not quarantined" in err
            assert await leases.owner_of("h2") == "pr-a"  # a PR's lease is not the operator's to clear
            code, out, err = await o2ctl(state, "host", "clear-quarantine", "h1")
            assert code == 0, err
            assert await leases.owner_of("h1") is None
            assert await leases.acquire("pr-b", ["h1"]) == ["h1"]
        finally:
            await bus.close()
