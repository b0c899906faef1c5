"""The one adapter over the official asyncio Kubernetes client (``kubernetes.aio``).

Every service and the sandbox reach Kubernetes only through :class:`KubeClient`:
objects go in and come out as plain dicts, ``(apiVersion, kind)`` is resolved
to a REST path by discovery (cached per client), every request carries a
timeout, and every failure is raised already classified onto ``shared.errors``
(see ``shared.kube_errors``; watch streams are read in ``shared.kube_watch``).
The bearer token lives only inside the client configuration; it is never logged
nor put into an error.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import json
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Literal, Self

import aiohttp
import structlog
import yaml
from kubernetes.aio.client import ApiClient, Configuration
from kubernetes.aio.config.kube_config import KubeConfigLoader

from shared import kube_watch
from shared.errors import PermanentError, ServiceError, classify
from shared.kube_discovery import ApiResource, parse_resource_list
from shared.kube_errors import api_error, classify_kube, parse_status
from shared.kube_watch import WatchEvent, WatchExpired, expect_metadata

__all__ = ["ApiResource", "KubeClient", "WatchEvent", "WatchExpired", "classify_kube"]

log = structlog.get_logger(__name__)

#: The ``kubernetes`` package ships untyped callables; these aliases keep mypy --strict quiet at one place.
_Loader: Any = KubeConfigLoader


Query = list[tuple[str, str]]
Obj = dict[str, Any]

_PATCH_TYPES = {"merge": "application/merge-patch+json", "json": "application/json-patch+json"}
_APPLY = "application/apply-patch+yaml"
#: Metadata-only reads (no fallback to full objects: a server that cannot comply answers 406).
_METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
_METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


def _env_proxy(server: str) -> str | None:
    """The proxy the environment names for ``server`` (``HTTPS_PROXY`` …, honouring ``NO_PROXY``), if any."""
    url = urllib.parse.urlsplit(server)
    proxy = urllib.request.getproxies().get(url.scheme)
    if not proxy or not url.hostname or urllib.request.proxy_bypass(url.hostname):
        return None
    return proxy


def _load_config(config: Mapping[str, Any], context: str | None, base_path: str | None) -> ApiClient:
    """Build an ApiClient from a kubeconfig dict; blocking (temp CA files, TLS context), so run in a thread."""
    cfg = Configuration()
    loader = _Loader(config_dict=dict(config), active_context=context, config_base_path=base_path)
    # load_and_set is a coroutine only because of exec/OIDC plugins; it gets its own loop in this thread.
    asyncio.run(loader.load_and_set(cfg))
    # The client's aiohttp session would look up the environment's proxy and ~/.netrc on every request,
    # each in a worker thread; the proxy is looked up once here instead (a kubeconfig's proxy-url wins),
    # and credentials only ever come from the kubeconfig.
    if not cfg.proxy:
        cfg.proxy = _env_proxy(str(cfg.host))
    cfg.client_session_kwargs = {"trust_env": False}
    return ApiClient(configuration=cfg)


def _identity(obj: Mapping[str, Any]) -> tuple[str, str, str, str | None]:
    try:
        meta = obj["metadata"]
        return str(obj["apiVersion"]), str(obj["kind"]), str(meta["name"]), meta.get("namespace")
    except (KeyError, TypeError) as exc:
        raise PermanentError(f"object lacks apiVersion, kind or metadata.name: {exc}", reason="InvalidObject") from None


class KubeClient:
    """Async CRUD, server-side apply and watch over one cluster, objects as dicts."""

    def __init__(self, api: ApiClient, *, timeout: float = 15.0) -> None:
        self._api: Any = api
        self._timeout = timeout
        self._discovery: dict[str, dict[str, ApiResource]] = {}
        self._discovery_lock = asyncio.Lock()

    # -- construction -------------------------------------------------------------------------

    @classmethod
    async def from_kubeconfig(cls, path: str | Path, *, context: str | None = None, timeout: float = 15.0) -> Self:
        file = Path(path)

        def load() -> ApiClient:
            try:
                data = yaml.safe_load(file.read_text())
            except (OSError, yaml.YAMLError) as exc:
                message = f"cannot read kubeconfig {file}: {type(exc).__name__}"
                # Not chained: a YAML error quotes the text around it, and that text is a credential.
                raise PermanentError(message, reason="InvalidKubeconfig") from None
            if not isinstance(data, dict):
                raise PermanentError(f"kubeconfig {file} is not a mapping", reason="InvalidKubeconfig")
            return _load_config(data, context, str(file.resolve().parent))

        try:
            api = await asyncio.to_thread(load)
        except ServiceError:
            raise
        except Exception as exc:
            raise classify(exc) from exc
        return cls(api, timeout=timeout)

    @classmethod
    async def from_kubeconfig_dict(
        cls, config: Mapping[str, Any], *, context: str | None = None, timeout: float = 15.0
    ) -> Self:
        try:
            api = await asyncio.to_thread(_load_config, config, context, None)
        except Exception as exc:
            raise classify(exc) from exc
        return cls(api, timeout=timeout)

    async def close(self) -> None:
        await self._api.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def server(self) -> str:
        """The API server URL (no credentials)."""
        return str(self._api.configuration.host)

    async def ca_data(self) -> str | None:
        """The server CA bundle as base64 PEM (what a kubeconfig's certificate-authority-data holds)."""
        cfg = self._api.configuration
        if cfg.ca_cert_data:
            raw = cfg.ca_cert_data if isinstance(cfg.ca_cert_data, bytes) else str(cfg.ca_cert_data).encode()
            return base64.b64encode(raw).decode()
        if cfg.ssl_ca_cert:
            pem = await asyncio.to_thread(Path(cfg.ssl_ca_cert).read_bytes)
            return base64.b64encode(pem).decode()
        return None

    # -- transport ----------------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | aiohttp.ClientTimeout | None = None,
        accept: str = "application/json",
    ) -> Any:
        """One request; returns the raw ``RESTResponse`` (raises classified errors)."""
        headers = {"Accept": accept, "Content-Type": content_type}
        request = await self._api.param_serialize(
            method, path, query_params=query or [], header_params=headers, body=body, auth_settings=["BearerToken"]
        )
        return await self._api.call_api(*request, _request_timeout=timeout or self._timeout)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: Any = None,
        content_type: str = "application/json",
        not_found_ok: bool = False,
        accept: str = "application/json",
    ) -> dict[str, Any] | None:
        try:
            resp = await self._send(method, path, query=query, body=body, content_type=content_type, accept=accept)
            raw = await resp.read()
        except ServiceError:
            raise
        except Exception as exc:
            raise classify(exc) from exc
        if not 200 <= resp.status <= 299:
            if resp.status == 404 and not_found_ok:
                return None
            status = parse_status(raw)
            raise api_error(resp.status, status, headers=resp.headers, fallback=str(resp.reason or ""))
        data = json.loads(raw) if raw else {}
        return data if isinstance(data, dict) else {"items": data}

    async def _must(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        result = await self._call(method, path, **kwargs)
        assert result is not None
        return result

    # -- discovery ----------------------------------------------------------------------------

    async def _fetch_group_version(self, api_version: str) -> dict[str, ApiResource]:
        path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        data = await self._call("GET", path, not_found_ok=True)
        return parse_resource_list(api_version, data or {})

    async def resource(self, api_version: str, kind: str) -> ApiResource:
        """Resolve a kind by discovery: cached, refreshed once when the kind is missing."""
        cached = self._discovery.get(api_version)
        if cached is not None and kind in cached:
            return cached[kind]
        async with self._discovery_lock:
            cached = self._discovery.get(api_version)
            if cached is None or kind not in cached:
                cached = await self._fetch_group_version(api_version)
                self._discovery[api_version] = cached
                log.debug("kube_discovery", api_version=api_version, kinds=len(cached))
        if kind not in cached:
            raise PermanentError(f"the server does not serve {kind} in {api_version}", reason="UnknownKind")
        return cached[kind]

    # -- reads --------------------------------------------------------------------------------

    async def server_version(self) -> dict[str, Any]:
        return await self._must("GET", "/version")

    async def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        res = await self.resource(api_version, kind)
        return await self._call("GET", res.path(self._ns(res, namespace), name), not_found_ok=True)

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        metadata_only: bool = False,
    ) -> tuple[builtins.list[Obj], str]:
        """Every object (every page); with ``metadata_only`` the server sends ``PartialObjectMetadata``
        (names, labels, versions: never a Secret's data), and anything else is refused."""
        res = await self.resource(api_version, kind)
        query: Query = []
        if label_selector:
            query.append(("labelSelector", label_selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        items: builtins.list[Obj] = []
        accept = _METADATA_LIST if metadata_only else "application/json"
        while True:
            data = await self._must("GET", res.path(namespace), query=query, accept=accept)
            if metadata_only:
                expect_metadata(data, "PartialObjectMetadataList")
            for item in data.get("items") or []:
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", kind)
                items.append(item)
            meta = data.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                return items, str(meta.get("resourceVersion", ""))
            query = [q for q in query if q[0] != "continue"] + [("continue", str(token))]

    async def list_crds(self) -> builtins.list[Obj]:
        items, _ = await self.list("apiextensions.k8s.io/v1", "CustomResourceDefinition")
        return items

    # -- writes -------------------------------------------------------------------------------

    @staticmethod
    def _ns(res: ApiResource, namespace: str | None) -> str | None:
        return (namespace or "default") if res.namespaced else None

    async def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not api_version or not kind:
            raise PermanentError("object lacks apiVersion or kind", reason="InvalidObject")
        namespace = (obj.get("metadata") or {}).get("namespace")
        res = await self.resource(str(api_version), str(kind))
        return await self._must("POST", res.path(self._ns(res, namespace)), body=dict(obj))

    async def apply(
        self, obj: Mapping[str, Any], *, field_manager: str = "focom-o2ims", force: bool = True
    ) -> dict[str, Any]:
        return await self._apply(obj, field_manager=field_manager, force=force, subresource=None)

    async def apply_status(self, obj: Mapping[str, Any], *, field_manager: str, force: bool = True) -> dict[str, Any]:
        return await self._apply(obj, field_manager=field_manager, force=force, subresource="status")

    async def _apply(
        self, obj: Mapping[str, Any], *, field_manager: str, force: bool, subresource: str | None
    ) -> dict[str, Any]:
        api_version, kind, name, namespace = _identity(obj)
        res = await self.resource(api_version, kind)
        query = [("fieldManager", field_manager), ("force", "true" if force else "false")]
        path = res.path(self._ns(res, namespace), name, subresource)
        return await self._must("PATCH", path, query=query, body=dict(obj), content_type=_APPLY)

    async def replace(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        api_version, kind, name, namespace = _identity(obj)
        res = await self.resource(api_version, kind)
        return await self._must("PUT", res.path(self._ns(res, namespace), name), body=dict(obj))

    async def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        patch: Mapping[str, Any] | builtins.list[Any],
        *,
        patch_type: Literal["merge", "json"] = "merge",
        subresource: str | None = None,
    ) -> dict[str, Any]:
        res = await self.resource(api_version, kind)
        body: Any = builtins.list(patch) if isinstance(patch, builtins.list) else dict(patch)
        path = res.path(self._ns(res, namespace), name, subresource)
        return await self._must("PATCH", path, body=body, content_type=_PATCH_TYPES[patch_type])

    async def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str = "Background",
        preconditions: Mapping[str, str] | None = None,
    ) -> bool:
        """Delete; False when already gone. ``preconditions`` (``uid``, ``resourceVersion``): the server
        refuses with 409 Conflict when the object is no longer the one that was read."""
        res = await self.resource(api_version, kind)
        options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        if preconditions:
            options["preconditions"] = dict(preconditions)
        path = res.path(self._ns(res, namespace), name)
        result = await self._call(
            "DELETE", path, query=[("propagationPolicy", propagation)], body=options, not_found_ok=True
        )
        return result is not None

    # -- watch --------------------------------------------------------------------------------

    async def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        resource_version: str,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int = 300,
        bookmarks: bool = True,
        metadata_only: bool = False,
    ) -> AsyncIterator[WatchEvent]:
        """Events after ``resource_version`` until the server ends the stream.

        Raises :class:`WatchExpired` when the server reports 410 (resume by re-listing). With
        ``metadata_only`` every event carries ``PartialObjectMetadata`` (anything else is refused).
        """
        res = await self.resource(api_version, kind)
        query: Query = [
            ("watch", "true"),
            ("resourceVersion", resource_version),
            ("timeoutSeconds", str(timeout_seconds)),
        ]
        if bookmarks:
            query.append(("allowWatchBookmarks", "true"))
        if label_selector:
            query.append(("labelSelector", label_selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        total = timeout_seconds + kube_watch.WATCH_GRACE
        request_timeout = aiohttp.ClientTimeout(total=total, sock_connect=self._timeout)
        accept = _METADATA if metadata_only else "application/json"
        path = res.path(namespace)

        async def open_stream(**_: Any) -> Any:
            resp = await self._send("GET", path, query=query, timeout=request_timeout, accept=accept)
            if not 200 <= resp.status <= 299:
                raw = await resp.read()
                raise api_error(resp.status, parse_status(raw), headers=resp.headers, fallback=str(resp.reason or ""))
            return resp.response

        async for event in kube_watch.events(open_stream, timeout_seconds=timeout_seconds, metadata_only=metadata_only):
            yield event
