"""The prepare recipe as data: ordered, named steps, each a check ("is it already so?") and an action.

A recipe is built from the job (Kubernetes version, namespace), the host (id, address) and the
facts the preflight step gathered (hostname, architecture), so every later command carries
literal values: the commands use only plain POSIX shell (no command substitution), work on real
Ubuntu/Debian hosts and on the sandbox hosts, and quote every interpolated value. A check is a
read-only probe; the action runs only when the check fails, and the check runs again afterwards
to prove the action converged. Generated host files (the agent's systemd unit, lines appended to
``/etc/hosts`` and the apt source list) refuse any value with a control character or outside a
safe character set, whatever validated it before: quoting protects a shell, not a unit file. The
agent binary is verified by sha256 in a temporary file before it replaces anything.
``rerun_after`` names steps whose action forces this step's action (a new bootstrap kubeconfig or
agent binary needs an agent restart). This module holds the preflight probe and the prepare recipe;
what a probe's answer means is in ``predicates.py``, the vocabulary (step and operation types,
shell helpers) in ``steps.py``, the host paths and package names in ``hostlayout.py`` and the
teardown recipe in ``teardown.py``.
"""

from __future__ import annotations

import hashlib

from services.hostprep import domain
from services.hostprep.domain import HostFacts
from services.hostprep.hostlayout import (
    AGENT_UNIT,
    AGENT_UNIT_NAME,
    BASE_PACKAGES,
    BOOTSTRAP_KUBECONFIG,
    CONTAINERD_CONF,
    K8S_PACKAGES,
    KEYRING,
    MODULES,
    MODULES_CONF,
    REPO_LIST,
    SYSCTL_CONF,
    SYSCTLS,
)
from services.hostprep.predicates import hosts_has, never, packages_at, sha_is, swap_off, sysctls_set, unit_ready
from services.hostprep.steps import (
    BootstrapKubeconfig,
    ByoHostRegistered,
    Check,
    Fail,
    Op,
    Probe,
    RecipeParams,
    Run,
    StaleByoHostRemoved,
    Step,
    UnsafeValue,
    Upload,
    file_line,
    probe_script,
    q,
    script,
    sh,
    unit_word,
)
from shared.objects import HOST_ID_LABEL, K8S_VERSION_LABEL

# ── preflight ──────────────────────────────────────────────────────────────────────────


def preflight_probe(*, sudo_check: bool) -> str:
    commands = [
        "cat /etc/os-release",
        "uname -m",
        "uname -r",
        "stat -fc %T /sys/fs/cgroup",
        "ip -o route show default",
        "hostname",
        "df -Pk /var",
    ]
    if sudo_check:
        commands.append("sudo -n true")
    return probe_script(*commands)


# ── prepare ────────────────────────────────────────────────────────────────────────────


