"""Unit definitions found through one listing of the unit directories are the ones found by asking each path."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.hosts import SandboxHost, units
from sandbox.hosts.vfs import HostFs


@pytest.fixture
def fs(tmp_path: Path) -> HostFs:
    host = SandboxHost.create(tmp_path / "h", host_id="host-001", host_name="node-001", ip="127.0.0.1")
    fs = HostFs(host.vfs, host.state, host.facts, "root")
    for directory in ("/lib/systemd/system", "/etc/systemd/system/b.service.d", "/run/systemd/system/a.service.d"):
        fs.mkdir(directory, parents=True)
    fs.write("/lib/systemd/system/a.service", b"[Service]\nExecStart=/usr/bin/a\n")
    fs.write("/lib/systemd/system/b.service", b"[Service]\nExecStart=/usr/bin/b\n")
    fs.write("/etc/systemd/system/b.service", b"[Service]\nExecStart=/usr/bin/b --own\n")  # overrides /lib
    fs.write("/run/systemd/system/a.service.d/x.conf", b"[Service]\nExecStart=\nExecStart=/usr/bin/a2\n")
    fs.write("/etc/systemd/system/b.service.d/y.conf", b"[Unit]\nDescription=bee\n")
    fs.write("/etc/systemd/system/b.service.d/ignored.txt", b"[Unit]\nDescription=no\n")
    fs.mkdir("/etc/systemd/system/c.service", parents=True)  # a directory is no unit file
    fs.symlink("/nowhere/d.service", "/etc/systemd/system/d.service")  # nor is a dangling link
    fs.symlink("/lib/systemd/system/a.service", "/etc/systemd/system/e.service")  # a link to one is
    return fs


def test_definitions_through_a_listing_match_the_plain_lookup(fs: HostFs) -> None:
    seen = units.listings(fs)
    assert seen["/usr/lib/systemd/system"] == frozenset()  # absent: nothing can be there
    for name in ("a", "b", "c", "d", "e", "f"):
        assert units.unit_file(fs, name, seen) == units.unit_file(fs, name)
        assert units.definition(fs, name, seen) == units.definition(fs, name)
    found = units.definition(fs, "b", seen)
    assert found is not None and "--own" in found[0] and "bee" in found[0] and "no" not in found[0]
    linked = units.definition(fs, "e", seen)
    assert linked is not None and linked[0] == "[Service]\nExecStart=/usr/bin/a\n"  # a's file, none of a's drop-ins
    assert units.known_units(fs.state, fs, seen) == units.known_units(fs.state, fs)


def test_daemon_reload_sees_a_unit_file_written_just_before(fs: HostFs) -> None:
    units.daemon_reload(fs.state, fs)
    assert fs.state.services["a"].exec_start == "/usr/bin/a2"
    fs.write("/etc/systemd/system/f.service", b"[Service]\nExecStart=/usr/bin/f\n")
    fs.write("/run/systemd/system/a.service.d/x.conf", b"[Service]\nExecStart=\nExecStart=/usr/bin/a3\n")
    assert units.daemon_reload(fs.state, fs) is True
    assert fs.state.services["f"].exec_start == "/usr/bin/f"
    assert fs.state.services["a"].exec_start == "/usr/bin/a3"
    assert units.daemon_reload(fs.state, fs) is False
