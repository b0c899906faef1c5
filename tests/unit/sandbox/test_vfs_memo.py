"""The vfs remembers path resolutions; every change that moves a symlink is seen by the very next lookup."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.hosts import SandboxHost
from sandbox.hosts.facts import HostFacts
from sandbox.hosts.state import HostState
from sandbox.hosts.vfs import HostFs, Vfs


@pytest.fixture
def fs(tmp_path: Path) -> HostFs:
    root = tmp_path / "root"
    for d in ("etc/app", "usr/lib", "var/d", "opt"):
        (root / d).mkdir(parents=True)
    (root / "etc/app/conf").write_text("app")
    (root / "usr/lib/conf").write_text("lib")
    return HostFs(Vfs(root), HostState(host_id="h", hostname="n"), HostFacts(), "root")


def _real(fs: HostFs, vpath: str, *, follow: bool = True) -> str:
    """The resolution relative to the root, asked twice so that the second answer may come from memory."""
    first = fs.vfs.real_str(vpath, follow=follow)
    assert fs.vfs.real_str(vpath, follow=follow) == first
    return "/" + first.removeprefix(str(fs.vfs.root)).lstrip("/")


def test_a_new_symlink_is_followed_at_once(fs: HostFs) -> None:
    assert _real(fs, "/opt/link/conf") == "/opt/link/conf"  # resolved (and remembered) before the link exists
    assert not fs.exists("/opt/link/conf")
    fs.symlink("/etc/app", "/opt/link")
    assert _real(fs, "/opt/link/conf") == "/etc/app/conf"
    assert fs.read("/opt/link/conf") == b"app"
    assert _real(fs, "/opt/link", follow=False) == "/opt/link"


def test_a_removed_symlink_is_no_longer_followed(fs: HostFs) -> None:
    fs.symlink("/etc/app", "/opt/link")
    assert fs.read("/opt/link/conf") == b"app"
    fs.remove("/opt/link")
    assert _real(fs, "/opt/link/conf") == "/opt/link/conf"
    assert not fs.exists("/opt/link/conf")
    fs.symlink("/usr/lib", "/opt/link")  # the same name, another target
    assert fs.read("/opt/link/conf") == b"lib"


def test_removing_a_tree_forgets_the_symlinks_inside_it(fs: HostFs) -> None:
    fs.symlink("/etc/app", "/var/d/link")
    assert _real(fs, "/var/d/link/conf") == "/etc/app/conf"
    fs.remove("/var/d", recursive=True)
    assert _real(fs, "/var/d/link/conf") == "/var/d/link/conf"
    fs.mkdir("/var/d/link", parents=True)
    fs.write("/var/d/link/conf", b"own")
    assert fs.read("/var/d/link/conf") == b"own"
    assert fs.read("/etc/app/conf") == b"app"


def test_a_renamed_symlink_resolves_from_its_new_name_only(fs: HostFs) -> None:
    fs.symlink("/etc/app", "/opt/a")
    assert fs.read("/opt/a/conf") == b"app"
    assert _real(fs, "/opt/b/conf") == "/opt/b/conf"
    fs.rename("/opt/a", "/opt/b")
    assert _real(fs, "/opt/b/conf") == "/etc/app/conf"
    assert _real(fs, "/opt/a/conf") == "/opt/a/conf"
    assert not fs.exists("/opt/a/conf")


def test_a_renamed_directory_carries_its_symlinks(fs: HostFs) -> None:
    fs.symlink("/usr/lib", "/var/d/link")
    assert fs.read("/var/d/link/conf") == b"lib"
    assert _real(fs, "/var/e/link/conf") == "/var/e/link/conf"
    fs.rename("/var/d", "/var/e")
    assert _real(fs, "/var/e/link/conf") == "/usr/lib/conf"
    assert not fs.exists("/var/d/link/conf")


def test_a_directory_renamed_over_a_path_that_was_resolved_through_a_link(fs: HostFs) -> None:
    fs.symlink("/etc", "/opt/cfg")
    assert fs.read("/opt/cfg/app/conf") == b"app"
    fs.remove("/opt/cfg")
    fs.mkdir("/opt/new/app", parents=True)
    fs.write("/opt/new/app/conf", b"new")
    fs.rename("/opt/new", "/opt/cfg")
    assert fs.read("/opt/cfg/app/conf") == b"new"


def test_plain_files_written_and_renamed_keep_resolving(fs: HostFs) -> None:
    fs.symlink("/etc/app", "/opt/link")
    fs.write("/opt/link/tmp", b"1")
    fs.rename("/opt/link/tmp", "/opt/link/conf")  # a file over a file: every symlink stays where it was
    assert fs.read("/opt/link/conf") == b"1"
    assert fs.read("/etc/app/conf") == b"1"
    fs.remove("/opt/link/conf")
    assert not fs.exists("/etc/app/conf")
    assert fs.is_dir("/opt/link")


async def test_commands_see_links_made_and_undone_by_earlier_commands(tmp_path: Path) -> None:
    host = SandboxHost.create(tmp_path / "h", host_id="host-001", host_name="node-001", ip="127.0.0.1")
    setup = await host.run_command("mkdir -p /srv/one /srv/two && echo one > /srv/one/f && echo two > /srv/two/f")
    assert setup.exit_code == 0
    assert (await host.run_command("cat /srv/cur/f")).exit_code == 1
    await host.run_command("ln -s /srv/one /srv/cur")
    assert (await host.run_command("cat /srv/cur/f")).stdout == b"one\n"
    await host.run_command("ln -sfn /srv/two /srv/cur")
    assert (await host.run_command("cat /srv/cur/f")).stdout == b"two\n"
    await host.run_command("mv /srv/cur /srv/old")
    assert (await host.run_command("cat /srv/old/f")).stdout == b"two\n"
    assert (await host.run_command("cat /srv/cur/f")).exit_code == 1
    await host.run_command("rm /srv/old && mkdir /srv/old && echo own > /srv/old/f")
    assert (await host.run_command("cat /srv/old/f")).stdout == b"own\n"
    assert (await host.run_command("cat /srv/two/f")).stdout == b"two\n"
