"""Who may say what on the bus: one NATS role per service (and per client), derived from ``shared.subjects``.

A role lists, in the bus contract's own terms, what it publishes, which durable consumers it binds,
which streams it reads with short-lived consumers and which KV buckets it reads or writes.
``permissions(role)`` turns that into NATS ``publish``/``subscribe`` allow lists, JetStream API
subjects included, scoped as tightly as the client library allows:

- business subjects: exactly the subjects the role publishes (its events, its commands to the next
  service, its own ``message.failed`` subject);
- durable consumers: create/info/next for its own durables and acks on them (``$JS.ACK.<stream>.<durable>.>``);
- topology: stream info and create for the streams and buckets every service declares at start.
  Create cannot change an existing stream (the server refuses a different config under the same name);
  update, delete and purge are granted to no service;
- KV: ``$KV.<bucket>.>`` to write, direct/message get and ordered watchers (``keys()``) to read;
- stream readers: only the unnamed consumer create of ordered consumers, which cannot alter a durable;
- replies: a per-role inbox ``_INBOX.<role>.>`` (connections set that inbox prefix), so one role cannot
  read the replies (KV values, stream messages) meant for another.

Everything not allowed is denied by the server. A role is named once here; chart values, ``o2ctl up``
and the tests all take their users from ``ROLES``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared import subjects as s
from shared.subjects import ConsumerSpec, StreamSpec

JS_API = "$JS.API"


@dataclass(frozen=True)
class Role:
    """What one NATS identity may do, in bus-contract terms."""

    name: str
    #: Subjects (or subject patterns) it publishes into streams.
    publishes: tuple[str, ...] = ()
    #: Durable consumers it creates and binds.
    consumers: tuple[ConsumerSpec, ...] = ()
    #: Streams it reads with ordered (unnamed, ephemeral) consumers: ``o2ctl events``, live views, KV watches.
    reads: tuple[StreamSpec, ...] = ()
    #: Streams it reads back with named ephemeral pull consumers; only for a stream this role alone writes,
    #: since the grant (create/next on any consumer name) would reach other roles' durables on it.
    pulls: tuple[StreamSpec, ...] = ()
    #: Streams whose every consumer is this role's (named at run time, e.g. one per API subscription):
    #: any durable on them may be created, bound, acked and deleted. Only for a stream no other role reads.
    owns_consumers: tuple[StreamSpec, ...] = ()
    #: KV buckets it writes (and reads).
    writes_buckets: tuple[str, ...] = ()
    #: KV buckets it only reads.
    reads_buckets: tuple[str, ...] = ()
    #: Whether it declares streams and buckets at start (every service does, see ``shared.runtime``).
    declares_topology: bool = True

    @property
    def inbox_prefix(self) -> str:
        return inbox_prefix(self.name)


def inbox_prefix(role: str) -> str:
    """The reply-subject prefix of a role's connections (``_INBOX.<role>``)."""
    return f"_INBOX.{role}"


FOCOM = Role(
    "focom",
    publishes=(s.FOCOM_REQUESTS, s.ALL_FOCOM_STATUS, s.ALL_O2IMS_REQUESTS),
    consumers=(s.FOCOM_REQUESTS_CONSUMER, s.FOCOM_CHILD_STATUS_CONSUMER, s.FOCOM_CR_STATUS_CONSUMER),
    writes_buckets=(s.BUCKET_FPR, s.BUCKET_HOSTS, s.BUCKET_VIPS),
)
O2IMS = Role(
    "o2ims",
    publishes=(s.ALL_O2IMS_STATUS, s.ALL_HOSTPREP_JOBS, s.ALL_CAPI_JOBS, s.ALL_TIMERS),
    consumers=(
        s.O2IMS_REQUESTS_CONSUMER,
        s.O2IMS_EVENTS_CONSUMER,
        s.O2IMS_CAPI_EVENTS_CONSUMER,
        s.O2IMS_CLUSTER_STATUS_CONSUMER,
        s.O2IMS_BYOHOST_STATUS_CONSUMER,
        s.O2IMS_TIMERS_CONSUMER,
    ),
    writes_buckets=(s.BUCKET_PR, s.BUCKET_HOSTS, s.BUCKET_VIPS),
)
HOSTPREP = Role(
    "hostprep",
    publishes=(s.ALL_HOSTPREP_EVENTS,),
    consumers=(s.HOSTPREP_JOBS_CONSUMER,),
    writes_buckets=(s.BUCKET_HOSTPREP_CLAIMS,),
)
CAPI_RENDERER = Role("capi_renderer", publishes=(s.ALL_CAPI_EVENTS,), consumers=(s.CAPI_JOBS_CONSUMER,))
#: status_watcher is the only writer of the K8S stream; it reads it back (last message per subject) at start.
STATUS_WATCHER = Role("status_watcher", publishes=(s.ALL_K8S_STATUS,), pulls=(s.K8S,))
#: The SMO-facing O2IMS API: reads the records and status, publishes ProvisioningRequest commands, takes and
#: releases the leases of the hosts it requests, keeps its own buckets, and delivers notifications from its
#: own stream with one durable per subscription.
O2IMS_API = Role(
    "o2ims_api",
    publishes=(s.ALL_O2IMS_REQUESTS, *s.O2IMS_API.subjects),
    consumers=(s.O2IMS_API_HOST_EVENTS_CONSUMER,),
    reads=(s.K8S, s.FOCOM, s.O2IMS, s.HOSTPREP),
    owns_consumers=(s.O2IMS_API,),
    writes_buckets=(*s.O2IMS_API_BUCKETS, s.BUCKET_HOSTS),
    reads_buckets=(s.BUCKET_FPR, s.BUCKET_PR),
)
#: FOCOM's northbound API: publishes FOCOM requests and decisions, follows FPR and PR status, keeps its
#: own buckets and delivers notifications from its own stream with one durable per subscription.
FOCOM_API = Role(
    "focom_api",
    publishes=(s.FOCOM_REQUESTS, *s.FOCOM_API.subjects),
    consumers=(s.FOCOM_API_FPR_STATUS_CONSUMER, s.FOCOM_API_PR_STATUS_CONSUMER),
    owns_consumers=(s.FOCOM_API,),
    writes_buckets=s.FOCOM_API_BUCKETS,
    reads_buckets=(s.BUCKET_FPR, s.BUCKET_PR, s.BUCKET_HOSTS),
)
#: The operator's CLI: submits requests and decisions, reads records and event history, clears host quarantine.
O2CTL = Role(
    "o2ctl",
    publishes=(s.FOCOM_REQUESTS,),
    reads=(s.FOCOM, s.O2IMS, s.HOSTPREP, s.CAPI, s.K8S),
    writes_buckets=(s.BUCKET_HOSTS,),
    reads_buckets=(s.BUCKET_FPR, s.BUCKET_PR),
    declares_topology=False,
)

