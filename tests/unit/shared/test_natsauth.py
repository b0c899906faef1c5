"""NATS credentials on disk (mode 0600, never through a symlink) and the roles' permission lists."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from shared import natsauth
from shared.errors import PermanentError
from shared.natsroles import ROLE_BY_NAME, ROLES, permissions


def test_credentials_are_created_0600_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "state" / natsauth.CREDENTIALS_FILE
    first = natsauth.ensure_credentials(path)
    assert set(first) == {r.name for r in ROLES}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = natsauth.ensure_credentials(path)
    assert {k: v.get_secret_value() for k, v in again.items()} == {k: v.get_secret_value() for k, v in first.items()}
    assert len({v.get_secret_value() for v in first.values()}) == len(first)


def test_a_readable_or_linked_credentials_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / natsauth.CREDENTIALS_FILE
    natsauth.ensure_credentials(path)
    path.chmod(0o644)
    with pytest.raises(PermanentError, match="readable by others"):
        natsauth.load_passwords(path)
    target = tmp_path / "elsewhere.json"
    target.write_text('{"users": {}}')
    target.chmod(0o600)
    link = tmp_path / "linked.json"
    link.symlink_to(target)
    with pytest.raises(OSError):
        natsauth.ensure_credentials(link)


def test_a_private_write_replaces_a_planted_symlink_instead_of_following_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    path = tmp_path / "out.json"
    path.symlink_to(victim)
    natsauth.write_private(path, b"{}")
    assert victim.read_text() == "keep"
    assert not path.is_symlink() and stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_passwords_never_show_in_reprs_or_the_server_config_for_other_users(tmp_path: Path) -> None:
    passwords = natsauth.ensure_credentials(tmp_path / "c.json")
    users = natsauth.users_for(passwords)
    assert all(passwords[u.user].get_secret_value() not in repr(u) for u in users)
    config = natsauth.authorization_config(users)
    assert config.startswith("authorization {") and all(u.user in config for u in users)


def test_no_service_may_publish_another_services_commands() -> None:
    """The subjects that make hosts or clusters go away have exactly one publisher."""
    publishers = {
        subject: {r.name for r in ROLES if subject in permissions(r)["publish"]["allow"]}
        for subject in ("hostprep.jobs.>", "capi.jobs.>", "timers.o2ims.>", "o2ims.requests.>", "$KV.hosts.>")
    }
    assert publishers == {
        "hostprep.jobs.>": {"o2ims"},
        "capi.jobs.>": {"o2ims"},
        "timers.o2ims.>": {"o2ims"},
        "o2ims.requests.>": {"focom", "o2ims_api"},
        "$KV.hosts.>": {"focom", "o2ims", "o2ctl", "o2ims_api"},
    }
    allowed = permissions(ROLE_BY_NAME["capi_renderer"])["publish"]["allow"]
    assert not any(
        p.startswith(("$JS.API.STREAM.DELETE", "$JS.API.STREAM.UPDATE", "$JS.API.STREAM.PURGE")) for p in allowed
    )


def test_o2ctl_takes_its_identity_from_the_environment_for_a_system_it_did_not_start() -> None:
    opts = natsauth.env_client_options({"O2_NATS_USER": "o2ctl", "O2_NATS_PASSWORD": "pw"})
    assert opts == {"user": "o2ctl", "password": "pw", "inbox_prefix": "_INBOX.o2ctl"}
    creds = natsauth.env_client_options({"O2_NATS_CREDS_FILE": "/etc/o2ctl.creds"})
    assert creds == {"user_credentials": "/etc/o2ctl.creds", "inbox_prefix": "_INBOX.o2ctl"}
