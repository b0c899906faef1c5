"""Credentials and host keys come from hostprep's own files; secrets never show in reprs or errors."""

from __future__ import annotations

import json
from pathlib import Path

import asyncssh
import pytest

from services.hostprep.credentials import CredentialStore, TrustSources
from services.hostprep.settings import HostprepSettings
from services.hostprep.ssh import SshTarget, privileged, trusted_host_keys
from shared.errors import PermanentError

PASSWORD = "hunter2-secret"


def inventory(tmp_path: Path, hosts: list[dict[str, object]]) -> Path:
    path = tmp_path / "input.json"
    path.write_text(json.dumps({"k8s_version": "1.30.2", "hosts": hosts, "clusters": []}))
    return path


def host(host_id: str, n: int, **fields: object) -> dict[str, object]:
    return {"host_id": host_id, "host_name": f"n{n}", "host_ip": f"10.0.0.{n}", **fields}


async def test_inventory_password_and_relative_key(tmp_path: Path) -> None:
    path = inventory(
        tmp_path,
        [
            host("h1", 1, host_user="root", host_pwd=PASSWORD),
            host("h2", 2, ssh_key_file="keys/h2", ssh_port=2222, host_user="ubuntu"),
            host("h3", 3),
        ],
    )
    store = CredentialStore(
        HostprepSettings(inventory_file=path, ssh_key_file=tmp_path / "default", ssh_key_dir=tmp_path)
    )
    h1, h2, h3 = [await store.resolve(h) for h in ("h1", "h2", "h3")]
    assert h1.credentials.password is not None and h1.credentials.password.get_secret_value() == PASSWORD
    assert PASSWORD not in repr(h1) and PASSWORD not in str(h1)
    assert h2.credentials.key_file == tmp_path / "keys/h2" and h2.credentials.password is None
    assert (h2.ref.host_ip, h2.ref.ssh_port, h2.ref.ssh_user) == ("10.0.0.2", 2222, "ubuntu")
    assert h3.credentials.key_file == tmp_path / "default"


async def test_no_credentials_is_permanent(tmp_path: Path) -> None:
    store = CredentialStore(HostprepSettings(inventory_file=inventory(tmp_path, [host("h9", 9)])))
    with pytest.raises(PermanentError) as info:
        await store.resolve("h9")
    assert info.value.reason == "NoCredentials"


async def test_a_host_id_the_inventory_does_not_know_is_refused(tmp_path: Path) -> None:
    """#15 item 7: the job's host is looked up in hostprep's own inventory; an unknown id gets nothing."""
    store = CredentialStore(
        HostprepSettings(
            inventory_file=inventory(tmp_path, [host("h1", 1, host_pwd=PASSWORD)]), ssh_key_file=tmp_path / "default"
        )
    )
    with pytest.raises(PermanentError) as info:
        await store.resolve("h2")
    assert info.value.reason == "UnknownHost" and PASSWORD not in str(info.value)
    without = CredentialStore(HostprepSettings(ssh_key_file=tmp_path / "default"))
    with pytest.raises(PermanentError) as info:
        await without.resolve("h1")
    assert info.value.reason == "NoInventory"


async def test_numeric_host_ids_as_the_user_guide_writes_them(tmp_path: Path) -> None:
    path = inventory(tmp_path, [{"host_id": 1, "host_name": "n1", "host_ip": "10.0.0.1", "host_pwd": PASSWORD}])
    creds = (await CredentialStore(HostprepSettings(inventory_file=path)).resolve("1")).credentials
    assert creds.password is not None and creds.password.get_secret_value() == PASSWORD


@pytest.mark.parametrize("key", ["/root/.ssh/id_rsa", "../elsewhere/id", "keys/../../id", "escape"])
async def test_key_files_outside_the_key_directory_are_refused(tmp_path: Path, key: str) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    (tmp_path / "secret").write_text("not a key of ours")
    (keys / "escape").symlink_to(tmp_path / "secret")  # a link inside the directory, leading out of it
    path = inventory(tmp_path, [host("h1", 1, ssh_key_file=key)])
    store = CredentialStore(HostprepSettings(inventory_file=path, ssh_key_dir=keys))
    with pytest.raises(PermanentError) as info:
        await store.resolve("h1")
    assert info.value.reason == "InvalidInventory"
    assert "key directory" in str(info.value) or "'..'" in str(info.value)


