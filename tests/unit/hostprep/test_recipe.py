"""The recipe as data: order, literal values, quoting, the sandbox-safe shell subset, and the probes' predicates."""

from __future__ import annotations

import shlex

import pytest

from services.hostprep import hostlayout, recipe
from services.hostprep.domain import MARK, HostFacts
from services.hostprep.ssh import CommandResult
from services.hostprep.steps import (
    AgentSource,
    Fail,
    Probe,
    RecipeParams,
    Run,
    Step,
    UnsafeValue,
    Upload,
    file_line,
    unit_word,
)
from services.hostprep.teardown import teardown_steps
from shared.models import HostRef

FACTS = HostFacts(
    "ubuntu", "22.04", "Ubuntu 22.04", "aarch64", "6.8.0", "cgroup2fs", "default via x", "node-7", 100 * 1024**3
)
PREPARE = [
    "swap",
    "kernel-modules",
    "sysctl",
    "base-packages",
    "containerd",
    "kubernetes-repo",
    "kubernetes-packages",
    "etc-hosts",
    "bootstrap-kubeconfig",
    "agent-binary",
    "stale-byohost",
    "agent-service",
    "registration",
]


def params(**over: object) -> RecipeParams:
    fields: dict[str, object] = {
        "host": HostRef(host_id="Rack_1.host-07", host_name="node-7", host_ip="10.1.2.7"),
        "namespace": "edge-a",
        "k8s_version": "1.31.4",
        "agent": AgentSource(url="https://mirror.example/byoh/{arch}/byoh-hostagent", sha256="ab" * 32),
    }
    fields.update(over)
    return RecipeParams(**fields)  # type: ignore[arg-type]


def commands(steps: list[Step]) -> list[str]:
    out = []
    for step in steps:
        if isinstance(step.check, Probe):
            out.append(step.check.command)
        out += [op.command for op in step.action if isinstance(op, Run)]
    return out


def test_prepare_steps_in_order() -> None:
    assert [s.name for s in recipe.prepare_steps(params(), FACTS)] == PREPARE


def test_teardown_steps_in_order() -> None:
    assert [s.name for s in teardown_steps(params())] == [
        "agent-stopped",
        "kubeadm-reset",
        "node-state",
        "agent-config",
        "byohost-removed",
    ]
    purge = [s.name for s in teardown_steps(params(purge_packages=True))]
    assert purge[-2:] == ["packages-purged", "byohost-removed"]


@pytest.mark.parametrize("build", ["prepare", "teardown"])
def test_commands_stay_in_the_sandbox_shell_subset(build: str) -> None:
    steps = recipe.prepare_steps(params(), FACTS) if build == "prepare" else teardown_steps(params(purge_packages=True))
    for command in commands(steps):
        assert "$(" not in command and "`" not in command, command
        assert "pipefail" not in command
        shlex.split(command.replace("\n", " "))  # balanced quotes


def test_literal_values_from_job_and_facts() -> None:
    steps = {s.name: s for s in recipe.prepare_steps(params(), FACTS)}
    text = "\n".join(commands(list(steps.values())))
    assert "kubelet=1.31.4-1.1" in text and "kubeadm=1.31.4-1.1" in text and "kubectl=1.31.4-1.1" in text
    assert "https://pkgs.k8s.io/core:/stable:/v1.31/deb/" in text
    assert "https://mirror.example/byoh/arm64/byoh-hostagent" in text
    assert "10.1.2.7 node-7" in text
    unit = recipe.agent_unit(params())
    assert (
        "ExecStart=/usr/local/bin/byoh-hostagent --bootstrap-kubeconfig /etc/byoh/bootstrap-kubeconfig.conf "
        "--skip-installation --namespace edge-a --label o2ims.oran.org/host-id=Rack_1.host-07 "
        "--label o2ims.oran.org/k8s-version=v1.31.4\n"
    ) in unit, "the version label carries the normalised version the packages are installed at"
    install = steps["agent-service"].action[0]
    assert isinstance(install, Run) and shlex.quote(unit) in install.command
    assert f"chmod 0644 {hostlayout.AGENT_UNIT}" in install.command
    assert steps["agent-service"].rerun_after == ("bootstrap-kubeconfig", "agent-binary", "stale-byohost")
    assert steps["registration"].uses_ssh is False
    assert "o2ims.oran.org/k8s-version=v1.31.4" in steps["registration"].description


