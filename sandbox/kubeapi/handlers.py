"""HTTP routing: maps REST paths and verbs onto discovery, reads, watches and the write path."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

from . import errors, selectors, tables, watch
from .auth import Authenticator
from .errors import ApiError, bad_request
from .openapi import OpenApi
from .patch import decode_json
from .registry import Registry, ResourceType
from .store import Store
from .write_rules import WriteParams
from .writes import Writer

log = structlog.get_logger(__name__)
JSON = "application/json"
OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
_OPEN_PATHS = frozenset({"/version", "/healthz", "/livez", "/readyz"})
#: The authenticated user of a request, for the admission webhooks.
USER_KEY = web.RequestKey("user", str)
VERSION_INFO = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0-sandbox",
    "gitCommit": "sandbox",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.24",
    "compiler": "gc",
    "platform": "linux/amd64",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def respond(body: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    headers = {"Warning": ", ".join('299 - "{}"'.format(w.replace('"', '\\"')) for w in warnings)} if warnings else None
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(), status=status, content_type=JSON, headers=headers
    )


async def _json_body(request: web.Request) -> Any:
    """A create/replace body; only JSON is understood (clients sending protobuf get 415, as from a server
    without that codec)."""
    media = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if media and media not in ("application/json", "*/*"):
        raise errors.unsupported_media(media, ["application/json"])
    return decode_json(await request.read())


def _first_accepted(accept: str, offered: tuple[str, ...]) -> str | None:
    """The first media type of ``accept`` among ``offered`` (wildcards take the first offered)."""
    if not accept.strip():
        return offered[0]
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in offered:
            return media
        if media in ("*/*", "application/*"):
            return offered[0]
    return None


@dataclass(frozen=True)
class Target:
    """A parsed resource path."""

    rtype: ResourceType
    version: str
    namespace: str | None
    name: str | None
    subresource: str


class Api:
    """The request handlers of one server; state lives in the store and registry."""

    def __init__(
        self, store: Store, registry: Registry, writer: Writer, auth: Authenticator, *, bookmark_interval: float
    ) -> None:
        self.store = store
        self.registry = registry
        self.writer = writer
        self.auth = auth
        self.bookmark_interval = bookmark_interval
        self.streams: set[asyncio.Task[Any]] = set()
        self.openapi = OpenApi(registry, VERSION_INFO["gitVersion"])

    async def end_streams(self, timeout: float) -> None:
        """Let open watch streams finish cleanly (their watchers must already be closed)."""
        if self.streams:
            await asyncio.wait(list(self.streams), timeout=timeout)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            user = self.auth.authenticate(request.headers.get("Authorization"))
            if user is None and ("Authorization" in request.headers or request.path not in _OPEN_PATHS):
                raise errors.unauthorized()
            request[USER_KEY] = user or "system:anonymous"  # what admission webhooks see as the requester
            return await handler(request)
        except ApiError as exc:
            return respond(exc.status(), exc.code)
        except web.HTTPException:
            raise
        except Exception:
            log.exception("kubeapi_request_failed", method=request.method, path=request.path)
            return respond(errors.internal("an internal error occurred").status(), 500)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        segs = [s for s in request.path.split("/") if s]
        if request.path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok")
        if segs == ["version"]:
            return respond(VERSION_INFO)
        if segs[:1] == ["openapi"]:
            return self._openapi(request, segs[1:])
        if not segs or segs[0] not in ("api", "apis"):
            raise errors.path_not_found()
        if request.method != "GET" and len(segs) <= (2 if segs[0] == "api" else 3):
            raise errors.method_not_allowed(request.method)
        if segs[0] == "api":
            if len(segs) == 1:
                host = request.host
                return respond(
                    {
                        "kind": "APIVersions",
                        "versions": ["v1"],
                        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
                    }
                )
            if segs[1] != "v1":
                raise errors.path_not_found()
            group, version, rest = "", "v1", segs[2:]
        else:
            if len(segs) == 1:
                return respond(self.registry.api_group_list())
            if len(segs) == 2:
                doc = self.registry.api_group(segs[1])
                if doc is None:
                    raise errors.path_not_found()
                return respond(doc)
            group, version, rest = segs[1], segs[2], segs[3:]
        if not rest:
            listing = self.registry.resource_list(group, version)
            if listing is None:
                raise errors.path_not_found()
            return respond(listing)
        target = self._target(group, version, rest)
        return await self._dispatch(request, target)

    def _openapi(self, request: web.Request, rest: list[str]) -> web.Response:
        if request.method != "GET":
            raise errors.method_not_allowed(request.method)
        accept = request.headers.get("Accept", "")
        if rest == ["v2"]:
            media = _first_accepted(accept, (JSON, OPENAPI_V2_PROTOBUF))
            if media == OPENAPI_V2_PROTOBUF:
                # The media type itself is not a valid Content-Type ('@'); kube-apiserver answers octet-stream.
                return web.Response(body=self.openapi.v2_protobuf(), content_type="application/octet-stream")
            if media is None:
                raise ApiError(406, "NotAcceptable", f"only {JSON} and {OPENAPI_V2_PROTOBUF} are served here")
            return web.Response(body=self.openapi.v2_document(), content_type=JSON)
        if _first_accepted(accept, (JSON,)) is None:
            # v3 documents are served as JSON only (what client-go asks for).
            raise ApiError(406, "NotAcceptable", f"only {JSON} is served for OpenAPI v3 documents")
        if rest == ["v3"]:
            return web.Response(body=self.openapi.v3_index(), content_type=JSON)
        if rest[:1] == ["v3"] and len(rest) > 1:
            found = self.openapi.v3_document("/".join(rest[1:]))
            if found is None:
                raise errors.path_not_found()
            body, digest = found
            # Like kube-apiserver: a URL naming the current hash is immutable; others are revalidated.
            cache = "public, immutable" if request.query.get("hash") == digest else "no-cache, private"
            return web.Response(body=body, content_type=JSON, headers={"Cache-Control": cache, "ETag": f'"{digest}"'})
        raise errors.path_not_found()

    def _target(self, group: str, version: str, rest: list[str]) -> Target:
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and not (group == "" and rest[2] in ("status", "finalize")):
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            raise errors.path_not_found()
        rtype = self.registry.resolve(group, version, rest[0])
        if rtype is None or (namespace is not None and not rtype.namespaced):
            raise errors.path_not_found()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else ""
        if name is not None and rtype.namespaced and namespace is None:
            raise errors.path_not_found()
        if sub and (sub != "status" or not rtype.has_status(version)):
            raise errors.path_not_found()
        return Target(rtype, version, namespace, name, sub)

    async def _dispatch(self, request: web.Request, t: Target) -> web.StreamResponse:
        method, q = request.method, request.query
        if t.name is None:
            if method == "GET":
                pred = selectors.both(
                    selectors.label_selector(q.get("labelSelector")),
                    selectors.field_selector(t.rtype, q.get("fieldSelector")),
                )
                watching = q.get("watch", "").lower() in ("1", "true")
                rendering = tables.negotiate(request.headers.get("Accept"), collection=not watching)
                if watching:
                    return await self._watch(request, t, pred, rendering)
                return respond(self._render_list(t, self._list(t, pred, q), rendering, q.get("includeObject")))
            if method == "POST":
                params = self._params(request)
                body = await _json_body(request)
                created = self.writer.create(t.rtype, t.version, t.namespace or "", body, params)
                return respond(self._view(t, created), 201, params.warnings)
            if method == "DELETE":
                return await self._delete_collection(request, t)
            raise errors.method_not_allowed(method)
        namespace = t.namespace or ""
        if method == "GET":
            rendering = tables.negotiate(request.headers.get("Accept"), collection=False)
            obj = self._view(t, self.writer.get(t.rtype, namespace, t.name))
            if rendering.kind == "table":
                include = request.query.get("includeObject")
                printer = tables.Printer(self.registry, t.rtype, t.version, rendering, include)
                return respond(printer.table([obj], {"resourceVersion": obj["metadata"].get("resourceVersion", "")}))
            return respond(tables.partial(obj, rendering) if rendering.kind == "partial" else obj)
        if method == "PUT":
            params = self._params(request)
            body = await _json_body(request)
            updated = self.writer.replace(t.rtype, t.version, namespace, t.name, body, params, t.subresource)
            return respond(self._view(t, updated), 200, params.warnings)
        if method == "PATCH":
            params = self._params(request)
            raw = await request.read()
            existed = self.store.get(t.rtype.key, namespace, t.name) is not None
            patched = self.writer.patch(
                t.rtype,
                t.version,
                namespace,
                t.name,
                raw,
                request.headers.get("Content-Type", ""),
                params,
                t.subresource,
            )
            return respond(self._view(t, patched), 200 if existed else 201, params.warnings)
        if method == "DELETE" and not t.subresource:
            return await self._delete(request, t, namespace, t.name)
        raise errors.method_not_allowed(method)

    def _render_list(
        self, t: Target, listing: dict[str, Any], rendering: tables.Rendering, include_object: str | None
    ) -> dict[str, Any]:
        if rendering.kind == "object":
            return listing
        if rendering.kind == "partial":
            items = [tables.partial(self._view(t, o), rendering) for o in listing["items"]]
            return {
                "kind": "PartialObjectMetadataList",
                "apiVersion": rendering.api_version,
                "metadata": listing["metadata"],
                "items": items,
            }
        printer = tables.Printer(self.registry, t.rtype, t.version, rendering, include_object)
        api_version = t.rtype.api_version(t.version)
        objs = [{**o, "apiVersion": api_version, "kind": t.rtype.kind} for o in listing["items"]]
        return printer.table(objs, listing["metadata"])

    async def _watch(
        self,
        request: web.Request,
        t: Target,
        pred: selectors.Predicate | None,
        rendering: tables.Rendering = tables.OBJECT,
    ) -> web.StreamResponse:
        opts = watch.parse_options(request.query, self.bookmark_interval)
        render: watch.Render | None = None
        if rendering.kind == "table":
            render = tables.Printer(
                self.registry, t.rtype, t.version, rendering, request.query.get("includeObject")
            ).watch_renderer()
        elif rendering.kind == "partial":
            render = lambda obj: tables.partial(obj, rendering)  # noqa: E731
        task = asyncio.current_task()
        assert task is not None
        self.streams.add(task)
        name = selectors.selected_name(request.query.get("fieldSelector"))
        try:
            return await watch.serve(request, self.store, t.rtype, t.version, t.namespace, pred, opts, render, name)
        finally:
            self.streams.discard(task)

    def _params(self, request: web.Request) -> WriteParams:
        q = request.query
        validation = q.get("fieldValidation") or "Strict"
        if validation not in ("Strict", "Warn", "Ignore"):
            raise bad_request(
                f'fieldValidation: Unsupported value: "{validation}": supported values: "Ignore", "Strict", "Warn"'
            )
        dry_run = q.getall("dryRun", [])
        if any(d != "All" for d in dry_run):
            raise bad_request('dryRun: Unsupported value: supported values: "All"')
        manager = q.get("fieldManager", "")
        is_apply = request.headers.get("Content-Type", "").split(";")[0].strip() == "application/apply-patch+yaml"
        if not manager and not is_apply:
            # Like the real server: updates without a manager are recorded under the client's user agent.
            manager = request.headers.get("User-Agent", "unknown").split("/")[0]
        return WriteParams(
            manager=manager,
            field_validation=validation,
            dry_run=bool(dry_run),
            force=q.get("force", "").lower() in ("1", "true"),
            user=request.get(USER_KEY) or "system:anonymous",
        )

    def _view(self, t: Target, obj: dict[str, Any]) -> dict[str, Any]:
        api_version = t.rtype.api_version(t.version)
        return obj if obj.get("apiVersion") == api_version else {**obj, "apiVersion": api_version}

    def _list(self, t: Target, pred: selectors.Predicate | None, q: Any) -> dict[str, Any]:
        rv, after = self.store.rv, None
        token = q.get("continue")
        if token:
            try:
                state = json.loads(base64.urlsafe_b64decode(token.encode()))
                rv, after = int(state["rv"]), tuple(state["after"])
            except (binascii.Error, ValueError, KeyError, TypeError) as exc:
                raise bad_request("continue key is not valid") from exc
        try:
            limit = int(q.get("limit") or 0)
        except ValueError as exc:
            raise bad_request("limit must be an integer") from exc
        objs = self.store.list_objects(t.rtype.key, t.namespace, selectors.selected_name(q.get("fieldSelector")))
        if after is not None:
            objs = [o for o in objs if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > after]
        if pred is not None:
            objs = [o for o in objs if pred(o)]
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if limit > 0 and len(objs) > limit:
            last = objs[limit - 1]["metadata"]
            state = {"rv": rv, "after": [last.get("namespace", ""), last["name"]]}
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
            if pred is None:
                meta["remainingItemCount"] = len(objs) - limit
            objs = objs[:limit]
        api_version = t.rtype.api_version(t.version)
        if t.rtype.builtin:
            items = [{k: v for k, v in o.items() if k not in ("apiVersion", "kind")} for o in objs]
        else:
            items = [self._view(t, o) for o in objs]
        return {"kind": t.rtype.list_kind, "apiVersion": api_version, "metadata": meta, "items": items}

    async def _delete_options(self, request: web.Request) -> tuple[str, dict[str, Any], bool]:
        q = request.query
        raw = await request.read()
        body = decode_json(raw) if raw.strip() else {}
        body = body if isinstance(body, dict) else {}
        policy = q.get("propagationPolicy") or body.get("propagationPolicy") or ""
        orphan = q.get("orphanDependents") or body.get("orphanDependents")
        if not policy and orphan is not None:
            policy = "Orphan" if str(orphan).lower() == "true" else "Background"
        if policy not in ("", "Background", "Foreground", "Orphan"):
            raise bad_request(f'propagationPolicy: Unsupported value: "{policy}"')
        dry_run = "All" in q.getall("dryRun", []) or "All" in (body.get("dryRun") or [])
        return policy, body.get("preconditions") or {}, dry_run

    async def _delete(self, request: web.Request, t: Target, namespace: str, name: str) -> web.Response:
        policy, preconditions, dry_run = await self._delete_options(request)
        obj, removed = self.writer.delete(
            t.rtype, namespace, name, policy=policy, preconditions=preconditions, dry_run=dry_run, admission=True
        )
        if removed and t.rtype.builtin:
            details: dict[str, Any] = {"name": name, "kind": t.rtype.plural, "uid": obj["metadata"].get("uid")}
            if t.rtype.group:
                details["group"] = t.rtype.group
            return respond(
                {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
            )
        return respond(self._view(t, obj))

    async def _delete_collection(self, request: web.Request, t: Target) -> web.Response:
        q = request.query
        if not t.rtype.namespaced or "deletecollection" not in t.rtype.verbs:
            raise errors.method_not_allowed("DELETE")
        pred = selectors.both(
            selectors.label_selector(q.get("labelSelector")), selectors.field_selector(t.rtype, q.get("fieldSelector"))
        )
        policy, _, dry_run = await self._delete_options(request)
        deleted = []
        for obj in self.store.list_objects(t.rtype.key, t.namespace):
            if pred is None or pred(obj):
                md = obj["metadata"]
                gone, _ = self.writer.delete(
                    t.rtype, md.get("namespace", ""), md["name"], policy=policy, dry_run=dry_run, admission=True
                )
                deleted.append(self._view(t, gone))
        return respond(
            {
                "kind": t.rtype.list_kind,
                "apiVersion": t.rtype.api_version(t.version),
                "metadata": {"resourceVersion": str(self.store.rv)},
                "items": deleted,
            }
        )
