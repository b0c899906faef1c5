"""Per-service NATS identities against a real nats-server: each role can do its job and nothing else."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
from nats.aio.client import Client as NatsClient
from pydantic import SecretStr

from shared import natsroles
from shared import subjects as s
from shared.bus import Bus
from shared.connect import ensure_buckets, ensure_streams
from shared.natsauth import client_options, ensure_credentials, users_for
from shared.natsroles import ROLE_BY_NAME, SERVICE_ROLES, Role
from shared.natsserver import EmbeddedNats

PR = "0b6c3f0e-8d2f-5c1e-9a51-7b7d3c1f2a10"

#: What a foothold in each service would most like to send, and must not be able to.
FORBIDDEN: dict[str, list[str]] = {
    # A teardown with purge (kubeadm reset on a host), a capi delete, a lease edit, a forged request.
    "capi_renderer": [s.hostprep_job(PR), s.capi_job(PR), "$KV.hosts.h1", s.FOCOM_REQUESTS, s.o2ims_status(PR)],
    "hostprep": [s.capi_job(PR), s.hostprep_job(PR), "$KV.hosts.h1", s.k8s_status("Cluster", "default", "c1")],
    "status_watcher": [s.hostprep_job(PR), s.capi_job(PR), s.o2ims_request(PR), "$KV.pr.x", s.timer(PR)],
    "focom": [s.hostprep_job(PR), s.capi_job(PR), s.o2ims_status(PR), "$KV.pr.x", s.timer(PR)],
    "o2ims": [s.FOCOM_REQUESTS, s.focom_status("f"), s.capi_event(PR), s.hostprep_event(PR), "$KV.fpr.x"],
    "o2ims_api": [s.hostprep_job(PR), s.capi_job(PR), s.timer(PR), s.focom_status("f"), "$KV.pr.x"],
    "o2ctl": [s.hostprep_job(PR), s.capi_job(PR), s.o2ims_request(PR), s.o2ims_status(PR), "$KV.pr.x"],
}
#: JetStream API calls no service may make: destroying or rewriting streams, consumers and buckets.
ADMIN_CALLS = [
    "$JS.API.STREAM.DELETE.HOSTPREP",
    "$JS.API.STREAM.PURGE.KV_hosts",
    "$JS.API.STREAM.UPDATE.CAPI",
    "$JS.API.CONSUMER.DELETE.HOSTPREP.hostprep-jobs",
    "$JS.API.STREAM.MSG.DELETE.KV_fpr",
    # Re-creating another role's durable with a new filter, or pulling its messages.
    "$JS.API.CONSUMER.CREATE.HOSTPREP.hostprep-jobs.hostprep.jobs.none",
    "$JS.API.CONSUMER.DURABLE.CREATE.CAPI.capi-renderer-jobs",
    "$JS.API.CONSUMER.MSG.NEXT.HOSTPREP.hostprep-jobs",
]
#: Operations on a role's own durables are its own; skip those when probing ADMIN_CALLS.
OWN = {"hostprep": ("hostprep-jobs",), "capi_renderer": ("capi-renderer-jobs",)}


class Violations:
    """Collects the server's permission errors for one connection, waking whoever waits for one."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.changed = asyncio.Event()

    async def on_error(self, exc: Exception) -> None:
        self.seen.append(str(exc))
        self.changed.set()

    async def wait_for(self, subject: str, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            # nats-py lowercases the server's error text.
            while not any(f'"{subject.lower()}"' in e for e in self.seen):
                self.changed.clear()
                await self.changed.wait()


Connect = Callable[[str], Awaitable[tuple[NatsClient, Violations]]]


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedNats, dict[str, SecretStr]]]:
    passwords = ensure_credentials(tmp_path / "creds.json")
    server = EmbeddedNats(tmp_path / "nats", log_file=tmp_path / "nats.log", users=users_for(passwords))
    await server.start()
    try:
        yield server, passwords
    finally:
        await server.close()


@pytest.fixture
async def connect(secured: tuple[EmbeddedNats, dict[str, SecretStr]]) -> AsyncIterator[Connect]:
    server, passwords = secured
    opened: list[NatsClient] = []

    async def _connect(role: str) -> tuple[NatsClient, Violations]:
        violations = Violations()
        options = client_options(role, passwords)
        nc = await nats.connect(server.url, error_cb=violations.on_error, allow_reconnect=False, **options)
        opened.append(nc)
        return nc, violations

    yield _connect
    for nc in opened:
        with contextlib.suppress(Exception):
            await nc.close()


async def test_anonymous_and_wrong_password_are_refused(secured: tuple[EmbeddedNats, dict[str, SecretStr]]) -> None:
    server, _ = secured
    for creds in ({}, {"user": "capi_renderer", "password": "guess"}):
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(server.url, allow_reconnect=False, max_reconnect_attempts=0, **creds)


@pytest.mark.parametrize("role", sorted(FORBIDDEN))
async def test_a_role_cannot_publish_outside_its_subjects(connect: Connect, role: str) -> None:
    nc, violations = await connect(role)
    admin = [c for c in ADMIN_CALLS if not any(d in c and "DELETE" not in c for d in OWN.get(role, ()))]
    for subject in [*FORBIDDEN[role], *admin]:
        await nc.publish(subject, b"{}")
        await nc.flush()
        await violations.wait_for(subject)
    # Nor read what is meant for others: another role's replies, or the raw subject space.
    for pattern in ("_INBOX.o2ims.>" if role != "o2ims" else "_INBOX.focom.>", ">", "$KV.>"):
        await nc.subscribe(pattern)
        await nc.flush()
        await violations.wait_for(pattern)
    assert nc.is_connected  # refused operations do not cost the connection


