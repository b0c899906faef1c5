"""The project's error tree and the classification of foreign exceptions.

Every handler outcome that is not a plain return is one of these, and only
``shared.bus`` turns them into JetStream actions::

    ServiceError
    ├── TemporaryError(delay)   retry later (nak with delay) while deliveries remain
    │   └── UnexpectedError     nobody recognised the fault (likely a bug): logged with its
    │                           traceback at error level, counted, retried a bounded number
    │                           of times, then terminated like a permanent error
    └── PermanentError          never retry (term + a ``*.failed`` event)
        └── InputError          the message or request itself is invalid

``classify()`` maps exceptions raised by libraries (NATS, Kubernetes, SSH, OS)
onto the tree, so callers can write ``raise classify(exc) from exc`` (always
``from exc``: the original traceback is what makes an ``UnexpectedError`` useful).
Messages must never contain secrets: callers put host ids and step names in
them, never passwords, keys or kubeconfigs.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Callable
from typing import Any

DEFAULT_RETRY_DELAY = 2.0


class ServiceError(Exception):
    """Base of every error the project raises on purpose."""

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: A short CamelCase machine-readable reason (e.g. ``HostUnreachable``).
        self.reason = reason or type(self).__name__

    def __str__(self) -> str:
        return self.message


class TemporaryError(ServiceError):
    """Worth retrying after ``delay`` seconds (a broker nak with that delay)."""

    def __init__(self, message: str, *, delay: float = DEFAULT_RETRY_DELAY, reason: str | None = None) -> None:
        super().__init__(message, reason=reason)
        self.delay = max(0.0, float(delay))


class UnexpectedError(TemporaryError):
    """A fault no classifier recognised: most likely a bug, possibly an unknown failure mode.

    Retrying may help (a redeploy with the fix, a transient state nobody anticipated), so it is
    temporary, but never routine: the bus logs it with the original traceback at error level,
    counts it in ``o2_unexpected_faults_total`` and terminates the message after
    ``ConsumerSpec.unexpected_retries`` retries.
    """

    def __init__(self, message: str, *, delay: float = DEFAULT_RETRY_DELAY) -> None:
        super().__init__(message, delay=delay, reason="Unexpected")


class PermanentError(ServiceError):
    """Retrying cannot help: the message is terminated and a failure reported."""


class InputError(PermanentError):
    """The input (message, request, inventory) is invalid; ``path`` names where."""

    def __init__(self, message: str, *, path: str = "", reason: str | None = None) -> None:
        super().__init__(message, reason=reason or "InvalidInput")
        self.path = path


# Classifiers registered by adapters (kube, ssh) so that this module does not
# import their libraries; each returns None when the exception is not theirs.
_Classifier = Callable[[BaseException], ServiceError | None]
_classifiers: list[_Classifier] = []


def register_classifier(fn: _Classifier) -> _Classifier:
    """Add a classifier for a foreign library's exceptions (idempotent)."""
    if fn not in _classifiers:
        _classifiers.append(fn)
    return fn


_TEMPORARY_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ETIMEDOUT,
    errno.EPIPE,
    errno.EAGAIN,
}


def _nats_classifier(exc: BaseException) -> ServiceError | None:
    module = type(exc).__module__ or ""
    if not module.startswith("nats"):
        return None
    name = type(exc).__name__
    if name in {"BadSubjectError", "BadRequestError", "NotFoundError"}:
        return PermanentError(f"NATS error: {name}: {exc}", reason="BusError")
    return TemporaryError(f"NATS error: {name}: {exc}", reason="BusUnavailable")


def classify(exc: BaseException) -> ServiceError:
    """Map any exception onto the error tree (unknown means temporary)."""
    if isinstance(exc, ServiceError):
        return exc
    for fn in (*_classifiers, _nats_classifier):
        found = fn(exc)
        if found is not None:
            return found
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return TemporaryError(f"timed out: {exc or type(exc).__name__}", reason="Timeout")
    if isinstance(exc, ConnectionError):
        return TemporaryError(f"connection failed: {exc}", reason="ConnectionFailed")
    if isinstance(exc, OSError) and exc.errno in _TEMPORARY_ERRNOS:
        return TemporaryError(f"network error: {exc}", reason="ConnectionFailed")
    # Unknown means temporary (DESIGN §3): a bug fixed by a redeploy should not have
    # terminated the message at once; the bus bounds these retries separately.
    return UnexpectedError(f"unexpected {type(exc).__name__}: {exc}")


def root_cause(exc: BaseException) -> BaseException:
    """The first exception of a ``raise … from …`` chain (what actually went wrong)."""
    seen = {id(exc)}
    while exc.__cause__ is not None and id(exc.__cause__) not in seen:
        exc = exc.__cause__
        seen.add(id(exc))
    return exc


def describe(exc: BaseException) -> dict[str, Any]:
    """A log/event-friendly description of an error (never includes a traceback)."""
    err = classify(exc)
    out: dict[str, Any] = {"reason": err.reason, "message": err.message, "kind": type(err).__name__}
    if isinstance(err, InputError) and err.path:
        out["path"] = err.path
    return out