SERVICE_ROLES: tuple[Role, ...] = (FOCOM, O2IMS, HOSTPREP, CAPI_RENDERER, STATUS_WATCHER)
ROLES: tuple[Role, ...] = (*SERVICE_ROLES, O2IMS_API, FOCOM_API, O2CTL)
ROLE_BY_NAME: dict[str, Role] = {r.name: r for r in ROLES}


def _kv_stream(bucket: str) -> str:
    return f"KV_{bucket}"


def _reader(stream: str) -> list[str]:
    """Ordered consumers on ``stream``: the unnamed create (which cannot touch a durable), info, flow control."""
    return [
        f"{JS_API}.STREAM.INFO.{stream}",
        f"{JS_API}.CONSUMER.CREATE.{stream}",
        f"{JS_API}.CONSUMER.INFO.{stream}.*",
        f"$JS.FC.{stream}.>",
    ]


def _puller(stream: str) -> list[str]:
    """Named ephemeral pull consumers on ``stream``: create, info, next and delete under any name."""
    return [
        f"{JS_API}.STREAM.INFO.{stream}",
        f"{JS_API}.CONSUMER.CREATE.{stream}.>",
        f"{JS_API}.CONSUMER.INFO.{stream}.*",
        f"{JS_API}.CONSUMER.MSG.NEXT.{stream}.*",
        f"{JS_API}.CONSUMER.DELETE.{stream}.*",
    ]


def _owner(stream: str) -> list[str]:
    """Every consumer operation on ``stream``, under any consumer name, and acks of any of them."""
    return [
        *_puller(stream),
        f"{JS_API}.CONSUMER.DURABLE.CREATE.{stream}.*",
        f"{JS_API}.CONSUMER.CREATE.{stream}",
        f"$JS.ACK.{stream}.>",
    ]


def _bucket_reader(bucket: str) -> list[str]:
    stream = _kv_stream(bucket)
    return [
        *_reader(stream),
        f"{JS_API}.DIRECT.GET.{stream}",
        f"{JS_API}.DIRECT.GET.{stream}.>",
        f"{JS_API}.STREAM.MSG.GET.{stream}",
    ]


def _durable(spec: ConsumerSpec) -> list[str]:
    st, d = spec.stream.name, spec.durable
    return [
        f"{JS_API}.STREAM.INFO.{st}",
        f"{JS_API}.CONSUMER.DURABLE.CREATE.{st}.{d}",
        f"{JS_API}.CONSUMER.CREATE.{st}.{d}",
        f"{JS_API}.CONSUMER.CREATE.{st}.{d}.>",
        f"{JS_API}.CONSUMER.INFO.{st}.{d}",
        f"{JS_API}.CONSUMER.MSG.NEXT.{st}.{d}",
        f"$JS.ACK.{st}.{d}.>",
    ]


def _topology() -> list[str]:
    out = []
    for stream in [st.name for st in s.ALL_STREAMS] + [_kv_stream(b) for b in s.ALL_BUCKETS]:
        out += [f"{JS_API}.STREAM.INFO.{stream}", f"{JS_API}.STREAM.CREATE.{stream}"]
    return out


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def permissions(role: Role) -> dict[str, Any]:
    """The NATS ``permissions`` block of a role: allow lists for publish and subscribe (all else denied)."""
    publish: list[str] = list(role.publishes)
    if role.declares_topology:
        publish += _topology()
    for spec in role.consumers:
        publish += _durable(spec)
    for stream in role.reads:
        publish += _reader(stream.name)
    for stream in role.pulls:
        publish += _puller(stream.name)
    for stream in role.owns_consumers:
        publish += _owner(stream.name)
    if role.reads:
        # js.subscribe without a stream name looks the stream up by subject.
        publish.append(f"{JS_API}.STREAM.NAMES")
    for bucket in role.writes_buckets:
        publish += [*_bucket_reader(bucket), f"$KV.{bucket}.>"]
    for bucket in role.reads_buckets:
        publish += _bucket_reader(bucket)
    # Replies only: stream messages reach a role through its consumers, never a core subscription.
    subscribe = [f"{role.inbox_prefix}.>"]
    return {"publish": {"allow": _unique(publish)}, "subscribe": {"allow": _unique(subscribe)}}


def all_permissions() -> dict[str, dict[str, Any]]:
    """Role name -> permissions, for every role (the chart carries this as a generated file)."""
    return {role.name: permissions(role) for role in ROLES}
