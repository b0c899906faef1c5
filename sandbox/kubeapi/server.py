"""``KubeApiServer``: composes store, registry, write path, garbage collector and HTTPS endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from shared.crd_schema import CrdSchemas
from shared.objects import now_timestamp

from . import kubeconfig, tls
from .auth import Authenticator
from .gc import GarbageCollector
from .handlers import Api
from .paths import installed_crds
from .registry import CRD_GROUP, Registry
from .store import Event, Store
from .writes import Writer

log = structlog.get_logger(__name__)
_CRD_KEY = (CRD_GROUP, "customresourcedefinitions")
_SECRET_KEY = ("", "secrets")
_STATE_FILE = "kubeapi-state.json"
_SEED_NAMESPACES = ("default", "kube-system", "kube-public")
_MAX_BODY = 3 * 1024 * 1024 + 512 * 1024


class KubeApiServer:
    """A Kubernetes API emulator over HTTPS; objects survive ``stop()``/``start()``, watches do not."""

    def __init__(
        self,
        *,
        crd_dirs: Sequence[Path] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        history_size: int = 1000,
        state_dir: Path | None = None,
        bookmark_interval: float = 60.0,
        install_capi: bool = True,
    ) -> None:
        # The carried CAPI/BYOH CRDs are installed like on a management cluster; ``crd_dirs`` add more.
        self._crd_dirs = tuple(Path(d) for d in crd_dirs)
        self._install_capi = install_capi
        self.host = host
        self._port = port
        self._state_dir = Path(state_dir) if state_dir is not None else None
        self._bookmark_interval = bookmark_interval
        self.admin_token = secrets.token_urlsafe(32)
        self.store = Store(history_size)
        self._material: tls.ServingMaterial | None = None
        self._registry: Registry | None = None
        self._writer: Writer | None = None
        self._gc: GarbageCollector | None = None
        self._auth: Authenticator | None = None
        self._runner: web.AppRunner | None = None
        self._gc_task: asyncio.Task[None] | None = None
        self._api: Api | None = None

    # public surface

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self._port}"

    @property
    def ca_pem(self) -> bytes:
        if self._material is None:
            raise RuntimeError("the server has not been started yet")
        return self._material.ca_pem

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            raise RuntimeError("the server has not been started yet")
        return self._registry

    def kubeconfig_dict(self, *, user: str = "admin", token: str | None = None) -> dict[str, Any]:
        return kubeconfig.build(self.url, self.ca_pem, token or self.admin_token, user=user)

    def write_kubeconfig(self, path: Path, *, user: str = "admin", token: str | None = None) -> Path:
        return kubeconfig.write(Path(path), self.kubeconfig_dict(user=user, token=token))

    def compact_history(self) -> None:
        """Forget kept watch history: watches from any older resourceVersion now get 410 Expired."""
        self.store.compact()

    async def start(self) -> None:
        if self._runner is not None:
            return
        if self._registry is None:
            await self._initialize()
        assert self._material is not None and self._registry is not None and self._writer is not None
        assert self._auth is not None and self._gc is not None
        ssl_context = await asyncio.to_thread(tls.server_context, self._material)
        api = Api(self.store, self._registry, self._writer, self._auth, bookmark_interval=self._bookmark_interval)
        self._api = api
        app = web.Application(middlewares=[api.middleware], client_max_size=_MAX_BODY)
        app.router.add_route("*", "/{tail:.*}", api.handle)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._port, ssl_context=ssl_context, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            self._port = int(server.sockets[0].getsockname()[1])
        self._runner = runner
        self.store.accepting_watches = True
        self._gc_task = asyncio.create_task(self._gc.run(), name="kubeapi-gc")
        log.info("kubeapi_started", url=self.url, resources=sum(1 for _ in self._registry.types()))

    async def stop(self) -> None:
        if self._runner is None:
            return
        runner, self._runner = self._runner, None
        try:
            self.store.close_watchers()
            if self._api is not None:
                await self._api.end_streams(timeout=2.0)
            # Requests in flight finish (or are cancelled before they commit) here; only then is every
            # acknowledged write in the store, and only then can the collector's queue be complete.
            await runner.cleanup()
            if self._gc_task is not None:
                self._gc_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._gc_task
                self._gc_task = None
            if self._gc is not None:
                self._gc.drain()
        finally:
            # Whatever failed above, what the store holds (every write acknowledged so far) is kept.
            if self._state_dir is not None:
                await asyncio.to_thread(self._save_state)
        log.info("kubeapi_stopped", url=self.url)

    async def __aenter__(self) -> KubeApiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # setup

    async def _initialize(self) -> None:
        schemas, saved = await asyncio.to_thread(self._load)
        registry = Registry(schemas)
        if saved is None:
            self._material = await asyncio.to_thread(tls.generate)
            self._seed(schemas)
        else:
            self._restore(saved)
            registry.set_schemas(CrdSchemas.from_crd_objects(self.store.list_objects(_CRD_KEY)))
        self._registry = registry
        self._auth = Authenticator(self.admin_token)
        self._writer = Writer(self.store, registry)
        self._gc = GarbageCollector(self.store, registry, self._writer)
        self._gc.resync()
        self.store.hooks.append(self._observe)
        for secret in self.store.list_objects(_SECRET_KEY):
            self._auth.observe_secret(secret["metadata"]["name"], secret, secret["metadata"].get("namespace", ""))

    def _load(self) -> tuple[CrdSchemas, dict[str, Any] | None]:
        schemas = installed_crds(self._crd_dirs, carried=self._install_capi)
        saved = None
        if self._state_dir is not None and (self._state_dir / _STATE_FILE).is_file():
            saved = json.loads((self._state_dir / _STATE_FILE).read_text(encoding="utf-8"))
        return schemas, saved

    def _seed(self, schemas: CrdSchemas) -> None:
        now = now_timestamp()

        def meta(name: str) -> dict[str, Any]:
            return {"name": name, "uid": secrets.token_hex(16), "creationTimestamp": now}

        for name in _SEED_NAMESPACES:
            self.store.commit(
                "ADDED",
                ("", "namespaces"),
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": meta(name),
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                },
                None,
            )
        for crd in schemas.crds():
            spec = crd["spec"]
            md = {**meta(crd["metadata"]["name"]), "generation": 1}
            for key in ("labels", "annotations"):
                if crd["metadata"].get(key):
                    md[key] = crd["metadata"][key]
            status = {
                "acceptedNames": spec["names"],
                "storedVersions": [v["name"] for v in spec["versions"] if v.get("storage")],
                "conditions": [
                    {
                        "type": "Established",
                        "status": "True",
                        "reason": "InitialNamesAccepted",
                        "lastTransitionTime": now,
                        "message": "the initial names have been accepted",
                    }
                ],
            }
            self.store.commit("ADDED", _CRD_KEY, {**crd, "metadata": md, "status": status}, None)

    def _observe(self, event: Event) -> None:
        if event.key == _SECRET_KEY and self._auth is not None:
            self._auth.observe_secret(
                event.obj["metadata"]["name"], None if event.type == "DELETED" else event.obj, event.namespace
            )
        elif event.key == _CRD_KEY and self._registry is not None:
            self._registry.set_schemas(CrdSchemas.from_crd_objects(self.store.list_objects(_CRD_KEY)))
            if event.type == "DELETED":
                spec = event.obj.get("spec") or {}
                key = (str(spec.get("group")), str((spec.get("names") or {}).get("plural")))
                for obj in self.store.list_objects(key):
                    self.store.commit("DELETED", key, obj, obj)

    # optional persistence (state_dir): objects, counter, credentials; history is not kept

    def _save_state(self) -> None:
        assert self._state_dir is not None and self._material is not None
        self._state_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "rv": self.store.rv,
            "admin_token": self.admin_token,
            "port": self._port,
            "tls": {k: getattr(self._material, k).decode() for k in ("ca_pem", "cert_pem", "key_pem")},
            "objects": [{"group": k[0], "plural": k[1], "object": o} for k, o in self.store.iter_all()],
        }
        path = self._state_dir / _STATE_FILE
        fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(path.with_suffix(".tmp"), path)
        # The rename itself must reach the disk too, or a crash could bring back the previous state.
        dir_fd = os.open(self._state_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _restore(self, saved: dict[str, Any]) -> None:
        self.admin_token = str(saved["admin_token"])
        self._material = tls.ServingMaterial(**{k: v.encode() for k, v in saved["tls"].items()})
        if not self._port:
            self._port = int(saved.get("port") or 0)
        newest = 0
        for item in saved["objects"]:
            self.store.restore((item["group"], item["plural"]), item["object"])
            newest = max(newest, int(item["object"]["metadata"].get("resourceVersion") or 0))
        # Never hand out a resourceVersion again: clients compare them, and watch from the last one they saw.
        self.store.rv = max(int(saved["rv"]), newest)
        self.store.compact()
