"""The upgrade recipe: a host a version rollout released is reset and prepared again at the target version.

BYOH runs with ``--skip-installation``, so a host must have the target kubelet/kubeadm before a new
Machine bootstraps on it, and its ByoHost must carry the target version's label for the versioned
ByoMachineTemplates to select it; labels are set only when the agent registers. So, after the
runner's gate (``management.gate_verdict``: a host registered at the target already is done, a
claimed one is refused, before any command runs on it), in order:

1. ``byohost-removed``: the unclaimed ByoHost of this host id deleted (uid/resourceVersion
   preconditions: one claimed since the gate read it is refused by the server, re-read, and fails the
   step while the host is still untouched and its agent running) and its BootstrapKubeconfig; from here
   on no Machine can claim the host;
2. ``agent-stopped``: the agent stopped and its unit removed (teardown's step), so nothing bootstraps
   or registers the host while it is changed; ``byohost-absent`` then checks that the agent did not
   register it again before it stopped (a restart in between), and deletes such a ByoHost likewise;
3. ``kubeadm-reset``, ``node-state``, ``agent-config``: ``kubeadm reset -f``, CNI configuration and
   etcd data emptied, the agent's identity and bootstrap kubeconfig removed (teardown's steps);
4. the prepare recipe at the target version: every host setting is checked again, the repository of
   the target minor and kubelet/kubeadm/kubectl pinned at the target and held, a fresh
   BootstrapKubeconfig, the agent unit with ``--label o2ims.oran.org/k8s-version=<target>`` started,
   and ``registration`` waits (bounded) for the ByoHost registered at the target version.

The host is out of the pool from step 1 until the new ByoHost registers; a failure leaves it so, and
names the host and the step. Re-running converges: finished steps' checks hold.
"""

from __future__ import annotations

import dataclasses

from services.hostprep import recipe
from services.hostprep.domain import HostFacts
from services.hostprep.steps import ByoHostRemoved, RecipeParams, Step
from services.hostprep.teardown import reset_steps


def _removed(name: str, description: str) -> Step:
    # Kubernetes only, but SSH steps follow: the host keeps its SSH slot.
    return Step(name, ByoHostRemoved(), (ByoHostRemoved(),), description=description)


def upgrade_steps(params: RecipeParams, facts: HostFacts) -> list[Step]:
    """The steps after the gate and preflight, in order."""
    stop, *reset = reset_steps()
    # The reset changes what the prepare steps' probes read (the unit, the agent identity): once a
    # reset step acted, the remaining steps are probed afresh.
    return [
        _removed("byohost-removed", "the unclaimed ByoHost of this host and its BootstrapKubeconfig deleted"),
        dataclasses.replace(stop, stales_probes=True),
        _removed("byohost-absent", "no ByoHost registered again before the agent stopped"),
        *(dataclasses.replace(s, stales_probes=True) for s in reset),
        *recipe.prepare_steps(params, facts),
    ]