def test_values_that_need_quoting_are_quoted() -> None:
    p = params(
        agent=AgentSource(url="https://mirror.example/a b/agent;rm -rf /", sha256="ab" * 32),
        repo_base="https://m.example/k8s x",
    )
    text = "\n".join(commands(recipe.prepare_steps(p, FACTS)))
    assert "'https://mirror.example/a b/agent;rm -rf /'" in text
    assert "'https://m.example/k8s x/v1.31/deb/Release.key'" in text


def agent_step(agent: AgentSource) -> Step:
    return {s.name: s for s in recipe.prepare_steps(params(agent=agent), FACTS)}["agent-binary"]


def test_agent_sources() -> None:
    pushed = agent_step(AgentSource(sha256="cd" * 32, pushed=True))
    op = pushed.action[0]
    assert isinstance(op, Upload) and op.agent_binary and op.mode == 0o755 and op.sha256 == "cd" * 32
    assert isinstance(pushed.check, Probe) and pushed.check.command.startswith("sha256sum ")
    # An agent installed by other means is still verified by its sha256; without a source it cannot be fixed.
    preinstalled = agent_step(AgentSource(sha256="cd" * 32))
    assert isinstance(preinstalled.check, Probe) and preinstalled.check.command.startswith("sha256sum ")
    assert isinstance(preinstalled.action[0], Fail) and preinstalled.action[0].reason == "NoAgentBinary"


def test_an_agent_without_a_sha256_is_never_accepted() -> None:
    """#15 item 10: without a sha256 the check used to be ``test -x`` (any executable passed)."""
    for agent in (AgentSource(), AgentSource(url="https://mirror.example/agent")):
        step = agent_step(agent)
        assert isinstance(step.check, Probe) and "test -x" not in step.check.command
        assert not step.check.holds(result(""))
        assert isinstance(step.action[0], Fail) and step.action[0].reason == "NoAgentBinary"


def test_a_downloaded_agent_is_verified_before_it_replaces_the_binary() -> None:
    """#15 item 10: the download used to be moved over the live binary before anything verified it."""
    step = agent_step(AgentSource(url="https://mirror.example/{arch}/agent", sha256="ab" * 32))
    (run,) = step.action
    assert isinstance(run, Run)
    lines = run.command.splitlines()
    tmp = "/usr/local/bin/byoh-hostagent.o2ims-download"
    curl = next(i for i, line in enumerate(lines) if line.startswith("curl "))
    verify = next(i for i, line in enumerate(lines) if "sha256sum -c" in line)
    move = next(i for i, line in enumerate(lines) if line.startswith("mv "))
    assert lines[0] == "set -e" and curl < verify < move
    assert f"-o {tmp}" in lines[curl] and "--proto =https --proto-redir =https" in lines[curl]
    assert "ab" * 32 in lines[verify] and tmp in lines[verify]
    assert lines[move] == f"mv -f {tmp} /usr/local/bin/byoh-hostagent"


def test_a_plain_http_agent_url_is_refused() -> None:
    with pytest.raises(UnsafeValue, match="https"):
        agent_step(AgentSource(url="http://mirror.example/agent", sha256="ab" * 32))


ISSUE_NAMESPACE = 'x\'\nExecStartPre=/bin/sh -c "id > /root/pwned"\nX-Ignored='


def test_the_recipe_refuses_a_newline_in_the_namespace() -> None:
    """#15 item 1: the namespace from the issue used to reach the unit's ExecStart line verbatim."""
    with pytest.raises(UnsafeValue, match="namespace"):
        params(namespace=ISSUE_NAMESPACE)


def test_the_unit_refuses_control_characters_whatever_validated_them() -> None:
    host = HostRef.model_construct(
        host_id="h1\nExecStartPre=/bin/true", host_name="node-7", host_ip="10.1.2.7", ssh_port=22, ssh_user="root"
    )
    with pytest.raises(UnsafeValue, match="systemd unit"):
        recipe.agent_unit(params(host=host))
    for word in ("a\nb", "a b", "a%b", "a$b", "a'b", "a\\b", "a\x00b", "a\rb"):
        with pytest.raises(UnsafeValue):
            unit_word(word, "test")
    with pytest.raises(UnsafeValue):
        file_line("10.0.0.1 node\n10.0.0.2 evil", "line")


