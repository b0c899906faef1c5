"""Host claims across replicas: at most one hostprep replica works on a host at a time.

JetStream delivers a job at least once and may hand a message to a second replica while the first is still
working on it (after a NATS restart, a redelivery whose heartbeats the server never recorded comes back at
once). Two replicas running one host's checks and actions at the same time would both see "not done" and
both act: a file installed twice, the agent restarted. So before a host's recipe runs, its replica claims the
host in the ``hostprep-claims`` KV bucket (key: the host id):

- ``create`` succeeds for one claimant only; the others wait, polling, until the claim is released or has
  expired, bounded by their job's deadline, then run the recipe, whose checks find the work done;
- the bucket's max age (``HOSTPREP_CLAIM_TTL``) is the claim's time to live: the server drops the claim of a
  replica that died; the holder renews it (a compare-and-set ``update``) every quarter of it;
- the holder stops working on the host once no renewal succeeded for three quarters of the TTL, counted on its
  own clock from before the last successful renewal was sent, so always before the server could drop the
  claim; the job then goes back to the bus (``HostClaimLost``, a temporary error) and resumes from the checks;
- release is a compare-and-set delete: a replica never removes another's claim.

Claims guard every action (prepare, teardown, upgrade); within a process a lock per host still orders the
jobs of that process before they claim.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import nats.errors
import nats.js.errors
import structlog
from nats.js.kv import KeyValue

from shared.errors import TemporaryError
from shared.messages import utcnow
from shared.subjects import HOSTPREP_CLAIM_TTL

log = structlog.get_logger(__name__)

T = TypeVar("T")

#: Called once when a host has to wait for another replica's claim, with a description of that claim.
OnWait = Callable[[str], Awaitable[None]]
#: What a failed KV call raises while the bus is away or slow: worth trying again.
_BUS_ERRORS = (nats.errors.Error, asyncio.TimeoutError, OSError)


class HostClaimLost(TemporaryError):
    """The host's claim could not be kept: its work stopped; the job is handed back to the bus."""

    def __init__(self, host_id: str, why: str) -> None:
        super().__init__(f"the claim on host {host_id} was lost ({why}); the job will resume", reason="HostClaimLost")
        self.host_id = host_id


@dataclass(frozen=True)
class ClaimTiming:
    """The claim's clock, all derived from its time to live (the bucket's max age)."""

    ttl: float = HOSTPREP_CLAIM_TTL

    @property
    def renew_every(self) -> float:
        return self.ttl / 4

    @property
    def keep_for(self) -> float:
        """How long the holder keeps working without a successful renewal."""
        return self.ttl * 3 / 4

    @property
    def poll_every(self) -> float:
        """How often a waiting replica tries to claim again."""
        return self.ttl / 10


class HostClaims:
    """Claims on hosts in one KV bucket, on behalf of this replica (``owner``, unique per process)."""

    def __init__(self, kv: KeyValue, *, timing: ClaimTiming | None = None, owner: str | None = None) -> None:
        self.kv = kv
        self.timing = timing or ClaimTiming()
        # Where the claimant runs (a pod's hostname), unique per process even when pods reuse pid 1.
        self.owner = owner or f"{socket.gethostname()[:40]}/{os.getpid()}/{uuid.uuid4().hex[:8]}"

    async def acquire(
        self, host_id: str, *, pr_id: str, action: str, deadline: float, on_wait: OnWait | None = None
    ) -> HostClaim | None:
        """The host's claim, once no other replica holds it; None if ``deadline`` (monotonic) came first."""
        token = uuid.uuid4().hex
        value = json.dumps(
            {"owner": self.owner, "token": token, "pr_id": pr_id, "action": action, "claimed_at": utcnow().isoformat()}
        ).encode()
        waited = False
        #: When a ``create`` went unanswered (the bus away): it may have been stored, so the claim may be ours.
        unanswered: float | None = None
        while True:
            sent = time.monotonic()
            try:
                revision = await self.kv.create(host_id, value)
            except nats.js.errors.KeyWrongLastSequenceError:
                entry = await self._entry(host_id)
                if entry is not None and entry.value == value and unanswered is not None:
                    # Our own unanswered create was stored: the claim is ours, counted from that first send.
                    return HostClaim(self, host_id, value, int(entry.revision or 0), unanswered)
                holder = _describe(entry)
            except nats.js.errors.NotFoundError:  # the claim ended while ``create`` looked at it: try again
                holder = "a claim that just ended"
            except _BUS_ERRORS as exc:
                unanswered = sent if unanswered is None else unanswered
                holder = f"the claims bucket is unreachable ({type(exc).__name__})"
            else:
                if waited:
                    log.info("host_claim_taken_after_wait", host_id=host_id, pr_id=pr_id)
                return HostClaim(self, host_id, value, revision, unanswered if unanswered is not None else sent)
            if not waited:
                waited = True
                log.info("host_claim_waiting", host_id=host_id, pr_id=pr_id, holder=holder)
                if on_wait is not None:
                    await on_wait(holder)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            await asyncio.sleep(min(self.timing.poll_every, left))  # the holder renews or releases meanwhile

    async def _entry(self, host_id: str) -> KeyValue.Entry | None:
        """The host's current claim, or None when there is none (or the bus did not answer)."""
        try:
            return await self.kv.get(host_id)
        except nats.js.errors.NotFoundError:  # gone (expired) or deleted (released)
            return None
        except _BUS_ERRORS:
            return None


