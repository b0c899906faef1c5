"""The host recipes as data: ordered, named steps, each a check ("is it already so?") and an action.

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
agent binary needs an agent restart). The vocabulary (step and
operation types, shell helpers) lives in ``steps.py`` and is re-exported here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from services.hostprep import domain
from services.hostprep.domain import HostFacts
from services.hostprep.ssh import CommandResult
from services.hostprep.steps import (
    APT_ENV,
    VERIFY_MARK,
    AgentSource,
    BootstrapKubeconfig,
    ByoHostRegistered,
    ByoHostRemoved,
    Check,
    Fail,
    Holds,
    Op,
    Probe,
    RecipeParams,
    Run,
    Step,
    UnsafeValue,
    Upload,
    batch_probe,
    exit_ok,
    file_line,
    parse_batch,
    probe_script,
    q,
    script,
    sh,
    split_verify,
    unit_word,
    with_verify,
)
from shared.objects import HOST_ID_LABEL

__all__ = [
    "APT_ENV",
    "VERIFY_MARK",
    "AgentSource",
    "BootstrapKubeconfig",
    "ByoHostRegistered",
    "ByoHostRemoved",
    "Check",
    "Fail",
    "Holds",
    "Op",
    "Probe",
    "RecipeParams",
    "Run",
    "Step",
    "UnsafeValue",
    "Upload",
    "batch_probe",
    "exit_ok",
    "file_line",
    "parse_batch",
    "probe_script",
    "q",
    "script",
    "sh",
    "split_verify",
    "unit_word",
    "with_verify",
]

BASE_PACKAGES = ("socat", "ebtables", "ethtool", "conntrack")
K8S_PACKAGES = ("kubelet", "kubeadm", "kubectl")
PURGE_PACKAGES = ("kubelet", "kubeadm", "kubectl", "kubernetes-cni", "cri-tools", "containerd")
MODULES = ("overlay", "br_netfilter")
SYSCTLS = (
    ("net.bridge.bridge-nf-call-iptables", "1"),
    ("net.bridge.bridge-nf-call-ip6tables", "1"),
    ("net.ipv4.ip_forward", "1"),
)
MODULES_CONF = "/etc/modules-load.d/k8s.conf"
SYSCTL_CONF = "/etc/sysctl.d/99-kubernetes.conf"
CONTAINERD_CONF = "/etc/containerd/config.toml"
KEYRING = "/etc/apt/keyrings/kubernetes-apt-keyring.gpg"
REPO_LIST = "/etc/apt/sources.list.d/kubernetes.list"
BOOTSTRAP_KUBECONFIG = "/etc/byoh/bootstrap-kubeconfig.conf"
AGENT_UNIT_NAME = "byoh-hostagent"
AGENT_UNIT = f"/etc/systemd/system/{AGENT_UNIT_NAME}.service"
AGENT_CONFIG_DIR = "/root/.byoh"
AGENT_CONFIG = f"{AGENT_CONFIG_DIR}/config"


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


# ── probes' predicates ─────────────────────────────────────────────────────────────────


def _swap_off(result: CommandResult) -> bool:
    parts = [*domain.sections(result.stdout), "", ""]
    active = [ln for ln in parts[0].splitlines()[1:] if ln.strip()]
    fstab = [ln.split() for ln in parts[1].splitlines()]
    persisted = [f for f in fstab if len(f) >= 3 and not f[0].startswith("#") and f[2] == "swap"]
    return not active and not persisted


def _sysctls_set(result: CommandResult) -> bool:
    values = [ln.strip() for ln in result.stdout.splitlines()]
    return result.ok and values[: len(SYSCTLS)] == [v for _, v in SYSCTLS]


def _packages_at(wanted: dict[str, str | None], held: Sequence[str] = ()) -> Holds:
    def holds(result: CommandResult) -> bool:
        parts = [*domain.sections(result.stdout), ""]
        found = domain.installed_packages(parts[0])
        holds_now = set(parts[1].split())
        for name, version in wanted.items():
            if name not in found or (version is not None and domain.upstream(found[name]) != version):
                return False
        return all(name in holds_now for name in held)

    return holds


def _packages_absent(names: Sequence[str]) -> Holds:
    def holds(result: CommandResult) -> bool:
        return not set(domain.installed_packages(result.stdout)) & set(names)

    return holds


def _hosts_has(hostname: str) -> Holds:
    def holds(result: CommandResult) -> bool:
        for line in result.stdout.splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) >= 2 and hostname in words[1:]:
                return True
        return False

    return holds


def _unit_ready(unit_sha: str) -> Holds:
    def holds(result: CommandResult) -> bool:
        parts = [p.strip() for p in domain.sections(result.stdout)] + ["", "", ""]
        return parts[0].split()[:1] == [unit_sha] and parts[1] == "enabled" and parts[2] == "active"

    return holds


def _never(_result: CommandResult) -> bool:
    return False


def _sha_is(expected: str) -> Holds:
    return lambda result: result.ok and result.stdout.split()[:1] == [expected]


# ── prepare ────────────────────────────────────────────────────────────────────────────


def agent_unit(params: RecipeParams) -> str:
    label = f"{HOST_ID_LABEL}={params.host.host_id}"
    words = (
        params.agent_path,
        "--bootstrap-kubeconfig",
        BOOTSTRAP_KUBECONFIG,
        "--skip-installation",
        "--namespace",
        params.namespace,
        "--label",
        label,
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
        return Probe("true", _never), (Fail("NoAgentBinary", why),)
    check = Probe(f"sha256sum {q(path)}", _sha_is(sha))
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
            Probe(probe_script("cat /proc/swaps", "cat /etc/fstab"), _swap_off),
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
                _sysctls_set,
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
                _packages_at(dict.fromkeys(BASE_PACKAGES)),
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
                _packages_at(dict.fromkeys(K8S_PACKAGES, domain.upstream(version)), K8S_PACKAGES),
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
            Probe("cat /etc/hosts", _hosts_has(facts.hostname)),
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
            "agent-service",
            Probe(
                probe_script(
                    f"sha256sum {AGENT_UNIT}",
                    f"systemctl is-enabled {AGENT_UNIT_NAME}",
                    f"systemctl is-active {AGENT_UNIT_NAME}",
                ),
                _unit_ready(unit_sha),
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
            rerun_after=("bootstrap-kubeconfig", "agent-binary"),
            description="the agent as a root systemd unit, enabled and running",
        ),
        Step(
            "registration",
            ByoHostRegistered(),
            (ByoHostRegistered(),),
            verify=False,
            uses_ssh=False,
            description=f"ByoHost with {HOST_ID_LABEL}={params.host.host_id} in {params.namespace}",
        ),
    ]


# ── teardown ───────────────────────────────────────────────────────────────────────────


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
                Probe(f"{query} 2>/dev/null; true", _packages_absent(PURGE_PACKAGES)),
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
