"""Maps Kubernetes client and transport failures onto the project's error tree.

Registered with ``shared.errors.register_classifier`` when imported, so that
``classify(exc)`` understands ``ApiException`` and aiohttp errors anywhere.
Only the server's ``Status.message`` is carried over: never a request body,
response headers, or anything from the client configuration (which holds the
bearer token).

=====================================  ==========================================
what the server or transport said      error
=====================================  ==========================================
409 Conflict / AlreadyExists           TemporaryError (re-read and retry)
429 TooManyRequests                    TemporaryError(delay = Retry-After)
5xx, 410 outside a watch               TemporaryError
connection refused/reset, timeouts     TemporaryError
401                                    PermanentError(reason="Unauthorized")
400, 403, 404, 405, 415, 422           PermanentError(message = Status.message)
TLS verification failure, bad config   PermanentError
=====================================  ==========================================
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp
from kubernetes.aio.client.exceptions import ApiException as AioApiException
from kubernetes.aio.config.config_exception import ConfigException as AioConfigException
from kubernetes.client.exceptions import ApiException as SyncApiException
from kubernetes.config.config_exception import ConfigException as SyncConfigException

from shared.errors import PermanentError, ServiceError, TemporaryError, register_classifier

#: Reasons the API server uses in Status objects, by HTTP code, for when the body has none.
_DEFAULT_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
_TEMPORARY_CODES = {409, 410, 429}
_MAX_MESSAGE = 2000


def parse_status(body: str | bytes | None) -> dict[str, Any]:
    """The ``Status`` object in an error response body, or ``{}`` when there is none."""
    if not body:
        return {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) and data.get("kind") == "Status" else {}


def _retry_after(headers: Mapping[str, str] | None, default: float) -> float:
    raw = (headers or {}).get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw is not None else default
    except ValueError:
        return default


def api_error(
    code: int, status: Mapping[str, Any], *, headers: Mapping[str, str] | None = None, fallback: str = ""
) -> ServiceError:
    """Build the project error for an HTTP ``code`` and the server's Status object."""
    reason = str(status.get("reason") or _DEFAULT_REASONS.get(code) or f"Http{code}")
    message = str(status.get("message") or fallback or reason)[:_MAX_MESSAGE]
    text = f"Kubernetes API {code} {reason}: {message}"
    if code == 429:
        return TemporaryError(text, delay=_retry_after(headers, 1.0), reason=reason)
    if code in _TEMPORARY_CODES or code >= 500 or code == 0:
        return TemporaryError(text, delay=_retry_after(headers, 1.0), reason=reason)
    if code == 401:
        return PermanentError(text, reason="Unauthorized")
    return PermanentError(text, reason=reason)


def _from_api_exception(exc: AioApiException | SyncApiException) -> ServiceError:
    code = int(exc.status or 0)
    body = exc.body if isinstance(exc.body, str | bytes) else None
    status = parse_status(body)
    # Watch ERROR events arrive as ApiException(status, reason="<Reason>: <message>") with no body.
    fallback = str(exc.reason or "")
    if not status and ": " in fallback:
        status_reason, _, message = fallback.partition(": ")
        status = {"reason": status_reason, "message": message}
    headers = exc.headers if isinstance(exc.headers, Mapping) else None
    return api_error(code, status, headers=headers, fallback=fallback)


@register_classifier
def classify_kube(exc: BaseException) -> ServiceError | None:
    """Classifier for ``kubernetes`` and aiohttp exceptions (None when not theirs)."""
    if isinstance(exc, AioApiException | SyncApiException):
        return _from_api_exception(exc)
    if isinstance(exc, AioConfigException | SyncConfigException):
        return PermanentError(f"invalid kubeconfig: {exc}", reason="InvalidKubeconfig")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return PermanentError(f"TLS failure talking to the Kubernetes API: {type(exc).__name__}", reason="TLSError")
    if isinstance(exc, aiohttp.ClientResponseError):
        # str(exc) would be fine, but request_info (with headers) must never be rendered.
        return api_error(exc.status, {}, fallback=exc.message)
    if isinstance(exc, aiohttp.ClientError):
        return TemporaryError(f"Kubernetes API unreachable: {type(exc).__name__}: {exc}", reason="ConnectionFailed")
    return None
