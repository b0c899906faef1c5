"""Pure hostprep logic: preflight facts, package parsing, names, ByoHost states, backoff and job results."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.hostprep import domain
from services.hostprep.domain import MARK, HostOutcome
from shared.payloads import HostprepDone, HostprepFailed, HostprepJob

OS_RELEASE = 'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\nID_LIKE=debian\n'
DF = "Filesystem     1024-blocks     Used Available Capacity Mounted on\n/dev/sda1 102400000 10 52428800 1% /\n"


def preflight_output(**over: str) -> str:
    parts = {
        "os": OS_RELEASE,
        "arch": "x86_64",
        "kernel": "5.15.0-91-generic",
        "cgroup": "cgroup2fs",
        "route": "default via 10.0.0.254 dev eth0 proto static",
        "hostname": "node-001",
        "df": DF,
    }
    parts.update(over)
    return f"\n{MARK}\n".join(parts.values()) + "\n"


def test_preflight_facts_are_parsed() -> None:
    facts = domain.parse_preflight(preflight_output())
    assert (facts.os_id, facts.os_version, facts.arch, facts.hostname) == ("ubuntu", "22.04", "amd64", "node-001")
    assert facts.free_bytes == 52428800 * 1024
    assert facts.default_route.startswith("default via")
    assert domain.fact_problems(facts, min_free_bytes=10 * domain.GIB) == []


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ({"os": 'ID=centos\nVERSION_ID="7"\nPRETTY_NAME="CentOS 7"\n'}, "unsupported OS"),
        ({"arch": "s390x"}, "unsupported architecture"),
        ({"kernel": "4.4.0-generic"}, "kernel"),
        ({"cgroup": "ext4"}, "cgroup"),
        ({"route": ""}, "no default route"),
        ({"hostname": "Node_1"}, "DNS-1123"),
        ({"df": "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 100 10 1024 1% /\n"}, "GiB free"),
        ({"df": ""}, "unknown"),
    ],
)
def test_preflight_problems_name_what_is_wrong(override: dict[str, str], problem: str) -> None:
    facts = domain.parse_preflight(preflight_output(**override))
    problems = domain.fact_problems(facts, min_free_bytes=10 * domain.GIB)
    assert len(problems) == 1 and problem in problems[0], problems


def test_aarch64_is_arm64_and_fqdn_hostnames_are_accepted() -> None:
    facts = domain.parse_preflight(preflight_output(arch="aarch64", hostname="node-1.lab.example"))
    assert facts.arch == "arm64"
    assert domain.fact_problems(facts, min_free_bytes=0) == []


def test_installed_packages_reads_dpkg_query_status_lines() -> None:
    out = (
        "install ok installed kubelet 1.30.2-1.1\nhold ok installed kubeadm 1.30.2-1.1\n"
        "deinstall ok config-files kubectl 1.30.1-1.1\nunknown ok not-installed socat\n"
    )
    assert domain.installed_packages(out) == {"kubelet": "1.30.2-1.1", "kubeadm": "1.30.2-1.1"}


def test_package_versions() -> None:
    assert domain.package_version("v1.30.2", "1.1") == "1.30.2-1.1"
    assert domain.package_version("1.31.0", "2.1") == "1.31.0-2.1"
    assert domain.upstream("1:1.30.2-1.1") == "1.30.2"


@given(st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?", fullmatch=True))
def test_bootstrap_kubeconfig_names_are_dns1123_and_distinct(host_id: str) -> None:
    name = domain.bootstrap_kubeconfig_name(host_id)
    assert len(name) <= 63
    assert domain._DNS1123_SUBDOMAIN.match(name) and "." not in name
    assert name != domain.bootstrap_kubeconfig_name(host_id.swapcase()) or host_id == host_id.swapcase()


def test_byohost_states() -> None:
    free = {
        "metadata": {"name": "node-001"},
        "status": {
            "conditions": [
                {"type": "K8sNodeBootstrapSucceeded", "status": "False", "reason": "WaitingForMachineRefToBeAssigned"}
            ]
        },
    }
    claimed = {
        "metadata": {"name": "node-002"},
        "status": {
            "machineRef": {"name": "c1-md-0-abc"},
            "conditions": [{"type": "K8sNodeBootstrapSucceeded", "status": "True"}],
        },
    }
    bare = {"metadata": {"name": "node-003"}}
    assert domain.byohost_state(free).free and domain.byohost_state(free).registered
    assert domain.byohost_state(claimed).claimed_by == "c1-md-0-abc" and not domain.byohost_state(claimed).free
    assert not domain.byohost_state(bare).registered
    assert "free" in domain.byohost_state(free).describe() and "c1-md-0-abc" in domain.byohost_state(claimed).describe()


def test_backoff_doubles_and_caps() -> None:
    assert [domain.backoff(a, initial=1.0, maximum=5.0) for a in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def _job(*ids: str) -> HostprepJob:
    return HostprepJob(
        pr_id="0d9c3c4e-5b6a-5f7e-8a9b-0c1d2e3f4a5b", action="prepare", cluster="c1", k8s_version="v1.30.2", hosts=ids
    )


def test_a_hosts_answers_are_made_printable_before_they_travel() -> None:
    hostile = HostOutcome("a", False, "base-packages", "CommandFailed", "exit 1: \x1b[2Jgone\r", 1, "E:\x1b]0;x\x07\n")
    result = domain.job_result(_job("a"), [hostile])
    assert isinstance(result, HostprepFailed)
    for text in (result.message, result.stderr_tail or "", result.failures[0].message):
        assert "\x1b" not in text and "\r" not in text and "\x07" not in text
    assert "\\x1b[2Jgone" in result.message


def test_job_result_done_when_every_host_is_ready() -> None:
    result = domain.job_result(_job("a", "b"), [HostOutcome("a", True), HostOutcome("b", True)])
    assert isinstance(result, HostprepDone) and result.hosts == ("a", "b")


def test_job_result_names_the_first_failed_host_and_lists_all() -> None:
    outcomes = [
        HostOutcome("a", True),
        HostOutcome("b", False, "base-packages", "CommandFailed", "exit status 100: E: boom", 100, "E: boom"),
        HostOutcome("c", False, "preflight", "AuthFailed", "authentication failed"),
    ]
    result = domain.job_result(_job("a", "b", "c"), outcomes)
    assert isinstance(result, HostprepFailed)
    assert (result.host_id, result.step, result.exit_code, result.stderr_tail) == ("b", "base-packages", 100, "E: boom")
    assert result.reason == "CommandFailed" and "2 of 3 hosts failed" in result.message and "c" in result.message
    assert [f.host_id for f in result.failures] == ["b", "c"] and result.ready_hosts == ("a",)


def test_sections_split_on_marker_lines() -> None:
    assert domain.sections(f"a\nb\n{MARK}\n\n{MARK}\nc") == ["a\nb", "", "c"]
    assert domain.tail("\n".join(str(i) for i in range(30)), 3) == "27\n28\n29"
