"""hostprep trusts nothing from the bus but host ids: addresses, logins and deadlines are its own.

#15 item 7: a job carried each host's address and port, and the host key was looked up by that address, so
a job pairing one host's id with another host's address sent the first host's password to the second.
#15 item 2: the job deadline was ``occurred_at + job_timeout`` with the sender's ``occurred_at``.
#15 item 10: a pushed agent binary is verified on the host before it replaces anything.
"""

from __future__ import annotations

import json
from datetime import timedelta

from services.hostprep.credentials import CredentialStore
from services.hostprep.ssh import PREFERRED_CIPHERS, SshConnector, encryption_algs
from shared.messages import Envelope, utcnow
from shared.payloads import HostprepDone, HostprepFailed
from shared.subjects import hostprep_job
from tests.integration.hostprep.conftest import HarnessFactory


async def test_a_job_carries_host_ids_and_an_unknown_id_fails_only_that_host(hostprep: HarnessFactory) -> None:
    harness, pool = await hostprep(2)
    known, other = pool.hosts
    marks = {h.host_id: h.state.mark() for h in pool.hosts}
    job = harness.job(pool, ids=[known.host_id, "not-in-inventory"])
    result = await harness.run(job)
    assert isinstance(result, HostprepFailed), result
    assert result.ready_hosts == (known.host_id,)
    failures = [(f.host_id, f.step, f.reason) for f in result.failures]
    assert failures == [("not-in-inventory", "inventory", "UnknownHost")]
    # Only the known host was touched, at the address hostprep's own inventory gives for it.
    assert known.state.since(marks[known.host_id]) and not other.state.since(marks[other.host_id])


async def test_an_address_in_a_job_is_refused_before_anything_runs(hostprep: HarnessFactory) -> None:
    """The attack of item 7: host A's id with host B's address. Addresses no longer travel; such a job is invalid."""
    harness, pool = await hostprep(2)
    a, b = pool.hosts
    marks = {h.host_id: h.state.mark() for h in pool.hosts}
    env = json.loads(Envelope.wrap(harness.job(pool, ids=[a.host_id]), source="attacker").encode())
    env["payload"]["hosts"] = [
        {"host_id": a.host_id, "host_name": a.host_name, "host_ip": b.ip, "ssh_port": b.port, "ssh_user": "root"}
    ]
    pr = env["payload"]["pr_id"]
    await harness.bus.js.publish(hostprep_job(pr), json.dumps(env).encode(), headers={"Nats-Msg-Id": env["id"]})
    failed = await harness.failure(pr)
    assert failed.reason == "InvalidMessage" and failed.path == "payload.hosts.0"
    assert harness.results(pr) == []
    assert all(not h.state.since(marks[h.host_id]) for h in pool.hosts)


async def test_the_deadline_counts_from_when_the_bus_received_the_job(hostprep: HarnessFactory) -> None:
    """A job whose sender dated it two days back used to time out at once; one dated ahead got a longer deadline."""
    harness, pool = await hostprep(1)
    job = harness.job(pool)
    old = Envelope.wrap(job, source="test")
    back_dated = Envelope.model_validate({**old.model_dump(), "occurred_at": utcnow() - timedelta(days=2)})
    await harness.bus.publish(hostprep_job(job.pr_id), back_dated)
    result = await harness.result(job.pr_id)
    assert isinstance(result, HostprepDone), result


async def test_a_pushed_agent_that_does_not_match_its_sha256_never_replaces_anything(hostprep: HarnessFactory) -> None:
    harness, pool = await hostprep(1)
    (host,) = pool.hosts
    resolved = await CredentialStore(harness.deps.settings).resolve(host.host_id)
    session = await SshConnector(connect_timeout=5).open(resolved)
    try:
        path = "/usr/local/bin/byoh-hostagent"
        wrong = await session.put_file(path, b"tampered", mode=0o755, timeout=20, sha256="ab" * 32)
        assert not wrong.ok and not host.vfs.real(path).exists()
        right = await session.put_file(
            path, pool.agent_binary, mode=0o755, timeout=20, sha256=harness.deps.agent.sha256
        )
        assert right.ok and host.vfs.real(path).read_bytes() == pool.agent_binary
    finally:
        await session.close()


async def test_sessions_use_aes_gcm_which_costs_hostprep_least(hostprep: HarnessFactory) -> None:
    harness, pool = await hostprep(1)
    resolved = await CredentialStore(harness.deps.settings).resolve(pool.hosts[0].host_id)
    session = await SshConnector(connect_timeout=5).open(resolved)
    try:
        ciphers = {session._conn.get_extra_info("send_cipher"), session._conn.get_extra_info("recv_cipher")}
        assert ciphers == {PREFERRED_CIPHERS[0]}
    finally:
        await session.close()
    # The rest of asyncssh's defaults stay on offer, for a server without AES-GCM.
    assert set(encryption_algs()) >= {"chacha20-poly1305@openssh.com", "aes256-ctr"}