def agent_unit(params: RecipeParams) -> str:
    """The agent's unit: its ``--label``s (host id, and the version its kubelet/kubeadm are installed at)
    become the ByoHost's labels when it registers, which the versioned ByoMachineTemplates select by."""
    words = (
        params.agent_path,
        "--bootstrap-kubeconfig",
        BOOTSTRAP_KUBECONFIG,
        "--skip-installation",
        "--namespace",
        params.namespace,
        "--label",
        f"{HOST_ID_LABEL}={params.host.host_id}",
        "--label",
        f"{K8S_VERSION_LABEL}={params.version}",
    )
    exec_start = " ".join(unit_word(w, "agent argument") for w in words)
    return (
        "[Unit]\n"
        "Description=BYOH host agent (installed by o2ims hostprep)\n"
        "Wants=network-online.target\n"
        "After=network-online.target containerd.service\n\n"
        "[Service]\n"
        # The agent keeps its identity in $HOME/.byoh/config; systemd sets no HOME for root units.
        "Environment=HOME=/root\n"
        f"ExecStart={exec_start}\n"
        "Restart=always\n"
        "RestartSec=10\n\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def _agent_binary(params: RecipeParams, facts: HostFacts) -> tuple[Check, tuple[Op, ...]]:
    """Check: the binary's sha256 is the expected one. Action: push it, or download it to a temporary
    file, verify that file's sha256, and only then move it over the binary (atomic, same directory)."""
    path = params.agent_path
    sha = params.agent.sha256
    if sha is None:
        why = (
            f"{path} cannot be verified: no agent sha256 is configured (O2_HOSTPREP_AGENT_BINARY_SHA256, "
            "required with O2_HOSTPREP_AGENT_BINARY_URL; or O2_HOSTPREP_AGENT_BINARY_FILE)"
        )
        return Probe("true", never), (Fail("NoAgentBinary", why),)
    check = Probe(f"sha256sum {q(path)}", sha_is(sha))
    if params.agent.pushed:
        return check, (Upload(path, 0o755, agent_binary=True, sha256=sha),)
    if not params.agent.url:
        return check, (
            Fail(
                "NoAgentBinary",
                f"{path} is missing or differs and no agent binary source is "
                "configured (O2_HOSTPREP_AGENT_BINARY_URL or O2_HOSTPREP_AGENT_BINARY_FILE)",
            ),
        )
    url = file_line(params.agent.url.replace("{arch}", facts.arch), "agent URL")
    if not url.startswith("https://"):
        raise UnsafeValue(f"agent URL {url!r} is not https")
    tmp = f"{path}.o2ims-download"
    return check, (
        Run(
            script(
                f"mkdir -p {q(path.rsplit('/', 1)[0] or '/')}",
                f"rm -f {q(tmp)}",
                # https only, redirects included; the file is verified before it replaces anything.
                f"curl -fsSL --proto =https --proto-redir =https --retry 3 -o {q(tmp)} {q(url)}",
                f"printf '%s  %s\\n' {q(sha)} {q(tmp)} | sha256sum -c --quiet",
                f"chmod 0755 {q(tmp)}",
                f"mv -f {q(tmp)} {q(path)}",
            )
        ),
    )


def prepare_steps(params: RecipeParams, facts: HostFacts) -> list[Step]:
    """The steps after preflight, in order."""
    version = params.package_version
    pinned = [f"{name}={version}" for name in K8S_PACKAGES]
    repo_line = file_line(f"deb [signed-by={KEYRING}] {params.repo_url} /", "apt source")
    hosts_line = file_line(f"{params.host.host_ip} {facts.hostname}", "/etc/hosts entry")
    key_tmp = f"{KEYRING}.o2ims-download"
    unit_text = agent_unit(params)
    unit_sha = hashlib.sha256(unit_text.encode()).hexdigest()
    path = params.agent_path
    agent_check, agent_action = _agent_binary(params, facts)
    return [
        Step(
            "swap",
            Probe(probe_script("cat /proc/swaps", "cat /etc/fstab"), swap_off),
            (
                Run(
                    script(
                        "swapoff -a",
                        # Comment out active swap entries so swap stays off after a reboot.
                        "sed -i -E 's/^([^#].*[[:space:]]swap[[:space:]].*)$/#\\1/' /etc/fstab",
                    )
                ),
            ),
            description="swap off now and in /etc/fstab",
        ),
        Step(
            "kernel-modules",
            Probe(
                " && ".join(
                    [f"test -d /sys/module/{m}" for m in MODULES] + [f"grep -qx {m} {MODULES_CONF}" for m in MODULES]
                )
            ),
            (
                Run(
                    script(
                        "mkdir -p /etc/modules-load.d",
                        f"printf '%s\\n' {' '.join(MODULES)} > {MODULES_CONF}",
                        *(f"modprobe {m}" for m in MODULES),
                    )
                ),
            ),
            description="overlay and br_netfilter loaded and persisted",
        ),
        Step(
            "sysctl",
            Probe(
                sh("sysctl", "-n", *(k for k, _ in SYSCTLS))
                + " && "
                + " && ".join(sh("grep", "-qxF", f"{k} = {v}", SYSCTL_CONF) for k, v in SYSCTLS),
                sysctls_set,
            ),
            (
                Run(
                    script(
                        "mkdir -p /etc/sysctl.d",
                        f"printf '%s\\n' {' '.join(q(f'{k} = {v}') for k, v in SYSCTLS)} > {SYSCTL_CONF}",
                        "sysctl --system",
                    )
                ),
            ),
            description="bridge-nf-call-iptables/ip6tables and ip_forward = 1, persisted",
        ),
        Step(
            "base-packages",
            Probe(
                sh("dpkg-query", "-W", "-f", "${Status} ${Package} ${Version}\\n", *BASE_PACKAGES),
                packages_at(dict.fromkeys(BASE_PACKAGES)),
            ),
            (Run(script(params.apt_get("update", "-q"), params.apt_get("install", "-y", "-q", *BASE_PACKAGES))),),
            description=" ".join(BASE_PACKAGES),
        ),
        Step(
            "containerd",
            Probe(
                " && ".join(
                    (
                        sh("dpkg-query", "-W", "-f", "${Status}\\n", "containerd") + " | grep -q ' ok installed$'",
                        f"grep -q 'SystemdCgroup = true' {CONTAINERD_CONF}",
                        "systemctl is-enabled containerd",
                        "systemctl is-active containerd",
                    )
                )
            ),
            (
                Run(
                    script(
                        params.apt_get("install", "-y", "-q", "containerd"),
                        "mkdir -p /etc/containerd",
                        f"test -s {CONTAINERD_CONF} || containerd config default > {CONTAINERD_CONF}",
                        f"sed -i 's/SystemdCgroup = false/SystemdCgroup = true/' {CONTAINERD_CONF}",
                        f"grep -q 'SystemdCgroup = true' {CONTAINERD_CONF}",
                        "systemctl enable containerd",
                        # A changed config only takes effect after a restart.
                        "systemctl restart containerd",
                    )
                ),
            ),
            description="containerd installed, SystemdCgroup = true, enabled and running",
        ),
        Step(
            "kubernetes-repo",
            Probe(f"grep -qxF {q(repo_line)} {REPO_LIST} && test -s {KEYRING}"),
            (
                Run(
                    script(
                        "mkdir -p -m 0755 /etc/apt/keyrings",
                        f"curl -fsSL --retry 3 -o {key_tmp} {q(params.repo_url + 'Release.key')}",
                        f"gpg --dearmor --batch --yes -o {KEYRING} < {key_tmp}",
                        f"rm -f {key_tmp}",
                        f"chmod 0644 {KEYRING}",
                        f"printf '%s\\n' {q(repo_line)} > {REPO_LIST}",
                        params.apt_get("update", "-q"),
                    )
                ),
            ),
            description=f"pkgs.k8s.io {params.minor} repository",
        ),
        Step(
            "kubernetes-packages",
            Probe(
                probe_script(
                    sh("dpkg-query", "-W", "-f", "${Status} ${Package} ${Version}\\n", *K8S_PACKAGES),
                    "apt-mark showhold",
                ),
                packages_at(dict.fromkeys(K8S_PACKAGES, domain.upstream(version)), K8S_PACKAGES),
            ),
            (
                Run(
                    script(
                        params.apt_get(
                            "install", "-y", "-q", "--allow-change-held-packages", "--allow-downgrades", *pinned
                        ),
                        sh("apt-mark", "hold", *K8S_PACKAGES),
                    )
                ),
            ),
            description=f"kubelet kubeadm kubectl {version}, held",
        ),
        Step(
            "etc-hosts",
            Probe("cat /etc/hosts", hosts_has(facts.hostname)),
            (Run(script(f"printf '%s\\n' {q(hosts_line)} >> /etc/hosts")),),
            description=f"{facts.hostname} in /etc/hosts",
        ),
        Step(
            "bootstrap-kubeconfig",
            BootstrapKubeconfig(),
            (BootstrapKubeconfig(),),
            description="a BootstrapKubeconfig for this host, its kubeconfig uploaded (0600)",
        ),
        Step("agent-binary", agent_check, agent_action, description=f"BYOH agent binary at {path}"),
        Step(
            "stale-byohost",
            StaleByoHostRemoved(),
            (StaleByoHostRemoved(),),
            description=f"no unclaimed ByoHost of this host registered at another version than {params.version}",
        ),
        Step(
            "agent-service",
            Probe(
                probe_script(
                    f"sha256sum {AGENT_UNIT}",
                    f"systemctl is-enabled {AGENT_UNIT_NAME}",
                    f"systemctl is-active {AGENT_UNIT_NAME}",
                ),
                unit_ready(unit_sha),
            ),
            (
                Run(
                    script(
                        # The unit is not secret and small: it travels in the command, saving an upload round trip.
                        f"printf '%s' {q(unit_text)} > {AGENT_UNIT}",
                        f"chmod 0644 {AGENT_UNIT}",
                        "systemctl daemon-reload",
                        f"systemctl enable {AGENT_UNIT_NAME}",
                        f"systemctl restart {AGENT_UNIT_NAME}",
                    )
                ),
            ),
            # A deleted stale ByoHost is registered again (new labels) only by a restarted agent.
            rerun_after=("bootstrap-kubeconfig", "agent-binary", "stale-byohost"),
            description="the agent as a root systemd unit, enabled and running",
        ),
        Step(
            "registration",
            ByoHostRegistered(),
            (ByoHostRegistered(),),
            verify=False,
            uses_ssh=False,
            description=(
                f"ByoHost with {HOST_ID_LABEL}={params.host.host_id} and {K8S_VERSION_LABEL}={params.version} "
                f"in {params.namespace}"
            ),
        ),
    ]
