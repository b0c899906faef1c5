"""Every stream, subject, durable consumer and KV bucket name of the bus, and its delivery policy.

This is the only module that spells a subject. Services build subjects with the functions
below and bind consumers from the ``ConsumerSpec`` constants, so the whole bus contract
(DESIGN §3) can be read in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

# ── streams ────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    #: How long a stream remembers message ids for de-duplication (seconds).
    duplicate_window: float = 120.0
    #: Events are kept for replay and audit (``o2ctl events``), bounded by age.
    max_age: float = 7 * 24 * 3600.0


FOCOM = StreamSpec("FOCOM", ("focom.requests", "focom.status.>"))
O2IMS = StreamSpec("O2IMS", ("o2ims.requests.>", "o2ims.status.>"))
HOSTPREP = StreamSpec("HOSTPREP", ("hostprep.jobs.>", "hostprep.events.>"))
CAPI = StreamSpec("CAPI", ("capi.jobs.>", "capi.events.>"))
K8S = StreamSpec("K8S", ("k8s.status.>",))
#: O2IMS deadline timers: delayed self-addressed messages (see o2ims).
TIMERS = StreamSpec("TIMERS", ("timers.>",), max_age=24 * 3600.0)

#: The O2IMS API's outbound notifications (inventory and alarm changes), read by one durable
#: consumer per subscription; plus ``message.failed`` of the API's own consumers.
O2IMS_API = StreamSpec("O2IMS_API", ("o2api.inventory.>", "o2api.alarms.>", "o2api.failed.>"), max_age=24 * 3600.0)

#: FOCOM's northbound API's notifications (FPR phase changes and child PR transitions), read by one durable
#: consumer per subscription.
FOCOM_API = StreamSpec("FOCOM_API", ("focomapi.events.>", "focomapi.failed.>"), max_age=24 * 3600.0)

ALL_STREAMS: tuple[StreamSpec, ...] = (FOCOM, O2IMS, HOSTPREP, CAPI, K8S, TIMERS, O2IMS_API, FOCOM_API)

# ── KV buckets (the system of record) ────────────────────────────────────────────────────

BUCKET_FPR = "fpr"
BUCKET_PR = "pr"
BUCKET_HOSTS = "hosts"
#: The O2IMS API's own records: this O-Cloud's identity, provisioning-request data as submitted,
#: subscriptions, alarms, and the last inventory view it notified (to compute changes).
BUCKET_O2IMS_API = "o2ims-api"
BUCKET_O2IMS_API_PRS = "o2ims-api-prs"
BUCKET_O2IMS_API_SUBSCRIPTIONS = "o2ims-api-subscriptions"
BUCKET_O2IMS_API_ALARMS = "o2ims-api-alarms"
BUCKET_O2IMS_API_VIEWS = "o2ims-api-views"
O2IMS_API_BUCKETS: tuple[str, ...] = (
    BUCKET_O2IMS_API,
    BUCKET_O2IMS_API_PRS,
    BUCKET_O2IMS_API_SUBSCRIPTIONS,
    BUCKET_O2IMS_API_ALARMS,
    BUCKET_O2IMS_API_VIEWS,
)
#: FOCOM's northbound API: its subscriptions (signing keys included; never shown after creation) and the last
#: phase it notified per FPR (to tell a phase change from another status of the same phase).
BUCKET_FOCOM_API_SUBSCRIPTIONS = "focom-api-subscriptions"
BUCKET_FOCOM_API_VIEWS = "focom-api-views"
FOCOM_API_BUCKETS: tuple[str, ...] = (BUCKET_FOCOM_API_SUBSCRIPTIONS, BUCKET_FOCOM_API_VIEWS)
#: VIP leases from the pool: key = the address (``:`` spelled ``_``), value = owning PR (``shared.vips``).
BUCKET_VIPS = "vips"
#: hostprep's claims on hosts (key = host id, value = the claiming replica, PR and action): one replica at a time
#: works on a host. Entries expire ``HOSTPREP_CLAIM_TTL`` seconds after their last write (the bucket's max age);
#: the holder renews its claim well before that (``services.hostprep.claims``).
BUCKET_HOSTPREP_CLAIMS = "hostprep-claims"
HOSTPREP_CLAIM_TTL = 20.0
#: Buckets whose entries expire (max age, seconds); the others keep their entries until deleted.
BUCKET_TTLS: dict[str, float] = {BUCKET_HOSTPREP_CLAIMS: HOSTPREP_CLAIM_TTL}
ALL_BUCKETS: tuple[str, ...] = (
    BUCKET_FPR,
    BUCKET_PR,
    BUCKET_HOSTS,
    BUCKET_VIPS,
    BUCKET_HOSTPREP_CLAIMS,
    *O2IMS_API_BUCKETS,
    *FOCOM_API_BUCKETS,
)

# ── subjects ───────────────────────────────────────────────────────────────────────────

FOCOM_REQUESTS = "focom.requests"


def _token(value: str) -> str:
    """A subject token must not contain separators or wildcards; reject rather than mangle."""
    if not value or any(c in value for c in ". *>\t\r\n"):
        raise ValueError(f"invalid subject token {value!r}")
    return value


def focom_status(fpr: str) -> str:
    return f"focom.status.{_token(fpr)}"


def o2ims_request(pr: str) -> str:
    return f"o2ims.requests.{_token(pr)}"


def o2ims_status(pr: str) -> str:
    return f"o2ims.status.{_token(pr)}"


def hostprep_job(pr: str) -> str:
    return f"hostprep.jobs.{_token(pr)}"


def hostprep_event(pr: str) -> str:
    return f"hostprep.events.{_token(pr)}"


def capi_job(pr: str) -> str:
    return f"capi.jobs.{_token(pr)}"


def capi_event(pr: str) -> str:
    return f"capi.events.{_token(pr)}"


def k8s_status(kind: str, namespace: str, name: str) -> str:
    return f"k8s.status.{_token(kind.lower())}.{_token(namespace)}.{_token(name)}"


def timer(pr: str) -> str:
    return f"timers.o2ims.{_token(pr)}"


def o2api_inventory(kind: str, object_id: str) -> str:
    """An inventory change of one object (``kind`` e.g. ``resource``; the object's id)."""
    return f"o2api.inventory.{_token(kind)}.{_token(object_id)}"


def o2api_alarm(alarm_id: str) -> str:
    return f"o2api.alarms.{_token(alarm_id)}"


def o2api_failed(key: str) -> str:
    return f"o2api.failed.{_token(key)}"


def o2api_delivery_durable(subscription_id: str) -> str:
    """The durable consumer that delivers one subscription's notifications."""
    return f"o2api-sub-{_token(subscription_id)}"


def focomapi_event(kind: str, object_id: str) -> str:
    """A notification-worthy change of one object (``fpr`` or ``pr``; its name or PR id)."""
    return f"focomapi.events.{_token(kind)}.{_token(object_id)}"


def focomapi_failed(key: str) -> str:
    return f"focomapi.failed.{_token(key)}"


def focomapi_delivery_durable(subscription_id: str) -> str:
    """The durable consumer that delivers one FOCOM API subscription's notifications."""
    return f"focomapi-sub-{_token(subscription_id)}"


ALL_FOCOMAPI_EVENTS = "focomapi.events.>"
ALL_O2API_INVENTORY = "o2api.inventory.>"
ALL_O2API_ALARMS = "o2api.alarms.>"
ALL_FOCOM_STATUS = "focom.status.>"
ALL_O2IMS_REQUESTS = "o2ims.requests.>"
ALL_O2IMS_STATUS = "o2ims.status.>"
ALL_HOSTPREP_JOBS = "hostprep.jobs.>"
ALL_HOSTPREP_EVENTS = "hostprep.events.>"
ALL_CAPI_JOBS = "capi.jobs.>"
ALL_CAPI_EVENTS = "capi.events.>"
ALL_K8S_CLUSTER_STATUS = "k8s.status.cluster.>"
ALL_K8S_BYOHOST_STATUS = "k8s.status.byohost.>"
ALL_K8S_STATUS = "k8s.status.>"
ALL_TIMERS = "timers.o2ims.>"


def last_token(subject: str) -> str:
    return subject.rsplit(".", 1)[-1]


# ── durable consumers and their delivery policy ────────────────────────────────────────


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable pull consumer: what it reads, how deliveries are retried, where failures go.

    ``failure_subject`` maps (consumed subject, key) to the subject of the ``message.failed``
    event published when a message is terminated; ``key`` is the PR/FPR the message belongs
    to when it is known (subject token or envelope correlation id), else ``"_unknown"``.
    """

    durable: str
    stream: StreamSpec
    filter_subjects: tuple[str, ...]
    failure_subject: Callable[[str, str], str]
    #: Where the failure key comes from: the consumed subject's last token (a PR id), the
    #: envelope's correlation id (an FPR name), or the payload's ``pr_id`` (for observations
    #: whose subject names a Kubernetes object, not the PR they concern).
    failure_key: Literal["subject", "correlation", "pr_id"] = "subject"
    ack_wait: float = 30.0
    max_deliver: int = 8
    max_ack_pending: int = 1000
    #: Messages handled at once by one replica.
    concurrency: int = 64
    #: Delay of the first retry after an unexpected fault (doubling for each further one).
    retry_delay: float = 2.0
    #: Retries of one message after unexpected faults (``UnexpectedError``, likely bugs) before it
    #: is terminated with ``message.failed``; counted per process, and ``max_deliver`` still applies.
    unexpected_retries: int = 3
    extra: dict[str, str] = field(default_factory=dict)


def _to(fn: Callable[[str], str]) -> Callable[[str, str], str]:
    return lambda _subject, key: fn(key)


FOCOM_REQUESTS_CONSUMER = ConsumerSpec(
    "focom-requests", FOCOM, (FOCOM_REQUESTS,), _to(focom_status), "correlation", ack_wait=60.0, concurrency=4
)
FOCOM_CHILD_STATUS_CONSUMER = ConsumerSpec(
    "focom-child-status", O2IMS, (ALL_O2IMS_STATUS,), _to(focom_status), "correlation"
)
#: focom's Kubernetes face: FPR status changes (and refusals) written back to the FocomProvisioningRequest CR.
FOCOM_CR_STATUS_CONSUMER = ConsumerSpec(
    "focom-cr-status", FOCOM, (ALL_FOCOM_STATUS,), _to(focom_status), "correlation", concurrency=16
)
#: o2ims handlers take milliseconds (a KV write and a few publishes): a short ack_wait means a
#: message held by a crashed replica is redelivered within seconds.
O2IMS_REQUESTS_CONSUMER = ConsumerSpec("o2ims-requests", O2IMS, (ALL_O2IMS_REQUESTS,), _to(o2ims_status), ack_wait=10.0)
O2IMS_EVENTS_CONSUMER = ConsumerSpec("o2ims-events", HOSTPREP, (ALL_HOSTPREP_EVENTS,), _to(o2ims_status), ack_wait=10.0)
O2IMS_CAPI_EVENTS_CONSUMER = ConsumerSpec(
    "o2ims-capi-events", CAPI, (ALL_CAPI_EVENTS,), _to(o2ims_status), ack_wait=10.0
)
O2IMS_CLUSTER_STATUS_CONSUMER = ConsumerSpec(
    "o2ims-cluster-status", K8S, (ALL_K8S_CLUSTER_STATUS,), _to(o2ims_status), "pr_id", ack_wait=10.0
)
#: ByoHost observations: o2ims routes each to the PR holding the host's lease (a leaving host's lease is
#: released only once its ByoHost is seen unclaimed and the host was reset).
O2IMS_BYOHOST_STATUS_CONSUMER = ConsumerSpec(
    "o2ims-byohost-status", K8S, (ALL_K8S_BYOHOST_STATUS,), _to(o2ims_status), "correlation", ack_wait=10.0
)
#: Each armed deadline stays unacknowledged (nak'ed with a delay) until it is due, so the
#: ack-pending limit bounds how many deadlines can be armed at once: keep it far above the PR count.
O2IMS_TIMERS_CONSUMER = ConsumerSpec(
    "o2ims-timers", TIMERS, (ALL_TIMERS,), _to(o2ims_status), max_deliver=-1, max_ack_pending=100_000, ack_wait=10.0
)
HOSTPREP_JOBS_CONSUMER = ConsumerSpec(
    "hostprep-jobs", HOSTPREP, (ALL_HOSTPREP_JOBS,), _to(hostprep_event), ack_wait=60.0, concurrency=16
)
CAPI_JOBS_CONSUMER = ConsumerSpec(
    "capi-renderer-jobs", CAPI, (ALL_CAPI_JOBS,), _to(capi_event), ack_wait=60.0, concurrency=16
)
#: The O2IMS API's alarm sources: per-host SSH failures and recoveries reported by hostprep.
O2IMS_API_HOST_EVENTS_CONSUMER = ConsumerSpec(
    "o2ims-api-host-events",
    HOSTPREP,
    (ALL_HOSTPREP_EVENTS,),
    lambda _s, _k: o2api_failed("host-events"),
    ack_wait=10.0,
    concurrency=1,
)
#: How long a notification stays unacknowledged by a crashed API replica before redelivery (seconds).
O2API_DELIVERY_ACK_WAIT = 15.0
#: FOCOM's northbound API turns FPR statuses and PR statuses into notification events in stream order, one
#: message at a time per stream across every replica and every crash: ``max_ack_pending=1`` keeps the server
#: from handing out the next status while one is unacknowledged, so a status held by a killed replica is
#: redelivered (after ``ack_wait``) before anything after it. (Handling one at a time per process is not
#: enough: the server would hand the next ones to the restarted process at once, and the held status would
#: come back after them, e.g. an old ``Creating`` notified after ``Synced``.) A temporary failure is retried
#: until it succeeds (``max_deliver=-1``): every transition is notified; a refused message is reported on its
#: own subject, never delivered to subscribers.
FOCOM_API_FPR_STATUS_CONSUMER = ConsumerSpec(
    "focom-api-fpr-status",
    FOCOM,
    (ALL_FOCOM_STATUS,),
    lambda _s, _k: focomapi_failed("fpr-status"),
    ack_wait=10.0,
    max_deliver=-1,
    max_ack_pending=1,
    concurrency=1,
)
FOCOM_API_PR_STATUS_CONSUMER = ConsumerSpec(
    "focom-api-pr-status",
    O2IMS,
    (ALL_O2IMS_STATUS,),
    lambda _s, _k: focomapi_failed("pr-status"),
    ack_wait=10.0,
    max_deliver=-1,
    max_ack_pending=1,
    concurrency=1,
)
#: How long a notification stays unacknowledged by a crashed FOCOM API replica before redelivery (seconds).
FOCOMAPI_DELIVERY_ACK_WAIT = 15.0