async def test_a_forbidden_jetstream_publish_is_never_stored(connect: Connect) -> None:
    """The publish a compromised capi_renderer would make is refused, and the job stream stays empty."""
    o2ims_nc, _ = await connect("o2ims")
    await ensure_streams(o2ims_nc.jetstream())
    nc, violations = await connect("capi_renderer")
    with pytest.raises(nats.errors.TimeoutError):
        await nc.jetstream(timeout=1.0).publish(s.hostprep_job(PR), b"{}")
    await violations.wait_for(s.hostprep_job(PR))
    info = await o2ims_nc.jetstream().stream_info(s.HOSTPREP.name)
    assert info.state.messages == 0


async def _keys(kv: Any) -> list[str]:
    """The bucket's keys. nats-py's ``keys()`` now and then reports none for a key just written (its watcher
    can end before the entry arrives), so a miss is asked again; a role denied the watch misses every time."""
    for _ in range(3):
        with contextlib.suppress(nats.js.errors.NoKeysError):
            return list(await kv.keys())
    return []


@pytest.mark.parametrize("role", [r.name for r in SERVICE_ROLES] + ["o2ims_api", "o2ctl"])
async def test_a_role_can_do_everything_its_role_needs(connect: Connect, role: str) -> None:
    """Topology, its durables (create, fetch, ack), its publishes, its buckets and its stream reads."""
    r = ROLE_BY_NAME[role]
    if not r.declares_topology:
        setup, _ = await connect("focom")
        await ensure_streams(setup.jetstream())
        await ensure_buckets(setup.jetstream())
    nc, violations = await connect(role)
    bus = Bus(nc, source=role)
    if r.declares_topology:
        await ensure_streams(bus.js)
        await ensure_buckets(bus.js)
    for subject in r.publishes:
        await bus.js.publish(_concrete(subject), b"{}")
    for spec in r.consumers:
        await bus.js.add_consumer(spec.stream.name, bus.consumer(spec, _noop).config())
        sub = await bus.js.pull_subscribe_bind(durable=spec.durable, stream=spec.stream.name)
        await sub.consumer_info()
        with contextlib.suppress(nats.errors.TimeoutError):
            for msg in await sub.fetch(1, timeout=0.5):
                await msg.ack()
        await sub.unsubscribe()
    for bucket in r.writes_buckets:
        kv = await bus.kv(bucket)
        await kv.put("probe", b"1")
        assert (await kv.get("probe")).value == b"1"
        assert "probe" in await _keys(kv)
        await kv.delete("probe")
    for bucket in r.reads_buckets:
        kv = await bus.kv(bucket)
        with contextlib.suppress(nats.js.errors.NoKeysError):
            await kv.keys()
    for stream in r.reads:
        sub = await bus.js.subscribe(stream.subjects[0], ordered_consumer=True)
        await sub.unsubscribe()
    for stream in r.owns_consumers:
        await bus.js.add_consumer(stream.name, durable_name="any-name", ack_policy="explicit")
        bound = await bus.js.pull_subscribe_bind(durable="any-name", stream=stream.name)
        with contextlib.suppress(nats.errors.TimeoutError):
            await bound.fetch(1, timeout=0.5)
        await bound.unsubscribe()
        await bus.js.delete_consumer(stream.name, "any-name")
    for stream in r.pulls:
        psub = await bus.js.pull_subscribe(stream.subjects[0], stream=stream.name)
        await psub.consumer_info()
        with contextlib.suppress(nats.errors.TimeoutError):
            await psub.fetch(1, timeout=0.5)
        await psub.unsubscribe()
    await nc.flush()
    assert violations.seen == []


async def _noop(*_args: object) -> None:
    return None


def _concrete(pattern: str) -> str:
    return pattern.replace(">", "x.y.z") if pattern.endswith(">") else pattern


def test_every_durable_consumer_belongs_to_a_role() -> None:
    """A new ConsumerSpec in shared.subjects must be given to the role that binds it."""
    specs = {v.durable for v in vars(s).values() if isinstance(v, s.ConsumerSpec)}
    bound = {c.durable for r in natsroles.ROLES for c in r.consumers}
    assert specs == bound


def test_role_inboxes_are_disjoint() -> None:
    inboxes = [natsroles.permissions(r)["subscribe"]["allow"][0] for r in natsroles.ROLES]
    assert inboxes == [f"_INBOX.{r.name}.>" for r in natsroles.ROLES]
    assert isinstance(natsroles.ROLES[0], Role)


def test_every_bucket_has_a_writer_and_every_stream_a_publisher() -> None:
    """A new bucket or stream in shared.subjects must be given to the role that writes it."""
    writers = {b for r in natsroles.ROLES for b in r.writes_buckets}
    assert set(s.ALL_BUCKETS) <= writers, f"buckets no role may write: {set(s.ALL_BUCKETS) - writers}"
    published = [p for r in natsroles.ROLES for p in natsroles.permissions(r)["publish"]["allow"]]
    for stream in s.ALL_STREAMS:
        for subject in stream.subjects:
            prefix = subject.removesuffix(">")
            covered = any(p == subject or (subject.endswith(">") and p.startswith(prefix)) for p in published)
            assert covered, f"{stream.name}: no role may publish {subject}"