def _describe(entry: KeyValue.Entry | None) -> str:
    """Who holds a host, for logs and progress (the claim's value is our own JSON, read defensively)."""
    if entry is None:
        return "a claim that just ended"
    try:
        data = json.loads(entry.value or b"{}")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return "an unreadable claim"
    return f"{str(data.get('owner'))[:64]} for {str(data.get('action'))[:16]} of PR {str(data.get('pr_id'))[:64]}"


class HostClaim:
    """One held claim: ``guard`` runs the host's work while renewing it; ``release`` gives it back."""

    def __init__(self, claims: HostClaims, host_id: str, value: bytes, revision: int, sent: float) -> None:
        self._claims = claims
        self.host_id = host_id
        #: Unique per claim (its token): equal to the stored value only while the claim is ours.
        self._value = value
        self._revision = revision
        #: ``time.monotonic()`` before the last successful write was sent: the server's max age counts from later.
        self._renewed = sent
        #: Set when ``guard``'s work is over: the keeper stops even if its cancellation is lost (see ``guard``).
        self._done = False

    @property
    def held_until(self) -> float:
        """Monotonic time until which this replica may work on the host without another renewal."""
        return self._renewed + self._claims.timing.keep_for

    async def guard(self, work: Coroutine[Any, Any, T]) -> T:
        """``work``'s result; if the claim cannot be kept, ``work`` is cancelled and ``HostClaimLost`` raised."""
        task = asyncio.ensure_future(work)
        keeper = asyncio.ensure_future(self._keep())
        try:
            await asyncio.wait({task, keeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # One side ended (or we are cancelled): the other stops too. Python 3.11's ``asyncio.wait_for``
            # (under every NATS request) drops a cancellation that arrives just as its answer does, so the
            # keeper may be renewing when cancelled, return normally and go on renewing: the flag stops it.
            self._done = True
            for side in (task, keeper):
                if not side.done():
                    side.cancel()
            await asyncio.gather(task, keeper, return_exceptions=True)
        if task.cancelled() and not keeper.cancelled() and (lost := keeper.exception()) is not None:
            raise lost
        return task.result()

    async def _keep(self) -> None:
        """Renew until cancelled; raise ``HostClaimLost`` once the claim is gone or can no longer be vouched for."""
        timing = self._claims.timing
        while not self._done:
            wait = self._renewed + timing.renew_every - time.monotonic()
            await asyncio.sleep(max(0.0, wait))  # the renewal period: the holder's own clock
            while not self._done:
                why = await self._renew()
                if why is None:
                    break
                if why != "retry":
                    raise HostClaimLost(self.host_id, why)
                left = self.held_until - time.monotonic()
                if left <= 0:
                    raise HostClaimLost(self.host_id, "not renewed in time: the claims bucket is unreachable")
                await asyncio.sleep(min(1.0, left))  # the bus is away: try again within the claim's time

    async def _renew(self) -> str | None:
        """None when renewed, ``"retry"`` when the bus did not answer, else why the claim is no longer ours."""
        sent = time.monotonic()
        try:
            self._revision = await self._claims.kv.update(self.host_id, self._value, last=self._revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            # Our earlier renewal may have been stored though its answer was lost: is the claim still ours?
            try:
                entry = await self._claims.kv.get(self.host_id)
            except nats.js.errors.NotFoundError:  # expired (gone) or deleted
                return "it expired or was released"
            except _BUS_ERRORS:
                return "retry"
            if entry.value != self._value:
                return "another replica holds it"
            self._revision = int(entry.revision or 0)
            return "retry"
        except _BUS_ERRORS as exc:
            log.warning("host_claim_not_renewed", host_id=self.host_id, error=type(exc).__name__)
            return "retry"
        self._renewed = sent
        return None

    async def release(self) -> None:
        """Delete the claim if it is still ours (compare-and-set); an unreachable bus leaves it to expire."""
        try:
            await self._claims.kv.delete(self.host_id, last=self._revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            log.warning("host_claim_not_ours_at_release", host_id=self.host_id)
        except _BUS_ERRORS as exc:
            log.warning("host_claim_not_released", host_id=self.host_id, error=type(exc).__name__)
