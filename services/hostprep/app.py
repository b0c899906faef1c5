"""Composition root of hostprep: settings → SSH connector, management-cluster clients, the jobs consumer.

ByoHost readiness comes from hostprep's own ByoHost watch (``byohosts.py``), not from
status_watcher's events: a job finishes without depending on another service being up.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib

import structlog

from services.hostprep import handlers
from services.hostprep.bootstrap import BootstrapKubeconfigs
from services.hostprep.byohosts import ByoHostIndex
from services.hostprep.claims import HostClaims
from services.hostprep.credentials import CredentialStore
from services.hostprep.deps import Deps
from services.hostprep.settings import HostprepSettings
from services.hostprep.ssh import SshConnector
from services.hostprep.steps import AgentSource
from shared.errors import PermanentError
from shared.kube import KubeClient
from shared.runtime import ServiceRuntime, run_service
from shared.subjects import BUCKET_HOSTPREP_CLAIMS, HOSTPREP_JOBS_CONSUMER

log = structlog.get_logger(__name__)


async def _agent(settings: HostprepSettings) -> tuple[AgentSource, bytes | None]:
    """The agent source; a local file must match ``agent_binary_sha256`` when both are configured."""
    if settings.agent_binary_file is not None:
        path = settings.agent_binary_file
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            raise PermanentError(f"agent_binary_file {path}: {exc.strerror}", reason="InvalidSettings") from None
        digest = hashlib.sha256(data).hexdigest()
        if settings.agent_binary_sha256 is not None and digest != settings.agent_binary_sha256:
            raise PermanentError(
                f"agent_binary_file {path} has sha256 {digest}, not the configured agent_binary_sha256",
                reason="InvalidSettings",
            )
        return AgentSource(sha256=digest, pushed=True), data
    return AgentSource(url=settings.agent_binary_url, sha256=settings.agent_binary_sha256), None


async def build_deps(settings: HostprepSettings) -> tuple[Deps, KubeClient | None]:
    """Everything the job handler needs; the kube client (if any) is returned for closing."""
    agent, binary = await _agent(settings)
    deps = Deps(
        settings=settings,
        connector=SshConnector(connect_timeout=settings.connect_timeout),
        slots=asyncio.Semaphore(settings.max_parallel_hosts),
        store=CredentialStore(settings),
        agent=agent,
        agent_binary=binary,
    )
    if settings.kubeconfig is None:
        log.warning("no_management_cluster", hint="set O2_HOSTPREP_KUBECONFIG; prepare jobs will fail")
        return deps, None
    client = await KubeClient.from_kubeconfig(settings.kubeconfig)
    if settings.management_ca_file is not None:
        pem = await asyncio.to_thread(settings.management_ca_file.read_bytes)
        ca = base64.b64encode(pem).decode()
    else:
        ca = await client.ca_data() or ""
    deps.bootstrap = BootstrapKubeconfigs(
        client,
        api_url=settings.management_api_url or client.server,
        ca_data=ca,
        wait_timeout=settings.bootstrap_kubeconfig_timeout,
        max_age=settings.bootstrap_token_max_age,
    )
    deps.byohosts = ByoHostIndex(client)
    return deps, client


async def setup(runtime: ServiceRuntime[HostprepSettings]) -> None:
    settings = runtime.settings
    deps, client = await build_deps(settings)

    async def close() -> None:
        if deps.byohosts is not None:
            await deps.byohosts.close()
        if deps.bootstrap is not None:
            await deps.bootstrap.close()
        if client is not None:
            await client.close()

    runtime.on_close(close)
    jobs = dataclasses.replace(HOSTPREP_JOBS_CONSUMER, ack_wait=settings.jobs_ack_wait)
    claims = HostClaims(await runtime.bus.kv(BUCKET_HOSTPREP_CLAIMS))
    runtime.consume(jobs, handlers.JobHandler(deps, claims, max_deliver=jobs.max_deliver).on_job)


def main() -> int:
    # uvloop's event loop: hostprep's CPU goes mostly to SSH packets, each a few loop callbacks, and the loop's
    # own machinery was a fifth of it in asyncio's pure-Python implementation (the same loop API either way).
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return run_service("hostprep", HostprepSettings, setup)
