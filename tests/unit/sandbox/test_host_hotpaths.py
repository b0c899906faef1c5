"""The sandbox hosts' hot paths keep their behaviour: path resolution inside the root, the parse cache."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from sandbox.hosts import SandboxHost
from sandbox.hosts import shell as shell_module
from sandbox.hosts.parser import parse
from sandbox.hosts.syntax import ShellSyntaxError
from sandbox.hosts.vfs import FsError, Vfs


@pytest.fixture
def vfs(tmp_path: Path) -> Vfs:
    root = tmp_path / "root"
    for d in ("etc/app", "usr/lib/real", "var"):
        (root / d).mkdir(parents=True)
    (root / "etc/app/conf").write_text("x")
    os.symlink("/usr/lib/real", root / "etc/abs")  # absolute target: re-read inside the root
    os.symlink("../usr/lib/real", root / "etc/rel")  # relative target
    os.symlink("/../../../../../etc", root / "var/escape")  # climbs no further than the root
    os.symlink("/etc/app/conf", root / "var/file")
    os.symlink("/var/chain2", root / "var/chain1")
    os.symlink("/var/file", root / "var/chain2")
    os.symlink("/var/loop2", root / "var/loop1")
    os.symlink("/var/loop1", root / "var/loop2")
    return Vfs(root)


@pytest.mark.parametrize(
    ("vpath", "follow", "expected"),
    [
        ("/", True, ""),
        ("/etc/app/conf", True, "/etc/app/conf"),
        ("etc/app/../app/./conf", True, "/etc/app/conf"),
        ("/../../etc", True, "/etc"),
        ("/etc/abs/x", True, "/usr/lib/real/x"),
        ("/etc/rel/x", True, "/usr/lib/real/x"),
        ("/etc/rel", True, "/usr/lib/real"),
        ("/etc/rel", False, "/etc/rel"),
        ("/var/escape/app", True, "/etc/app"),
        ("/var/chain1", True, "/etc/app/conf"),
        ("/var/chain1", False, "/var/chain1"),
        ("/var/missing/deeper", True, "/var/missing/deeper"),
    ],
)
def test_paths_resolve_inside_the_root(vfs: Vfs, vpath: str, follow: bool, expected: str) -> None:
    real = vfs.real(vpath, follow=follow)
    assert real == Path(str(vfs.root) + expected)
    assert vfs.real_str(vpath, follow=follow) == str(real)
    assert real == vfs.root or vfs.root in real.parents


def test_a_symlink_loop_is_eloop(vfs: Vfs) -> None:
    with pytest.raises(FsError) as caught:
        vfs.real_str("/var/loop1/x")
    assert caught.value.errno == errno.ELOOP
    assert vfs.real_str("/var/loop1", follow=False).endswith("/var/loop1")


def test_the_parse_cache_shares_one_tree_per_command_line() -> None:
    line = "test -f /etc/x || { echo 'a b' | tee /tmp/y >/dev/null; }"
    first = shell_module.parse_cached(line)
    assert shell_module.parse_cached(line) is first
    assert first == parse(line)
    with pytest.raises(ShellSyntaxError):
        shell_module.parse_cached("echo 'unterminated")
    with pytest.raises(ShellSyntaxError):  # a failure is not remembered as a tree
        shell_module.parse_cached("echo 'unterminated")


def test_a_long_script_is_parsed_afresh() -> None:
    script = "echo " + "x" * (shell_module._CACHED_SOURCE_MAX + 1)
    assert shell_module.parse_cached(script) is not shell_module.parse_cached(script)


async def test_running_a_cached_tree_leaves_it_as_parsed(tmp_path: Path) -> None:
    host = SandboxHost.create(tmp_path / "h", host_id="host-001", host_name="node-001", ip="127.0.0.1")
    line = (
        'set -e; X=1; if test -d /etc; then V=hi; echo "$V ${X}" > /tmp/o; fi; '
        "cat <<EOF | tr a-z A-Z\nbody $HOME\nEOF\n"
    )
    tree = shell_module.parse_cached(line)
    first = await host.run_command(line)
    second = await host.run_command(line)
    assert tree == parse(line)
    assert (first.exit_code, first.stdout) == (second.exit_code, second.stdout) == (0, b"BODY /ROOT\n")
    assert host.vfs.real("/tmp/o").read_text() == "hi 1\n"


async def test_derived_views_follow_changing_commands_and_skip_queries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = SandboxHost.create(tmp_path / "h", host_id="host-001", host_name="node-001", ip="127.0.0.1")
    refreshed: list[str] = []
    original = SandboxHost.refresh_derived

    def counting(self: SandboxHost) -> None:
        refreshed.append(self.state.log[-1].command)
        original(self)

    monkeypatch.setattr(SandboxHost, "refresh_derived", counting)
    await host.run_command("echo ok")  # the first command computes the views whatever it did
    assert host.state.derived["modules_persisted"] == []
    await host.run_command("printf 'overlay\\n' > /etc/modules-load.d/k8s.conf")
    assert host.state.derived["modules_persisted"] == ["overlay"]
    await host.run_command("cat /etc/modules-load.d/k8s.conf; grep -q overlay /etc/modules-load.d/k8s.conf")
    await host.run_command("printf 'overlay\\n' > /etc/modules-load.d/k8s.conf")  # same content: no change
    assert refreshed == ["echo ok", "printf 'overlay\\n' > /etc/modules-load.d/k8s.conf"]
    await host.run_command("echo '127.0.1.1 node-001' >> /etc/hosts; rm /etc/modules-load.d/k8s.conf")
    assert host.state.derived["modules_persisted"] == []
    assert host.state.derived["hosts_has_hostname"] is True
    assert len(refreshed) == 3
