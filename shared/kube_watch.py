"""Watch streams of the Kubernetes adapter: raw events, 410 as ``WatchExpired``, every failure classified.

``shared.kube.KubeClient.watch`` builds the request; this module reads the stream with the
``kubernetes`` library's ``Watch`` (without the ApiClient it would build) and turns what it
yields or raises into ``WatchEvent``s and the project's errors.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes.aio import watch as kwatch
from kubernetes.aio.client.exceptions import ApiException

from shared.errors import PermanentError, ServiceError, TemporaryError, classify

#: Extra time a watch request may take beyond the server-side ``timeoutSeconds``.
WATCH_GRACE = 30.0


@dataclass(frozen=True)
class WatchEvent:
    """One watch event: ``type`` is ADDED, MODIFIED, DELETED or BOOKMARK."""

    type: str
    object: dict[str, Any]


class WatchExpired(TemporaryError):
    """The server answered ``410 Gone``: the resourceVersion is too old, re-list."""


def expect_metadata(data: Mapping[str, Any], kind: str) -> None:
    """Refuse a full object where only metadata was asked for (a Secret's data must never arrive here)."""
    if data.get("kind") != kind:
        raise PermanentError(f"asked for {kind}, the server sent {data.get('kind')!r}", reason="NotMetadata")


class _NoApiClient:
    """Stands in for the ApiClient a ``Watch`` would build: our watches decode raw events only."""

    def deserialize(self, *_: object, **__: object) -> Any:
        raise TypeError("typed watch events are not supported (raw objects only)")

    async def close(self) -> None:
        return None


class _RawWatch(kwatch.Watch):
    """``kubernetes``' Watch without the ApiClient its constructor builds.

    ``Watch.__init__`` creates an ``ApiClient``, and with it a TLS context loaded from the system trust
    store: tens of milliseconds of CPU per watch, used only to deserialize typed events, which our raw
    watches never ask for. With one short watch per BootstrapKubeconfig that was most of hostprep's
    CPU. The attributes are those ``Watch.__init__`` sets (a unit test compares them).
    """

    def __init__(self) -> None:
        self._raw_return_type = None
        self._stop = False
        self._api_client: Any = _NoApiClient()  # duck-typed: deserialize and close are all Watch uses
        self.resource_version = None
        self.resp = None


_Watch: Any = _RawWatch


async def events(
    open_stream: Callable[..., Awaitable[Any]], *, timeout_seconds: int, metadata_only: bool
) -> AsyncIterator[WatchEvent]:
    """The events of the stream ``open_stream`` opens, until the server ends it."""
    watcher = _Watch()
    try:
        # timeout_seconds in the kwargs stops Watch from silently reconnecting and retrying 410 itself.
        async for raw_event in watcher.stream(open_stream, timeout_seconds=timeout_seconds):
            if not isinstance(raw_event, dict):
                continue
            event = WatchEvent(type=str(raw_event["type"]), object=dict(raw_event["raw_object"]))
            if metadata_only and event.type in ("ADDED", "MODIFIED", "DELETED"):
                expect_metadata(event.object, "PartialObjectMetadata")
            yield event
    except ApiException as exc:
        err = classify(exc)
        if exc.status == 410:
            raise WatchExpired(err.message, delay=0, reason="Expired") from exc
        raise err from exc
    except TemporaryError as exc:
        if exc.reason in {"Expired", "Gone"}:
            raise WatchExpired(exc.message, delay=0, reason="Expired") from exc
        raise
    except ServiceError:
        raise
    except Exception as exc:  # e.g. a malformed event line: classified like any transport failure
        raise classify(exc) from exc
    finally:
        await watcher.close()
