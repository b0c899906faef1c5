"""The teardown recipe: the ordered steps that stop and remove what the prepare recipe installed.

The agent is stopped and its unit removed, ``kubeadm reset`` undoes a joined node, the agent's
identity and bootstrap kubeconfig go, the Kubernetes packages are purged only when the job asks
for it, and finally the host's ByoHost and BootstrapKubeconfig are deleted from the management
cluster. Every step is a check and an action, as in the prepare recipe (see ``steps.py``).
"""

from __future__ import annotations

from services.hostprep.hostlayout import AGENT_CONFIG_DIR, AGENT_UNIT, AGENT_UNIT_NAME, K8S_PACKAGES, KEYRING, REPO_LIST
from services.hostprep.predicates import packages_absent
from services.hostprep.steps import ByoHostRemoved, Probe, RecipeParams, Run, Step, script, sh

PURGE_PACKAGES = ("kubelet", "kubeadm", "kubectl", "kubernetes-cni", "cri-tools", "containerd")


def teardown_steps(params: RecipeParams) -> list[Step]:
    steps = [
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
            Probe("test ! -e /etc/kubernetes/kubelet.conf && test ! -e /etc/kubernetes/admin.conf"),
            (Run(script("kubeadm reset -f")),),
            description="kubeadm reset -f",
        ),
        Step(
            "agent-config",
            Probe(f"test ! -e {AGENT_CONFIG_DIR} && test ! -e /etc/byoh"),
            (Run(script(f"rm -rf {AGENT_CONFIG_DIR} /etc/byoh")),),
            description="agent identity and bootstrap kubeconfig removed",
        ),
    ]
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
