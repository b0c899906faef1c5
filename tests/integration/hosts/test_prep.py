"""Host preparation over asyncssh: the shims record every effect, and a second identical run changes nothing."""

from __future__ import annotations

import json

from tests.fixtures.sandbox_hosts import ssh_connect
from tests.integration.hosts.helpers import PREP_COMMANDS, recorded_effects, run, run_all


async def test_prep_recipe_records_effects(sandbox_hosts):
    pool = await sandbox_hosts(count=1, user="ubuntu")
    state = pool.host("host-001").state
    assert state.swap_active == ["/swap.img"]
    assert "overlay" not in state.modules_loaded
    assert state.derived == {} or state.derived.get("hosts_has_hostname") is not True

    async with await ssh_connect(pool) as conn:
        await run_all(conn, PREP_COMMANDS)
        versions = await conn.run(
            "kubeadm version -o short; kubelet --version; dpkg-query -W -f='${Status} ${Version}\\n' kubelet",
            check=True,
        )

    assert versions.stdout == "v1.30.2\nKubernetes v1.30.2\nhold ok installed 1.30.2-1.1\n"
    assert {name: state.installed(name) for name in ("kubelet", "kubeadm", "kubectl")} == {
        "kubelet": "1.30.2-1.1",
        "kubeadm": "1.30.2-1.1",
        "kubectl": "1.30.2-1.1",
    }
    assert state.holds == {"kubelet", "kubeadm", "kubectl"}
    assert all(state.installed(p) for p in ("socat", "ebtables", "ethtool", "conntrack", "containerd", "runc"))
    containerd = state.services["containerd"]
    assert (containerd.enabled, containerd.active, containerd.start_count, containerd.restart_count) == (
        True,
        "active",
        1,
        1,
    )
    kubelet = state.services["kubelet"]
    assert (kubelet.enabled, kubelet.active) == (True, "inactive")
    assert {"overlay", "br_netfilter"} <= state.modules_loaded
    assert state.sysctls["net.ipv4.ip_forward"] == "1"
    assert state.sysctls["net.bridge.bridge-nf-call-iptables"] == "1"
    assert state.swap_active == []
    assert state.derived["modules_persisted"] == ["br_netfilter", "overlay"]
    assert state.derived["sysctls_persisted"]["net.ipv4.ip_forward"] == "1"
    assert state.derived["fstab_swap"] == []
    assert state.derived["hosts_has_hostname"] is True
    assert state.derived["containerd_systemd_cgroup"] is True
    config = state.files["/etc/containerd/config.toml"]
    assert containerd.config_sha256 == config.sha256
    assert state.files["/etc/apt/sources.list.d/kubernetes.list"].mode == 0o644

    # The in-memory view is persisted as state.json.
    await pool.host("host-001").save()
    on_disk = json.loads((pool.state_dir / "host-001" / "state.json").read_text())
    assert [rec["command"] for rec in on_disk["log"]] == [rec.command for rec in state.log]
    assert on_disk["holds"] == ["kubeadm", "kubectl", "kubelet"]


async def test_second_identical_run_changes_nothing(sandbox_hosts):
    pool = await sandbox_hosts(count=1, user="ubuntu")
    state = pool.host("host-001").state
    async with await ssh_connect(pool) as conn:
        await run_all(conn, PREP_COMMANDS)
        first = [rec.changed for rec in state.log]
        assert any(first)
        before = recorded_effects(state)
        mark = state.mark()
        await run_all(conn, PREP_COMMANDS)

    again = state.since(mark)
    assert len(again) == len(PREP_COMMANDS)
    assert [rec.command for rec in again if rec.changed] == []
    assert recorded_effects(state) == before
    assert state.services["containerd"].restart_count == 1


async def test_restart_always_counts_as_a_change(sandbox_hosts):
    pool = await sandbox_hosts(count=1)
    state = pool.host("host-001").state
    assert (await run(pool, "apt-get install -y containerd")).exit_status == 0
    mark = state.mark()
    assert (await run(pool, "systemctl restart containerd")).exit_status == 0
    assert (await run(pool, "systemctl restart containerd")).exit_status == 0
    assert [rec.changed for rec in state.since(mark)] == [True, True]
    assert state.services["containerd"].restart_count == 2
    mark = state.mark()
    assert (await run(pool, "systemctl start containerd && systemctl is-active containerd")).stdout == "active\n"
    assert [rec.changed for rec in state.since(mark)] == [False]


async def test_facts_a_preflight_reads(sandbox_hosts):
    pool = await sandbox_hosts(count=2)
    result = await run(
        pool,
        "cat /etc/os-release; uname -m; uname -r; uname -s; stat -fc %T /sys/fs/cgroup; "
        "ip -o route show default; ip -o -4 addr; hostname; df -Pk /var; id -u; nproc; "
        "free -b; swapon --show --noheadings; cat /etc/hosts",
        host_id="host-002",
    )
    assert result.exit_status == 0, result.stderr
    out = result.stdout
    assert 'VERSION_ID="22.04"' in out and "ID=ubuntu" in out
    assert "\nx86_64\n5.15.0-91-generic\nLinux\ncgroup2fs\n" in out
    assert "default via 127.0.1.254 dev eth0 proto dhcp src 127.0.1.2 metric 100" in out
    assert "2: eth0    inet 127.0.1.2/24" in out
    assert "\nnode-002\n" in out
    assert "52428800" in out  # 50 GiB free on /var, in 1K blocks
    assert "\n0\n4\n" in out
    assert "/swap.img file" in out
    assert "node-002" not in out.split("127.0.0.1 localhost")[1]
    state = pool.host("host-002").state
    assert state.log[-1].changed is False


async def test_host_overrides_change_facts(sandbox_hosts):
    from sandbox.hosts import HostFacts

    facts = HostFacts(
        arch="aarch64",
        os_version_id="20.04",
        os_pretty_name="Ubuntu 20.04.6 LTS",
        os_codename="focal",
        swap_enabled=False,
        hostname="custom-name",
    )
    pool = await sandbox_hosts(count=2, host_overrides={"host-002": facts})
    result = await run(
        pool,
        "uname -m; dpkg --print-architecture; hostname; swapon --show; grep VERSION_ID /etc/os-release",
        host_id="host-002",
    )
    assert result.stdout == 'aarch64\narm64\ncustom-name\nVERSION_ID="20.04"\n'
    assert (await run(pool, "uname -m")).stdout == "x86_64\n"