def result(stdout: str, status: int = 0) -> CommandResult:
    return CommandResult(status, stdout, "")


def probe(name: str) -> Probe:
    step = {s.name: s for s in recipe.prepare_steps(params(), FACTS)}[name]
    assert isinstance(step.check, Probe)
    return step.check


def test_swap_probe() -> None:
    header = "Filename\tType\tSize\tUsed\tPriority"
    holds = probe("swap").holds
    assert holds(result(f"{header}\n{MARK}\nUUID=1 / ext4 defaults 0 1\n#/swap.img none swap sw 0 0\n"))
    assert not holds(result(f"{header}\n/swap.img file 2097148 0 -2\n{MARK}\n"))
    assert not holds(result(f"{header}\n{MARK}\n/swap.img\tnone\tswap\tsw\t0\t0\n"))


def test_sysctl_probe() -> None:
    holds = probe("sysctl").holds
    assert holds(result("1\n1\n1\n"))
    assert not holds(result("1\n1\n0\n"))
    assert not holds(result("1\n1\n1\n", status=1))  # the persisted file lacks a line


def test_kubernetes_packages_probe_wants_exact_version_and_holds() -> None:
    holds = probe("kubernetes-packages").holds
    installed = "".join(f"hold ok installed {p} 1.31.4-1.1\n" for p in hostlayout.K8S_PACKAGES)
    assert holds(result(f"{installed}{MARK}\nkubeadm\nkubectl\nkubelet\n"))
    assert not holds(result(f"{installed}{MARK}\nkubeadm\nkubelet\n"))
    assert not holds(result(f"{installed.replace('1.31.4', '1.31.3', 1)}{MARK}\nkubeadm\nkubectl\nkubelet\n"))


def test_etc_hosts_probe_ignores_comments() -> None:
    holds = probe("etc-hosts").holds
    assert holds(result("127.0.0.1 localhost\n10.1.2.7 node-7 node-7.lab\n"))
    assert not holds(result("127.0.0.1 localhost\n# 10.1.2.7 node-7\n10.1.2.8 node-70\n"))


def test_agent_service_probe() -> None:
    sha = __import__("hashlib").sha256(recipe.agent_unit(params()).encode()).hexdigest()
    holds = probe("agent-service").holds
    assert holds(result(f"{sha}  /etc/systemd/system/byoh-hostagent.service\n{MARK}\nenabled\n{MARK}\nactive\n"))
    assert not holds(result(f"{sha}  x\n{MARK}\nenabled\n{MARK}\nfailed\n"))
    assert not holds(result(f"{'0' * 64}  x\n{MARK}\nenabled\n{MARK}\nactive\n"))


def reset_step(name: str) -> Step:
    return {s.name: s for s in teardown_steps(params())}[name]


def test_kubeadm_reset_probe_looks_for_what_a_joined_node_leaves() -> None:
    check = reset_step("kubeadm-reset").check
    assert isinstance(check, Probe)
    for path in ("/etc/kubernetes/kubelet.conf", "/etc/kubernetes/admin.conf", "/var/lib/kubelet/config.yaml"):
        assert f"test ! -e {path}" in check.command


def test_node_state_empties_cni_config_and_etcd_data_but_keeps_the_directories() -> None:
    step = reset_step("node-state")
    assert isinstance(step.check, Probe)
    holds = step.check.holds
    # ``ls`` of a missing directory prints to stderr only: nothing listed is clean.
    assert holds(CommandResult(2, f"{MARK}\n", "ls: cannot access '/etc/cni/net.d': No such file or directory"))
    assert not holds(result(f"10-calico.conflist\n{MARK}\n"))
    assert not holds(result(f"{MARK}\nmember\n"))
    (run,) = step.action
    assert isinstance(run, Run) and "rm -rf /etc/cni/net.d/* /var/lib/etcd/*" in run.command
