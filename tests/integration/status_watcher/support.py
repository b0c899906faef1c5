"""Harness for the status_watcher integration tests: the watcher in-process, a cuttable proxy, a stream reader."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from nats.js import api as js_api

from services.status_watcher.pipeline import StatusPipeline, StatusWatcher
from services.status_watcher.watch import Backoff
from shared.bus import Bus
from shared.kube import KubeClient
from shared.messages import Envelope, decode
from shared.payloads import ClusterSummary
from shared.subjects import ALL_K8S_STATUS, K8S


class Proxy:
    """A TCP relay in front of the API emulator whose connections the test can cut, and refuse while paused."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.paused = False
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.paused:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        tasks = [asyncio.create_task(pipe(reader, up_writer)), asyncio.create_task(pipe(up_reader, writer))]
        self._conns.update(tasks)
        await asyncio.gather(*tasks, return_exceptions=True)
        self._conns.difference_update(tasks)
        self._writers -= {writer, up_writer}

    def cut(self, *, pause: bool = True) -> None:
        """Break every open connection mid-stream; with ``pause`` refuse new ones until ``resume()``."""
        self.paused = pause
        for w in list(self._writers):
            w.transport.abort()

    def resume(self) -> None:
        self.paused = False

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._conns):
            task.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)


def kubeconfig_via(path: Path, port: int, out: Path) -> Path:
    config = yaml.safe_load(path.read_text())
    for entry in config["clusters"]:
        server = entry["cluster"]["server"]
        entry["cluster"]["server"] = server.rsplit(":", 1)[0] + f":{port}"
    out.write_text(yaml.safe_dump(config))
    return out


class StreamReader:
    """Everything stored in the K8S stream (after JetStream de-duplication), in order."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.items: list[tuple[str, Envelope]] = []
        self._changed = asyncio.Event()
        self._sub: Any = None

    async def start(self) -> StreamReader:
        async def on_msg(msg: Any) -> None:
            self.items.append((msg.subject, decode(msg.data)))
            self._changed.set()

        self._sub = await self.bus.js.subscribe(
            ALL_K8S_STATUS, stream=K8S.name, cb=on_msg, ordered_consumer=True, deliver_policy=js_api.DeliverPolicy.ALL
        )
        return self

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    def on(self, subject: str) -> list[Envelope]:
        return [env for s, env in self.items if s == subject]

    async def wait_for(self, predicate: Callable[[list[tuple[str, Envelope]]], Any], timeout: float = 60.0) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                found = predicate(self.items)
                if found:
                    return found
                self._changed.clear()
                await self._changed.wait()

    async def wait_summary(self, subject: str, predicate: Callable[[Any], bool], timeout: float = 60.0) -> Any:
        def check(_items: list[tuple[str, Envelope]]) -> Any:
            for env in reversed(self.on(subject)):
                if env.type in ("k8s.cluster.status", "k8s.byohost.status"):
                    return env.payload if predicate(env.payload) else None
            return None

        return await self.wait_for(check, timeout)


def summaries(envs: list[Envelope]) -> list[ClusterSummary]:
    return [e.payload for e in envs if isinstance(e.payload, ClusterSummary)]


class RunningWatcher:
    """One watcher instance (as the service runs it) on a kubeconfig and a bus."""

    def __init__(self, kubeconfig: Path, bus: Bus, **pipeline: Any) -> None:
        self.kubeconfig = kubeconfig
        self.bus = bus
        self.options = pipeline
        self.client: KubeClient | None = None
        self.watcher: StatusWatcher | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self, *, wait: bool = True) -> RunningWatcher:
        self.client = await KubeClient.from_kubeconfig(self.kubeconfig)
        pipeline = StatusPipeline(
            self.bus, source="status_watcher", backoff=Backoff(initial=0.05, maximum=0.5), **self.options
        )
        self.watcher = StatusWatcher(self.client, pipeline, backoff=(0.05, 0.5), watch_timeout=30)
        self.task = asyncio.create_task(self.watcher.run())
        if wait:
            await self.started()
        return self

    async def started(self, timeout: float = 30.0) -> None:
        assert self.watcher is not None and self.task is not None
        waiter = asyncio.create_task(self.watcher.pipeline.started.wait())
        await asyncio.wait({waiter, self.task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if self.task.done():
            self.task.result()
        assert waiter.done(), "the watcher did not publish its initial state in time"
        assert self.watcher.readiness()[0]

    @property
    def pipeline(self) -> StatusPipeline:
        assert self.watcher is not None
        return self.watcher.pipeline

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self.task, 10)
        if self.client is not None:
            await self.client.close()
