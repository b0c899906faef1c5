"""A non-root login user: privileged actions fail with the real error texts unless run under sudo -n."""

from __future__ import annotations

import pytest

from tests.integration.hosts.helpers import run

DENIED = [
    ("echo x > /etc/hosts", 1, "bash: /etc/hosts: Permission denied"),
    ("echo x | tee -a /etc/hosts", 1, "tee: /etc/hosts: Permission denied"),
    ("apt-get install -y socat", 100, "E: Could not open lock file /var/lib/dpkg/lock-frontend"),
    ("apt-get update", 100, "E: Could not open lock file /var/lib/apt/lists/lock"),
    ("systemctl restart ssh", 1, "Interactive authentication required."),
    ("systemctl daemon-reload", 1, "Failed to reload daemon: Interactive authentication required."),
    ("modprobe overlay", 1, "modprobe: ERROR: could not insert 'overlay': Operation not permitted"),
    ("sysctl -w net.ipv4.ip_forward=1", 1, 'sysctl: permission denied on key "net.ipv4.ip_forward"'),
    ("swapoff -a", 1, "swapoff: /swap.img: swapoff failed: Operation not permitted"),
    ("mkdir /etc/containerd", 1, "mkdir: cannot create directory '/etc/containerd': Permission denied"),
    ("cat /etc/shadow", 1, "cat: /etc/shadow: Permission denied"),
    ("apt-mark hold kubelet", 100, "E: Could not create temporary file"),
    ("hostnamectl set-hostname other", 1, "Could not set static hostname: Interactive authentication required."),
]


@pytest.mark.parametrize(("command", "code", "message"), DENIED, ids=[c for c, _, _ in DENIED])
async def test_unprivileged_commands_fail_like_ubuntu(sandbox_hosts, command, code, message):
    pool = await sandbox_hosts(count=1, user="ubuntu")
    state = pool.host("host-001").state
    before = state.mark()
    result = await run(pool, command)
    assert result.exit_status == code
    assert message in result.stderr
    assert state.since(before)[0].changed is False


async def test_sudo_n_runs_as_root(sandbox_hosts):
    pool = await sandbox_hosts(count=1, user="ubuntu")
    state = pool.host("host-001").state
    result = await run(pool, "id -u; sudo -n id -u; whoami; sudo -n whoami; echo $HOME; sudo -n sh -c 'echo $HOME'")
    assert result.stdout == "1000\n0\nubuntu\nroot\n/home/ubuntu\n/root\n"
    assert (await run(pool, "echo '127.0.1.1 node-001' | sudo -n tee -a /etc/hosts >/dev/null")).exit_status == 0
    assert (await run(pool, "sudo -n modprobe overlay && sudo -n swapoff -a")).exit_status == 0
    assert "overlay" in state.modules_loaded and state.swap_active == []
    assert state.log[-1].steps[0]["user"] == "root"
    assert (await run(pool, "echo mine > /tmp/f && echo more >> ~/notes && cat /tmp/f ~/notes")).stdout == (
        "mine\nmore\n"
    )
    assert state.files["/home/ubuntu/notes"].owner == "ubuntu:ubuntu"
