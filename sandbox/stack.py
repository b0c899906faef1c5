"""The whole sandbox O-Cloud in one call: NATS, the Kubernetes API emulator, the simulated CAPI/BYOH
controllers and N SSH hosts, started in the caller's event loop and torn down leaving nothing behind.

``async with Sandbox(state_dir, hosts=N) as sb:`` gives ``sb.nats_url``, ``sb.kubeconfig``, the host
pool (``sb.hosts``: keys, known_hosts, inventory entries, faults) and the emulator (``sb.kubeapi``).
The services are not part of it: run them against it (``o2ctl up --sandbox`` does both).
NATS requires a login, as in production: each role (``shared.natsroles``) has a password in
``<state_dir>/nats-credentials.json`` (0600); ``sb.service_env(role)`` and ``sb.client_options(role)``
give a service or a client its identity.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import TracebackType
from typing import Any

from sandbox.capi import CapiSimulators, SimOptions
from sandbox.hosts import SandboxHostPool
from sandbox.kubeapi import KubeApiServer
from shared import natsauth
from shared.kube import KubeClient
from shared.natsserver import EmbeddedNats


class Sandbox:
    def __init__(
        self,
        state_dir: Path,
        *,
        hosts: int = 9,
        crd_dirs: list[Path] | None = None,
        sim_options: SimOptions | None = None,
        password: str | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.nats_passwords = natsauth.ensure_credentials(state_dir / natsauth.CREDENTIALS_FILE)
        self.nats = EmbeddedNats(
            state_dir / "nats", log_file=state_dir / "nats.log", users=natsauth.users_for(self.nats_passwords)
        )
        self.kubeapi = KubeApiServer(crd_dirs=crd_dirs or [])
        self.hosts = SandboxHostPool(state_dir / "hosts", count=hosts, password=password)
        self.sim_options = sim_options
        self.kubeconfig = state_dir / "kubeconfig"
        self._client: KubeClient | None = None
        self.simulators: CapiSimulators | None = None

    @property
    def nats_url(self) -> str:
        return self.nats.url

    def service_env(self, role: str) -> dict[str, str]:
        """``O2_NATS_*`` variables that make a service connect as ``role``."""
        return {"O2_NATS_URL": self.nats_url, **natsauth.service_env(role, self.nats_passwords)}

    def client_options(self, role: str) -> dict[str, Any]:
        """``nats.connect`` keyword arguments for a client connecting as ``role``."""
        return natsauth.client_options(role, self.nats_passwords)

    async def start(self) -> Sandbox:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            await self.nats.start()
            await self.kubeapi.start()
            self.kubeapi.write_kubeconfig(self.kubeconfig)
            self._client = await KubeClient.from_kubeconfig(self.kubeconfig)
            self.simulators = CapiSimulators(self._client, self.sim_options)
            await self.simulators.start()
            await self.hosts.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def stop(self) -> None:
        """Stop in reverse order; every part tolerates having never started."""
        with contextlib.suppress(Exception):
            await self.hosts.stop()
        if self.simulators is not None:
            with contextlib.suppress(Exception):
                await self.simulators.stop()
        if self._client is not None:
            await self._client.close()
            self._client = None
        with contextlib.suppress(Exception):
            await self.kubeapi.stop()
        await self.nats.close()

    async def __aenter__(self) -> Sandbox:
        return await self.start()

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
