"""Watch streams: newline-delimited JSON events over a chunked HTTP 200 response.

Replays kept history after a resourceVersion (or synthetic ADDED events for the current state), then live
events; selectors turn objects that start or stop matching into ADDED/DELETED; bookmarks when asked.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .errors import ApiError, bad_request
from .registry import ResourceType
from .selectors import Predicate
from .store import Event, Store

_BATCH_BYTES = 256 * 1024
#: Turns a stored object into what the watcher asked for (a one-row Table, metadata only).
Render = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class WatchOptions:
    resource_version: str | None
    timeout: float | None
    bookmarks: bool
    bookmark_interval: float


def _line(type_: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": type_, "object": obj}, separators=(",", ":")).encode() + b"\n"


def _view(obj: dict[str, Any], api_version: str) -> dict[str, Any]:
    return obj if obj.get("apiVersion") == api_version else {**obj, "apiVersion": api_version}


def encode_event(event: Event, pred: Predicate | None, api_version: str, render: Render | None = None) -> bytes | None:
    """The wire line for ``event`` as seen by a watcher with filter ``pred`` (None when it sees nothing)."""
    if pred is None:
        type_, which = event.type, "obj"
    elif event.type == "ADDED":
        type_, which = ("ADDED", "obj") if pred(event.obj) else ("", "")
    elif event.type == "DELETED":
        type_, which = ("DELETED", "obj") if pred(event.obj) or (event.prev and pred(event.prev)) else ("", "")
    else:
        now, before = pred(event.obj), event.prev is not None and pred(event.prev)
        if now:
            type_, which = ("MODIFIED" if before else "ADDED"), "obj"
        elif before:
            type_, which = "DELETED", "prev"
        else:
            type_, which = "", ""
    if not type_:
        return None
    if which == "prev" and event.prev is not None:
        # An object leaving the selection: its previous content, stamped with this event's resourceVersion.
        prev = {**event.prev, "metadata": {**(event.prev.get("metadata") or {}), "resourceVersion": str(event.rv)}}
        return _line(type_, _rendered(_view(prev, api_version), render))
    if render is not None:
        return _line(type_, render(_view(event.obj, api_version)))  # per-stream output: not shared via the cache
    cache_key = (type_, api_version, False)
    cached = event.cache.get(cache_key)
    if cached is None:
        cached = event.cache[cache_key] = _line(type_, _view(event.obj, api_version))
    return cached


def _rendered(obj: dict[str, Any], render: Render | None) -> dict[str, Any]:
    return obj if render is None else render(obj)


def _bookmark(rtype: ResourceType, api_version: str, rv: int) -> bytes:
    return _line("BOOKMARK", {"kind": rtype.kind, "apiVersion": api_version, "metadata": {"resourceVersion": str(rv)}})


def parse_options(query: Any, bookmark_interval: float) -> WatchOptions:
    timeout: float | None = None
    raw_timeout = query.get("timeoutSeconds")
    if raw_timeout not in (None, ""):
        try:
            timeout = max(0.0, float(raw_timeout))
        except ValueError as exc:
            raise bad_request(f"invalid timeoutSeconds: {raw_timeout!r}") from exc
    rv = query.get("resourceVersion") or None
    if rv is not None and not rv.isdigit():
        raise bad_request(f"invalid resource version: {rv!r}")
    bookmarks = query.get("allowWatchBookmarks", "").lower() in ("1", "true")
    return WatchOptions(rv, timeout, bookmarks, bookmark_interval)


async def serve(
    request: web.Request,
    store: Store,
    rtype: ResourceType,
    version: str,
    namespace: str | None,
    pred: Predicate | None,
    opts: WatchOptions,
    render: Render | None = None,
    name: str | None = None,
) -> web.StreamResponse:
    """Stream the watch; ``name`` (from the field selector, which ``pred`` still applies) narrows it to one object."""
    api_version = rtype.api_version(version)
    watcher = store.watch(rtype.key, namespace, name)
    try:
        initial: list[bytes] = []
        error: ApiError | None = None
        if opts.resource_version in (None, "0"):
            objs: Iterable[dict[str, Any]] = store.list_objects(rtype.key, namespace, name)
            initial = [
                _line("ADDED", _rendered(_view(o, api_version), render)) for o in objs if pred is None or pred(o)
            ]
        else:
            try:
                backlog = store.events_since(int(str(opts.resource_version)), rtype.key, namespace, name)
            except ApiError as exc:
                error = exc
                backlog = []
            initial = [line for e in backlog if (line := encode_event(e, pred, api_version, render)) is not None]
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        if error is not None:
            await resp.write(_line("ERROR", error.status()))
            await resp.write_eof()
            return resp
        await _write_batched(resp, initial)
        await _pump(resp, watcher.queue, store, rtype, api_version, pred, opts, render)
        await resp.write_eof()
        return resp
    except ConnectionResetError:
        return web.Response(status=499)  # the client went away; nothing more to send
    finally:
        store.unwatch(watcher)


async def _write_batched(resp: web.StreamResponse, lines: list[bytes]) -> None:
    chunk: list[bytes] = []
    size = 0
    for line in lines:
        chunk.append(line)
        size += len(line)
        if size >= _BATCH_BYTES:
            await resp.write(b"".join(chunk))
            chunk, size = [], 0
    if chunk:
        await resp.write(b"".join(chunk))


async def _pump(
    resp: web.StreamResponse,
    queue: asyncio.Queue[Event | None],
    store: Store,
    rtype: ResourceType,
    api_version: str,
    pred: Predicate | None,
    opts: WatchOptions,
    render: Render | None,
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + opts.timeout if opts.timeout is not None else None
    while True:
        wait = None if deadline is None else deadline - loop.time()
        if wait is not None and wait <= 0:
            break
        if opts.bookmarks:
            wait = opts.bookmark_interval if wait is None else min(wait, opts.bookmark_interval)
        try:
            first = await asyncio.wait_for(queue.get(), wait)
        except TimeoutError:
            if opts.bookmarks and (deadline is None or deadline - loop.time() > 0):
                await resp.write(_bookmark(rtype, api_version, store.rv))
            continue
        if not await _flush(resp, [first], queue, api_version, pred, render):
            return  # closed by the server (stop or a slow watcher): no final bookmark, the client must resume
    # Deliver what is already queued first, so the closing bookmark never skips an event.
    if await _flush(resp, [], queue, api_version, pred, render) and opts.bookmarks:
        await resp.write(_bookmark(rtype, api_version, store.rv))


async def _flush(
    resp: web.StreamResponse,
    batch: list[Event | None],
    queue: asyncio.Queue[Event | None],
    api_version: str,
    pred: Predicate | None,
    render: Render | None,
) -> bool:
    """Write ``batch`` plus everything queued; False when the server closed the watch."""
    while not queue.empty() and (not batch or batch[-1] is not None):
        batch.append(queue.get_nowait())
    lines = [line for e in batch if e is not None and (line := encode_event(e, pred, api_version, render)) is not None]
    await _write_batched(resp, lines)
    return not batch or batch[-1] is not None
