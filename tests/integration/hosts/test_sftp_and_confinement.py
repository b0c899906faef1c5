"""SFTP uploads (mode, recording, permissions) and the guarantee that no client path reaches the real machine."""

from __future__ import annotations

import hashlib

import asyncssh
import pytest

from tests.fixtures.sandbox_hosts import ssh_connect
from tests.integration.hosts.helpers import run

KUBECONFIG = b"apiVersion: v1\nkind: Config\nclusters: []\n"


async def test_upload_bootstrap_kubeconfig_with_mode_0600(sandbox_hosts, tmp_path):
    pool = await sandbox_hosts(count=1)
    local = tmp_path / "bootstrap.conf"
    local.write_bytes(KUBECONFIG)
    async with await ssh_connect(pool) as conn:
        assert (await conn.run("mkdir -p /etc/byoh", check=True)).exit_status == 0
        async with conn.start_sftp_client() as sftp:
            await sftp.put(str(local), "/etc/byoh/bootstrap-kubeconfig.conf")
            await sftp.chmod("/etc/byoh/bootstrap-kubeconfig.conf", 0o600)
            attrs = await sftp.stat("/etc/byoh/bootstrap-kubeconfig.conf")
            await sftp.put(str(pool.agent_binary_path), "byoh-hostagent")  # relative: the login user's home
            await sftp.mkdir("/opt/stage")
            await sftp.put(str(local), "/opt/stage/a")
            await sftp.rename("/opt/stage/a", "/opt/stage/b")
            await sftp.get("/opt/stage/b", str(tmp_path / "back"))
            listing = sorted(await sftp.listdir("/opt/stage"))
        shown = await conn.run(
            "stat -c '%a %U' /etc/byoh/bootstrap-kubeconfig.conf; "
            "sha256sum /etc/byoh/bootstrap-kubeconfig.conf; ls /root",
            check=True,
        )
    assert attrs.permissions & 0o7777 == 0o600
    assert listing == [".", "..", "b"]
    assert (tmp_path / "back").read_bytes() == KUBECONFIG
    digest = hashlib.sha256(KUBECONFIG).hexdigest()
    assert shown.stdout == f"600 root\n{digest}  /etc/byoh/bootstrap-kubeconfig.conf\nbyoh-hostagent\n"
    state = pool.host("host-001").state
    record = state.files["/etc/byoh/bootstrap-kubeconfig.conf"]
    assert (record.sha256, record.mode) == (digest, 0o600)
    assert [r.command for r in state.log if r.source == "sftp"] == [
        "sftp put /etc/byoh/bootstrap-kubeconfig.conf",
        "sftp chmod 600 /etc/byoh/bootstrap-kubeconfig.conf",
        "sftp put /root/byoh-hostagent",
        "sftp mkdir /opt/stage",
        "sftp put /opt/stage/a",
        "sftp rename /opt/stage/a /opt/stage/b",
    ]
    assert (pool.state_dir / "host-001" / "root" / "etc" / "byoh" / "bootstrap-kubeconfig.conf").read_bytes() == (
        KUBECONFIG
    )


async def test_sftp_respects_the_login_users_permissions(sandbox_hosts, tmp_path):
    pool = await sandbox_hosts(count=1, user="ubuntu")
    local = tmp_path / "file"
    local.write_bytes(b"x")
    async with await ssh_connect(pool) as conn, conn.start_sftp_client() as sftp:
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            await sftp.put(str(local), "/etc/byoh.conf")
        await sftp.put(str(local), "/tmp/ok")
        assert await sftp.exists("/tmp/ok")
    assert pool.host("host-001").state.files["/tmp/ok"].owner == "ubuntu:ubuntu"


async def test_paths_never_leave_the_fs_root(sandbox_hosts, tmp_path):
    outside = tmp_path / "outside-marker"
    outside.write_text("real machine\n")
    (tmp_path / "real-only").write_text("never visible\n")
    pool = await sandbox_hosts(count=1)
    root = pool.state_dir / "host-001" / "root"
    script = (
        f"mkdir -p {outside.parent} && echo overwritten > {outside}; cat {outside}; "
        "cat ../../../../../../../etc/hostname; "
        "ln -s /etc/shadow /tmp/link && cat /tmp/link; "
        f"ln -s {tmp_path} /tmp/dir && ls /tmp/dir; "
        "cd / && cd .. && pwd"
    )
    result = await run(pool, script)
    assert outside.read_text() == "real machine\n"
    lines = result.stdout.splitlines()
    assert lines[0] == "overwritten"  # written to the virtual path of the same name, inside the root
    assert lines[1] == "node-001"
    assert lines[2].startswith("root:*:")  # the sandbox's own shadow file
    assert "real-only" not in result.stdout  # the symlink resolved inside the root
    assert lines[-1] == "/"
    assert (root / str(outside).lstrip("/")).read_text() == "overwritten\n"

    async with await ssh_connect(pool) as conn, conn.start_sftp_client() as sftp:
        await sftp.symlink(str(tmp_path), "/tmp/escape")
        assert "real-only" not in await sftp.listdir("/tmp/escape")
        assert await sftp.realpath("/../../..") == "/"
        with pytest.raises(asyncssh.SFTPError):
            await sftp.get("/tmp/escape/real-only", str(tmp_path / "copy"))
    assert not (tmp_path / "copy").exists()
