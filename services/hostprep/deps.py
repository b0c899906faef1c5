"""What running a host's recipe needs from the app: the shared dependencies (settings, SSH connector,
credential store, management-cluster clients, the agent binary) and a host's share of the SSH
concurrency bound.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from services.hostprep.bootstrap import BootstrapKubeconfigs
from services.hostprep.byohosts import ByoHostIndex
from services.hostprep.credentials import CredentialStore
from services.hostprep.settings import HostprepSettings
from services.hostprep.ssh import SshConnector
from services.hostprep.steps import AgentSource


@dataclass
class Deps:
    """What running a recipe needs besides the host: built once by the app, shared by all jobs."""

    settings: HostprepSettings
    connector: SshConnector
    slots: asyncio.Semaphore
    #: Where hosts' addresses, logins and keys come from (hostprep's own inventory, never the job).
    store: CredentialStore
    bootstrap: BootstrapKubeconfigs | None = None
    byohosts: ByoHostIndex | None = None
    agent_binary: bytes | None = None
    agent: AgentSource = field(default_factory=AgentSource)


class Slot:
    """The host's share of the SSH concurrency bound; released once, early or at the end."""

    def __init__(self, sem: asyncio.Semaphore) -> None:
        self._sem = sem
        self._held = False

    async def acquire(self) -> None:
        await self._sem.acquire()
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._sem.release()
