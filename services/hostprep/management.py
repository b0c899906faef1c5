"""The management-cluster side of one host's recipe: its ByoHost and its BootstrapKubeconfig.

The checks and actions of the steps that talk only to Kubernetes (``ByoHostRegistered``,
``ByoHostRemoved``, ``StaleByoHostRemoved``) and the gate every job passes first. A ByoHost counts
as this host's when it carries the host-id label; it is registered *at a version* when its agent's
``o2ims.oran.org/k8s-version`` label says so (labels are set only at registration). hostprep
deletes only ByoHosts of the host id that are unclaimed, each with uid and resourceVersion
preconditions, so a ByoHost claimed between the read and the delete is never removed; a claimed
one fails the step (``ByoHostClaimed``): it is, or is becoming, a live node. Every wait is bounded
by the host's deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, assert_never

from services.hostprep import domain
from services.hostprep.bootstrap import BootstrapKubeconfigs
from services.hostprep.byohosts import ByoHostIndex
from services.hostprep.deps import Deps
from services.hostprep.steps import RecipeParams
from shared.errors import PermanentError, TemporaryError
from shared.kinds import HostprepAction

Obj = dict[str, Any]
#: The gate's step, before any command runs on the host: what its ByoHosts say the job may do.
GATE = "byohost-version"
#: What a job does with a host, from its ByoHosts (the gate, before any command runs on the host):
#: ``done`` (an upgrade of a host registered at the target already), ``claimed`` (refused: a live node),
#: ``go``.
Verdict = Literal["done", "claimed", "go"]


def gate_verdict(live: Sequence[Obj], target: str, action: HostprepAction) -> tuple[Verdict, str]:
    """What ``action`` at ``target`` does with a host whose live ByoHosts are ``live``, and why.

    A claimed ByoHost is a live node: a teardown never resets one, an upgrade or a prepare never changes
    one at another version than the job's (a prepare of a node at the job's version only checks)."""
    at_target = [o for o in live if domain.byohost_version(o) == target]
    claimed = [o for o in live if domain.byohost_claimed(o)]
    match action:
        case "upgrade":
            if at_target:
                return "done", f"{domain.byohost_state(at_target[0]).describe()}: nothing to upgrade"
            refused = claimed
        case "prepare":
            refused = [o for o in claimed if o not in at_target]
        case "teardown":
            refused = claimed
        case _:
            assert_never(action)
    if refused:
        return "claimed", (
            f"{domain.byohost_state(refused[0]).describe()}: a claimed host is a live node; nothing is changed "
            "on it until its Machine is gone and the ByoHost released"
        )
    if not live:
        return "go", f"no ByoHost registered for the host; {action} at {target}"
    return "go", f"{domain.byohost_state(live[0]).describe()}; {action} at {target}"


class ManagementSide:
    """One host's ByoHost and BootstrapKubeconfig, for the runner's Kubernetes-only steps."""

    def __init__(self, deps: Deps, params: RecipeParams, deadline: float) -> None:
        self.deps = deps
        self.params = params
        self.host_id = params.host.host_id
        #: ``time.monotonic()`` by which the host must be finished.
        self.deadline = deadline

    @property
    def bootstrap(self) -> BootstrapKubeconfigs:
        if self.deps.bootstrap is None:
            raise PermanentError(
                "no management cluster configured (O2_HOSTPREP_KUBECONFIG)", reason="NoManagementCluster"
            )
        return self.deps.bootstrap

    @property
    def byohosts(self) -> ByoHostIndex:
        if self.deps.byohosts is None:
            raise PermanentError(
                "no management cluster configured (O2_HOSTPREP_KUBECONFIG)", reason="NoManagementCluster"
            )
        return self.deps.byohosts

    def _left(self, cap: float) -> float:
        return min(cap, max(0.0, self.deadline - time.monotonic()))

    def _at_target(self, obj: Obj) -> bool:
        return domain.byohost_version(obj) == self.params.version

    def _stale(self, obj: Obj) -> bool:
        return not self._at_target(obj)

    async def live(self) -> list[Obj]:
        """The host's ByoHosts as known now (not being deleted)."""
        return await self.byohosts.present(self.params.namespace, self.host_id, self.deps.settings.connect_timeout)

    async def registered(self) -> Obj | None:
        """The host's ByoHost registered at the recipe's version, if there is one."""
        return next((o for o in await self.live() if self._at_target(o)), None)

    async def wait_registered(self) -> tuple[Obj | None, float]:
        """The ByoHost registered at the recipe's version once it appears (None on timeout), and the wait's bound."""
        timeout = self._left(self.deps.settings.registration_timeout)
        found = await self.byohosts.wait(
            self.params.namespace, self.host_id, lambda live: any(self._at_target(o) for o in live), timeout
        )
        return next((o for o in found or () if self._at_target(o)), None), timeout

    async def removed(self) -> bool:
        """No ByoHost and no BootstrapKubeconfig left for the host."""
        if await self.live():
            return False
        return not await self.bootstrap.exists(self.params.namespace, self.host_id)

    async def stale_gone(self) -> bool:
        """No ByoHost of the host registered at another version (or without a version label)."""
        return not [o for o in await self.live() if self._stale(o)]

    async def remove(self, *, stale_only: bool) -> None:
        """Delete the host's unclaimed ByoHosts (only the stale ones with ``stale_only``, else also its
        BootstrapKubeconfig) and wait until they are gone."""
        p = self.params
        select: Callable[[Obj], bool] = self._stale if stale_only else (lambda _obj: True)
        await self.byohosts.delete_unclaimed(p.namespace, self.host_id, select)
        if not stale_only:
            await self.bootstrap.delete(p.namespace, self.host_id)
        timeout = self._left(self.deps.settings.registration_timeout)
        gone = await self.byohosts.wait(
            p.namespace, self.host_id, lambda live: not [o for o in live if select(o)], timeout
        )
        if gone is None:
            raise TemporaryError(
                f"the ByoHost of {self.host_id} is still there (finalizers?)", reason="ByoHostNotDeleted"
            )

    async def gate_verdict(self, action: HostprepAction) -> tuple[Verdict, str]:
        """The gate's verdict. From the shared watch's cache; a verdict that stops the host (claimed, or
        already at the target) is confirmed by a read from the API, as the cache may lag behind the release
        that o2ims saw (``go`` needs no confirmation: a ByoHost is deleted only from a fresh read)."""
        p = self.params
        verdict, why = gate_verdict(await self.live(), p.version, action)
        if verdict == "go":
            return verdict, why
        return gate_verdict(await self.byohosts.fetch(p.namespace, self.host_id), p.version, action)
