"""The teardown recipe: the ordered steps that stop and remove what the prepare recipe installed.

The agent is stopped and its unit removed, ``kubeadm reset`` undoes a joined node, the CNI
configuration and etcd data it leaves go, the agent's identity and bootstrap kubeconfig go, the
Kubernetes packages are purged only when the job asks for it, and finally the host's ByoHost and
BootstrapKubeconfig are deleted from the management cluster (only an unclaimed ByoHost: a claimed
one fails the step). Every step is a check and an
action, as in the prepare recipe (see ``steps.py``). The steps up to the agent's state are
``reset_steps``, which the upgrade recipe reuses.
"""

from __future__ import annotations

from services.hostprep.domain import sections
from services.hostprep.hostlayout import AGENT_CONFIG_DIR, AGENT_UNIT, AGENT_UNIT_NAME, K8S_PACKAGES, KEYRING, REPO_LIST
from services.hostprep.predicates import packages_absent
from services.hostprep.ssh import CommandResult
from services.hostprep.steps import ByoHostRemoved, Probe, RecipeParams, Run, Step, probe_script, script, sh

PURGE_PACKAGES = ("kubelet", "kubeadm", "kubectl", "kubernetes-cni", "cri-tools", "containerd")


#: Node state ``kubeadm reset`` leaves behind: it never cleans the CNI configuration, and it removes
#: etcd's data only when it still finds the etcd static pod. Their contents go, not the directories
#: (containerd watches ``/etc/cni/net.d`` and would not see a re-created one).
NODE_STATE_DIRS = ("/etc/cni/net.d", "/var/lib/etcd")
#: What a node that joined (or tried to) leaves and ``kubeadm reset -f`` removes.
KUBEADM_FILES = (
    "/etc/kubernetes/kubelet.conf",
    "/etc/kubernetes/admin.conf",
    "/etc/kubernetes/pki/ca.crt",
    "/var/lib/kubelet/config.yaml",
)


def _empty(result: CommandResult) -> bool:
    return not any(part.strip() for part in sections(result.stdout))


def reset_steps() -> list[Step]:
    """Agent stopped, node reset, agent state removed: shared by teardown and upgrade."""
    return [
        Step(
            "agent-stopped",
            Probe(f"test ! -e {AGENT_UNIT} && ! systemctl is-active --quiet {AGENT_UNIT_NAME}"),
            (
                Run(
                    "; ".join(
                        (
                            # Each may fail on a half-removed agent; the check afterwards decides.
                            f"systemctl disable --now {AGENT_UNIT_NAME}",
                            f"rm -f {AGENT_UNIT}",
                            "systemctl daemon-reload",
                        )
                    )
                ),
            ),
            description="agent stopped, disabled, unit removed",
        ),
        Step(
            "kubeadm-reset",
            Probe(" && ".join(f"test ! -e {path}" for path in KUBEADM_FILES)),
            (Run(script("kubeadm reset -f")),),
            description="kubeadm reset -f",
        ),
        Step(
            "node-state",
            Probe(probe_script(*(f"ls {d}" for d in NODE_STATE_DIRS)), _empty),
            (Run(script(f"rm -rf {' '.join(f'{d}/*' for d in NODE_STATE_DIRS)}")),),
            description="CNI configuration and etcd data removed",
        ),
        Step(
            "agent-config",
            Probe(f"test ! -e {AGENT_CONFIG_DIR} && test ! -e /etc/byoh"),
            (Run(script(f"rm -rf {AGENT_CONFIG_DIR} /etc/byoh")),),
            description="agent identity and bootstrap kubeconfig removed",
        ),
    ]


def teardown_steps(params: RecipeParams) -> list[Step]:
    steps = reset_steps()
    if params.purge_packages:
        query = sh("dpkg-query", "-W", "-f", "${Status} ${Package} ${Version}\\n", *PURGE_PACKAGES)
        steps.append(
            Step(
                "packages-purged",
                Probe(f"{query} 2>/dev/null; true", packages_absent(PURGE_PACKAGES)),
                (
                    Run(
                        "; ".join(
                            (
                                sh("apt-mark", "unhold", *K8S_PACKAGES),
                                params.apt_get("purge", "-y", "-q", "--allow-change-held-packages", *PURGE_PACKAGES),
                                f"rm -f {REPO_LIST} {KEYRING}",
                            )
                        )
                    ),
                ),
                description="kubelet kubeadm kubectl containerd purged",
            )
        )
    steps.append(
        Step(
            "byohost-removed",
            ByoHostRemoved(),
            (ByoHostRemoved(),),
            uses_ssh=False,
            description="ByoHost and BootstrapKubeconfig deleted",
        )
    )
    return steps