async def test_an_invalid_inventory_error_does_not_echo_the_password(tmp_path: Path) -> None:
    path = inventory(tmp_path, [{"host_id": "h1", "host_name": "n1", "host_ip": "10.0.0.1\nx", "host_pwd": PASSWORD}])
    store = CredentialStore(HostprepSettings(inventory_file=path))
    with pytest.raises(PermanentError) as info:
        await store.resolve("h1")
    assert info.value.reason == "InvalidInventory" and PASSWORD not in str(info.value)


async def test_inventory_changes_are_picked_up(tmp_path: Path) -> None:
    path = inventory(tmp_path, [host("h1", 1, host_pwd="old")])
    store = CredentialStore(HostprepSettings(inventory_file=path))
    assert (await store.resolve("h1")).credentials.password.get_secret_value() == "old"  # type: ignore[union-attr]
    path.write_text(json.dumps({"k8s_version": "1.30.2", "hosts": [host("h1", 7, host_pwd="newer-and-longer")]}))
    got = await store.resolve("h1")
    assert got.credentials.password.get_secret_value() == "newer-and-longer"  # type: ignore[union-attr]
    assert got.ref.host_ip == "10.0.0.7"


async def test_pinned_keys_and_known_hosts(tmp_path: Path) -> None:
    a = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    b = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    pinned = tmp_path / "pinned.yaml"
    pinned.write_text(f"h1: '{a}'\nh2: ['{b}']\n")
    known = tmp_path / "known_hosts"
    known.write_text(f"[10.0.0.3]:2222 {b}\n10.0.0.4 {a}\n")
    store = CredentialStore(HostprepSettings(pinned_host_keys_file=pinned, known_hosts_file=known))
    t1 = await store.trust("h1")
    assert t1.pinned == (a,)
    parsed = asyncssh.import_known_hosts(known.read_text())
    keys, _, _ = trusted_host_keys(await store.trust("h3"), SshTarget("h3", "10.0.0.3", 2222, "root"), parsed)
    assert {k.export_public_key().decode().strip() for k in keys} == {b}
    keys, _, _ = trusted_host_keys(await store.trust("h4"), SshTarget("h4", "10.0.0.4", 22, "root"), parsed)
    assert {k.export_public_key().decode().strip() for k in keys} == {a}


async def test_pinned_keys_are_the_only_keys_a_pinned_host_is_checked_against(tmp_path: Path) -> None:
    """#15 item 7: a pinned host used to also accept any key known_hosts lists for the address it was sent to."""
    a = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    b = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    pinned = tmp_path / "pinned.yaml"
    pinned.write_text(f"h1: '{a}'\n")
    known = tmp_path / "known_hosts"
    known.write_text(f"10.0.0.1 {b}\n")
    store = CredentialStore(HostprepSettings(pinned_host_keys_file=pinned, known_hosts_file=known))
    trust = await store.trust("h1")
    assert trust == TrustSources((a,), None)
    parsed = asyncssh.import_known_hosts(known.read_text())
    keys, cas, _ = trusted_host_keys(trust, SshTarget("h1", "10.0.0.1", 22, "root"), parsed)
    assert [k.export_public_key().decode().strip() for k in keys] == [a] and cas == []


def test_an_unknown_host_is_never_trusted() -> None:
    with pytest.raises(PermanentError) as info:
        trusted_host_keys(TrustSources((), None), SshTarget("h5", "10.0.0.5", 22, "root"), None)
    assert info.value.reason == "HostKeyUnknown"
    other = asyncssh.import_known_hosts(
        "10.9.9.9 " + asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    )
    with pytest.raises(PermanentError):
        trusted_host_keys(TrustSources((), "x"), SshTarget("h5", "10.0.0.5", 22, "root"), other)


def test_a_malformed_pinned_key_is_a_clear_error() -> None:
    with pytest.raises(PermanentError) as info:
        trusted_host_keys(TrustSources(("not a key",), None), SshTarget("h1", "10.0.0.1", 22, "root"), None)
    assert info.value.reason == "InvalidPinnedKeys"


def test_privileged_wraps_non_root_in_sudo() -> None:
    assert privileged("echo 'a b' > /etc/x", "root") == "echo 'a b' > /etc/x"
    assert privileged("echo 'a b' > /etc/x", "ubuntu") == "sudo -n bash -c 'echo '\"'\"'a b'\"'\"' > /etc/x'"
